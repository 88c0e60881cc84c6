//! `idle`: C idle clients, each holding a matchmaker socket and a signaler socket joined to its
//! room (where most users sit: in a chat, signaling done), or one bare relay socket. Reads each
//! server's memory before and after: memory per idle connection. Meanwhile new clients must still
//! pair and relay.
//!
//! A process may hold only so many sockets (20,000 files here, hard), so the clients are held by
//! helper processes, each running this scenario with `--shard I/N`, and spread over several
//! 127.0.0.x source addresses (see [`crate::limits`]).

pub mod shard;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::relay::{play_pairs, Play};
use super::{into_pairs, open_peers, Context};
use crate::cli::IdleArgs;
use crate::limits::{socket_budget, source_address};
use crate::payload::Shape;
use crate::procfs::{self, Probe};
use crate::progress;
use crate::report::{Better, Report};
use crate::stats::{Samples, Tally};
use crate::target::Kind;
use shard::ShardEvent;

/// Sockets one helper process holds at most (below the 20,000-file limit, with room to spare).
pub const PER_PROCESS_SOCKETS: usize = 15_000;
/// How long the new clients relay while the idle ones are held.
const CHECK_PLAY: Duration = Duration::from_secs(2);
/// How long helpers may take to exit once told.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// What the helpers hold.
#[derive(Debug, Default)]
struct Held {
    entry: usize,
    signaler: usize,
    failed: usize,
    errors: Tally,
}

/// Runs the scenario (the parent's side).
pub async fn run(ctx: &Context, args: &IdleArgs) -> Report {
    let bare = ctx.target.kind() == Kind::Bare;
    let per_client = if bare { 1 } else { 2 };
    // Even, so that every client has a partner.
    let clients = args.clients & !1;
    let sockets = clients * per_client;
    let per_process = socket_budget(ctx.file_limit).clamp(1, PER_PROCESS_SOCKETS);
    let processes = if args.processes > 0 { args.processes } else { sockets.div_ceil(per_process).max(1) };
    let mut report = ctx.report(
        "idle",
        serde_json::json!({ "clients": clients, "sockets": sockets, "processes": processes, "check_pairs": args.check_pairs }),
    );
    if sockets > 0 && source_address(sockets - 1).is_none() {
        report.fail(format!("{sockets} sockets need more loopback source addresses than 127.0.0.2-254"));
        return report;
    }

    let probe_of = |addr, pid_probe: Probe| if args.metrics { Probe::Metrics(addr) } else { pid_probe };
    let entry_addr = ctx.target.entry().addr();
    let signaler_addr = ctx.signaler_addr().await;
    let entry = probe_of(entry_addr, ctx.entry_probe());
    let signaler = signaler_addr.map(|addr| probe_of(addr, ctx.signaler_probe(addr)));
    let settle = Duration::from_secs(args.settle);
    tokio::time::sleep(settle).await;
    let before = (entry.rss_bytes().await, rss(signaler).await);
    let redis_before = ctx.redis_snapshot(&mut report).await;
    let own_before = procfs::own_cpu_seconds();

    let start = Instant::now();
    let hold = Duration::from_secs(args.hold);
    let (mut helpers, held) = match open_all(ctx, args, clients, processes, start + hold).await {
        Ok(opened) => opened,
        Err(why) => {
            report.fail(why);
            return report;
        }
    };
    report.elapsed_s = start.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let after = (entry.rss_bytes().await, rss(signaler).await);
    let redis_after = ctx.redis_snapshot(&mut report).await;
    let server_counts =
        if bare { (None, None) } else { (connections(Some(entry_addr)).await, connections(signaler_addr).await) };

    let check = check_new_clients(ctx, args).await;
    release(&mut helpers).await;
    report.loadgen_cpu_s = procfs::own_cpu_seconds() - own_before;

    memory_figures(&mut report, entry, signaler, before, after, &held);
    if let (Some(before), Some(after)) = (redis_before, redis_after) {
        if held.entry > 0 {
            let per_client = (after.used_memory as f64 - before.used_memory as f64) / held.entry as f64;
            report.figure(
                "redis_bytes_per_idle_client",
                "Redis memory per idle client",
                per_client,
                "B",
                Better::Lower,
            );
        }
    }
    if let Some(n) = server_counts.0 {
        report.figure("entry_server_connections", "connections the server counts", n, "conns", Better::Higher);
    }
    if let Some(n) = server_counts.1 {
        report.figure("signaler_server_connections", "connections the signaler counts", n, "conns", Better::Higher);
    }
    check.report(&mut report, args.check_pairs);
    report.check(held.failed == 0, || format!("{} of {clients} idle clients failed to set up", held.failed));
    report.check(held.entry == clients, || format!("{} of {clients} idle clients are held", held.entry));
    report.note(format!("{processes} load-generator processes held {} sockets", held.entry + held.signaler));
    report.errors.merge(held.errors);
    report
}

async fn rss(probe: Option<Probe>) -> Option<u64> {
    match probe {
        Some(probe) => probe.rss_bytes().await,
        None => None,
    }
}

/// The open-connections gauge of a service's `/metrics`.
async fn connections(addr: Option<std::net::SocketAddr>) -> Option<f64> {
    procfs::scrape_metrics(addr?).await.ok().and_then(|m| procfs::metric_ending(&m, "_connections"))
}

/// Starts the helpers and waits until each holds its share (or the hold time runs out).
async fn open_all(
    ctx: &Context,
    args: &IdleArgs,
    clients: usize,
    processes: usize,
    hold_until: Instant,
) -> Result<(Vec<Child>, Held), String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find the loadgen binary: {err}"))?;
    let (events_tx, mut events) = mpsc::channel::<(usize, Option<ShardEvent>)>(1_024);
    let mut helpers = Vec::with_capacity(processes);
    for index in 0..processes {
        let mut child = Command::new(&exe)
            .args(helper_args(ctx, args, clients, index, processes, hold_until))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start helper {index}: {err}"))?;
        let Some(stdout) = child.stdout.take() else { return Err("helper has no stdout".into()) };
        let events_tx = events_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<ShardEvent>(&line) {
                    let _ = events_tx.send((index, Some(event))).await;
                }
            }
            let _ = events_tx.send((index, None)).await;
        });
        helpers.push(child);
    }
    drop(events_tx);

    let bar = progress::bar(clients as u64, "idle", ctx.quiet());
    let mut opened = vec![0usize; processes];
    let mut ready = vec![false; processes];
    let mut held = Held::default();
    let ready_by = hold_until - CHECK_PLAY * 4;
    while ready.iter().any(|r| !r) {
        let Ok(Some((index, event))) = tokio::time::timeout_at(ready_by, events.recv()).await else { break };
        match event {
            Some(ShardEvent::Progress { opened: n, failed }) => opened[index] = n + failed,
            Some(ShardEvent::Ready { entry, signaler, failed, errors }) => {
                ready[index] = true;
                opened[index] = entry + failed;
                held.entry += entry;
                held.signaler += signaler;
                held.failed += failed;
                held.errors.merge(errors);
            }
            None if !ready[index] => {
                ready[index] = true;
                held.errors.add_kind("helper".into(), format!("helper {index} exited before it was ready"));
            }
            None => {}
        }
        bar.set_position(opened.iter().sum::<usize>() as u64);
    }
    bar.finish_and_clear();
    if let Some(index) = ready.iter().position(|r| !r) {
        held.errors.add_kind("helper".into(), format!("helper {index} was not ready in time"));
    }
    Ok((helpers, held))
}

fn helper_args(
    ctx: &Context,
    args: &IdleArgs,
    clients: usize,
    index: usize,
    processes: usize,
    hold_until: Instant,
) -> Vec<String> {
    let t = &ctx.args;
    let hold = hold_until.saturating_duration_since(Instant::now()).as_secs().max(1);
    let mut out: Vec<String> = vec![
        "idle".into(),
        format!("--shard={index}/{processes}"),
        format!("--clients={clients}"),
        format!("--in-flight={}", args.in_flight),
        format!("--hold={hold}"),
        format!("--matchmaker={}", t.matchmaker),
        format!("--bare-url={}", t.bare_url),
        format!("--step-timeout={}", t.step_timeout),
        "--json".into(),
    ];
    if let Some(url) = &t.signaler {
        out.push(format!("--signaler={url}"));
    }
    if t.bare {
        out.push("--bare".into());
    }
    if t.allow_remote {
        out.push("--allow-remote".into());
    }
    out
}

/// Tells the helpers to let go (their stdin closes) and waits for them.
async fn release(helpers: &mut [Child]) {
    for child in helpers.iter_mut() {
        drop(child.stdin.take());
    }
    for child in helpers.iter_mut() {
        if tokio::time::timeout(EXIT_LIMIT, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// Memory per idle connection, per server process.
fn memory_figures(
    report: &mut Report,
    entry: Probe,
    signaler: Option<Probe>,
    before: (Option<u64>, Option<u64>),
    after: (Option<u64>, Option<u64>),
    held: &Held,
) {
    let per_conn = |before: Option<u64>, after: Option<u64>, conns: usize| match (before, after) {
        (Some(b), Some(a)) if conns > 0 => (a as f64 - b as f64) / conns as f64,
        _ => f64::NAN,
    };
    let mib = |bytes: Option<u64>| bytes.map_or(f64::NAN, |b| b as f64 / (1024.0 * 1024.0));
    match signaler {
        None => {
            report.figure(
                "bytes_per_conn",
                "memory per idle connection",
                per_conn(before.0, after.0, held.entry),
                "B",
                Better::Lower,
            );
            report.figure("rss_mib", "server resident memory", mib(after.0), "MiB", Better::Lower);
        }
        Some(signaler) if signaler == entry => {
            let conns = held.entry + held.signaler;
            report.figure(
                "process_bytes_per_conn",
                "memory per idle connection (both services in one process)",
                per_conn(before.0, after.0, conns),
                "B",
                Better::Lower,
            );
            report.compare_with("process_bytes_per_conn", "bytes_per_conn");
            report.figure("rss_mib", "server resident memory", mib(after.0), "MiB", Better::Lower);
            report.note("both services run in one process: run them apart for a figure per service");
        }
        Some(_) => {
            report.figure(
                "matchmaker_bytes_per_conn",
                "matchmaker memory per idle connection",
                per_conn(before.0, after.0, held.entry),
                "B",
                Better::Lower,
            );
            report.compare_with("matchmaker_bytes_per_conn", "bytes_per_conn");
            report.figure(
                "signaler_bytes_per_conn",
                "signaler memory per idle connection",
                per_conn(before.1, after.1, held.signaler),
                "B",
                Better::Lower,
            );
            report.compare_with("signaler_bytes_per_conn", "bytes_per_conn");
            report.figure("matchmaker_rss_mib", "matchmaker resident memory", mib(after.0), "MiB", Better::Lower);
            report.compare_with("matchmaker_rss_mib", "rss_mib");
            report.figure("signaler_rss_mib", "signaler resident memory", mib(after.1), "MiB", Better::Lower);
            report.compare_with("signaler_rss_mib", "rss_mib");
        }
    }
    report.figure(
        "entry_connections",
        "idle connections held (matchmaker or relay)",
        held.entry as f64,
        "conns",
        Better::Higher,
    );
    if held.signaler > 0 {
        report.figure(
            "signaler_connections",
            "idle connections held (signaler)",
            held.signaler as f64,
            "conns",
            Better::Higher,
        );
    }
    report.note(format!("memory read from {}", entry.describe()));
}

/// New clients pairing and relaying while the idle ones are held.
struct Check {
    pairs: usize,
    ttm: Samples,
    rtt: Samples,
    clean_pairs: usize,
    errors: Tally,
}

impl Check {
    fn report(mut self, report: &mut Report, wanted: usize) {
        if let Some(summary) = self.ttm.summary() {
            report.figure("check_ttm_p99_ms", "new clients: time to match p99", summary.p99_ms, "ms", Better::Lower);
        }
        if let Some(summary) = self.rtt.summary() {
            report.figure("check_rtt_p99_ms", "new clients: round trip p99", summary.p99_ms, "ms", Better::Lower);
        }
        report.check(self.pairs == wanted && self.clean_pairs == wanted, || {
            format!(
                "while idle clients were held, {} of {wanted} new pairs set up and {} relayed cleanly",
                self.pairs, self.clean_pairs
            )
        });
        report.errors.merge(self.errors);
    }
}

async fn check_new_clients(ctx: &Context, args: &IdleArgs) -> Check {
    let hidden = progress::bar(0, "", true);
    let deadline = Instant::now() + ctx.target.step() * 3;
    let (peers, errors) = open_peers(&ctx.target, args.check_pairs * 2, args.in_flight, deadline, &hidden).await;
    let mut ttm = Samples::default();
    peers.iter().for_each(|p| ttm.push(p.matched_at - p.started));
    let (pairs, _) = into_pairs(peers);
    let start = Instant::now();
    let play = Play {
        shape: Shape::default(),
        window: 1,
        max_rounds: u64::MAX,
        start,
        stop: start + CHECK_PLAY,
        step: ctx.target.step(),
        stamped: ctx.target.stamps_sender(),
    };
    let count = pairs.len();
    let mut played = play_pairs(pairs, play).await;
    let mut all = errors;
    all.merge(std::mem::take(&mut played.errors));
    Check { pairs: count, ttm, rtt: played.rtt, clean_pairs: played.clean_pairs, errors: all }
}
