//! `relay`: P pairs join and play ping-pong with SDP- and ICE-sized signals. Round trip
//! (p50/p99/p99.9), messages per second and per server CPU-second, and that every signal
//! arrived intact, from the partner, and in order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{cpu_seconds, describe, into_pairs, open_peers, Context};
use crate::cli::RelayArgs;
use crate::client::{self, ClientError, Ws};
use crate::payload::{self, Received, Shape, Side};
use crate::procfs::{self, Probe};
use crate::progress;
use crate::redis_cost;
use crate::report::{Better, Report};
use crate::stats::{Samples, Tally};
use crate::target::{Kind, Peer};
use crate::wire::Incoming;

/// Pause between set-up and the first signal, so every pair starts together.
const START_DELAY: Duration = Duration::from_millis(200);

/// How the pairs play.
#[derive(Debug, Clone, Copy)]
pub struct Play {
    /// Signal sizes and mix.
    pub shape: Shape,
    /// Signals in flight per pair.
    pub window: usize,
    /// Rounds per pair at most.
    pub max_rounds: u64,
    /// When the first signal goes.
    pub start: Instant,
    /// When no new round starts.
    pub stop: Instant,
    /// How long an answer may take.
    pub step: Duration,
    /// Whether relayed signals carry `from` (the signaler adds it; the bare relay does not).
    pub stamped: bool,
}

/// What the pairs did.
#[derive(Debug, Default)]
pub struct Played {
    /// Round trips.
    pub rtt: Samples,
    /// Signals relayed (both directions, complete rounds only).
    pub messages: u64,
    /// Pairs that finished without an error.
    pub clean_pairs: usize,
    /// When the last pair finished.
    pub finished: Option<Instant>,
    /// Errors met.
    pub errors: Tally,
}

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &RelayArgs) -> Report {
    let shape = Shape { sdp_bytes: args.sdp_bytes, ice_bytes: args.ice_bytes, sdp_one_in: args.sdp_one_in.max(1) };
    let mut report = ctx.report(
        "relay",
        serde_json::json!({
            "pairs": args.pairs, "duration_s": args.duration, "window": args.window,
            "sdp_bytes": shape.sdp_bytes, "ice_bytes": shape.ice_bytes, "sdp_one_in": shape.sdp_one_in,
        }),
    );
    let sockets_per_client = if ctx.target.kind() == Kind::Bare { 1 } else { 2 };
    if args.pairs * 2 * sockets_per_client > crate::limits::socket_budget(ctx.file_limit) {
        report
            .fail(format!("{} pairs need more sockets than the open-file limit {} allows", args.pairs, ctx.file_limit));
        return report;
    }

    let bar = progress::bar(args.pairs as u64 * 2, "set-up", ctx.quiet());
    let setup_deadline = Instant::now() + ctx.target.step() * 3;
    let (peers, mut errors) = open_peers(&ctx.target, args.pairs * 2, args.in_flight, setup_deadline, &bar).await;
    bar.finish_and_clear();
    let (pairs, problems) = into_pairs(peers);
    for problem in problems.iter().take(5) {
        report.fail(problem.clone());
    }
    if pairs.is_empty() {
        report.fail("no pair was set up");
        report.errors = errors;
        return report;
    }
    let probes = match ctx.instances() {
        Some(instances) => instances,
        None => vec![server_probe(ctx, &pairs).await],
    };

    let start = Instant::now() + START_DELAY;
    let play = Play {
        shape,
        window: args.window.max(1),
        max_rounds: args.max_rounds,
        start,
        stop: start + Duration::from_secs(args.duration),
        step: ctx.target.step(),
        stamped: ctx.target.stamps_sender(),
    };
    let timer = progress::timed(Duration::from_secs(args.duration), "relay", ctx.quiet());
    let ticker = tokio::spawn({
        let timer = timer.clone();
        async move {
            tokio::time::sleep_until(start).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                timer.set_position(start.elapsed().as_secs());
            }
        }
    });
    tokio::time::sleep_until(start).await;
    let redis_before = ctx.redis_snapshot(&mut report).await;
    let cpu_before = cpu_seconds(&probes);
    let own_before = procfs::own_cpu_seconds();
    let pair_count = pairs.len();
    let mut played = play_pairs(pairs, play).await;
    let cpu = cpu_before.zip(cpu_seconds(&probes)).map(|(a, b)| b - a);
    let redis_after = ctx.redis_snapshot(&mut report).await;
    ticker.abort();
    timer.finish_and_clear();

    let elapsed = (played.finished.unwrap_or(start) - start).as_secs_f64();
    report.elapsed_s = elapsed;
    report.loadgen_cpu_s = procfs::own_cpu_seconds() - own_before;
    let messages = played.messages as f64;
    report.figure("msgs_per_s", "relayed messages per second", messages / elapsed, "msg/s", Better::Higher);
    match cpu {
        Some(cpu) => {
            report.figure("server_cpu_s", "server CPU", cpu, "s", Better::Lower);
            report.figure(
                "msgs_per_server_cpu_s",
                "relayed messages per server CPU-second",
                messages / cpu,
                "msg/CPU-s",
                Better::Higher,
            );
            report.note(format!("server CPU read from {}", describe(&probes)));
        }
        None => report.note(format!("server CPU not measurable through {} (give --pid)", describe(&probes))),
    }
    if let Some(summary) = played.rtt.summary() {
        report.latency("rtt", "round trip", &summary, true);
    }
    report.figure("messages", "relayed messages", messages, "msg", Better::Higher);
    if let (Some(before), Some(after)) = (redis_before, redis_after) {
        redis_cost::cost_figures(&mut report, before, after, messages, "message", "relayed message");
    }
    report.check(played.errors.count_of("integrity") == 0, || {
        format!("{} signals arrived altered, misattributed or out of order", played.errors.count_of("integrity"))
    });
    report.check(played.clean_pairs == pair_count, || {
        format!("{} of {pair_count} pairs finished with an error", pair_count - played.clean_pairs)
    });
    report.check(pair_count == args.pairs, || format!("{pair_count} of {} pairs were set up", args.pairs));
    errors.merge(played.errors);
    report.errors = errors;
    report
}

/// The process whose CPU the relay costs: the signaler (which may be the all-in-one runner) or
/// the bare relay.
async fn server_probe(ctx: &Context, pairs: &[(Peer, Peer)]) -> Probe {
    if ctx.target.kind() == Kind::Bare {
        return ctx.entry_probe();
    }
    let addr: Option<SocketAddr> = pairs.first().and_then(|(p, _)| p.channel.get_ref().peer_addr().ok());
    match addr {
        Some(addr) => ctx.signaler_probe(addr),
        None => ctx.entry_probe(),
    }
}

/// Plays every pair at once and gathers what they did. Each pair's sockets are dropped when it
/// is done.
pub async fn play_pairs(pairs: Vec<(Peer, Peer)>, play: Play) -> Played {
    let mut tasks = JoinSet::new();
    for (initiator, responder) in pairs {
        tasks.spawn(play_pair(initiator, responder, play));
    }
    let mut played = Played::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((rtt, rounds, errors)) => {
                played.clean_pairs += usize::from(errors.total() == 0);
                played.messages += rounds * 2;
                played.rtt.merge(rtt);
                played.errors.merge(errors);
            }
            Err(err) => played.errors.add_kind("task".into(), err.to_string()),
        }
        played.finished = Some(Instant::now());
    }
    played
}

/// One pair: the initiator sends, the responder answers; returns round trips, complete rounds
/// and errors.
async fn play_pair(initiator: Peer, responder: Peer, play: Play) -> (Samples, u64, Tally) {
    let pair: Arc<str> = initiator.me.as_str().into();
    let (from_initiator, from_responder) =
        if play.stamped { (Some(initiator.me.clone()), Some(responder.me.clone())) } else { (None, None) };
    let mut channel = responder.channel;
    let answering = tokio::spawn(async move {
        let result = respond(&mut channel, pair, from_initiator, play).await;
        (result, channel)
    });
    let mut errors = Tally::default();
    let mut channel = initiator.channel;
    let (rtt, rounds) = match ask(&mut channel, &initiator.me, from_responder.as_deref(), play).await {
        Ok(done) => done,
        Err((err, done)) => {
            errors.add(&err);
            done
        }
    };
    let answered = answering.await;
    match &answered {
        Ok((Ok(()), _)) => {}
        Ok((Err(err), _)) => errors.add(err),
        Err(err) => errors.add_kind("task".into(), err.to_string()),
    }
    // Every socket of the pair lives until both sides are done: closing one early could make the
    // server reset the other before it read the last signal. The matchmaker sockets were held so
    // that nobody was re-queued mid-run.
    drop((channel, answered, initiator.matchmaker, responder.matchmaker));
    (rtt, rounds, errors)
}

type Asked = (Samples, u64);

/// The initiator's side: keeps `window` signals in flight until `stop`, checks each answer,
/// then sends the end-of-candidates signal.
async fn ask(ws: &mut Ws, pair: &str, partner: Option<&str>, play: Play) -> Result<Asked, (ClientError, Asked)> {
    let mut rtt = Samples::default();
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(play.window);
    let (mut sent, mut done) = (0u64, 0u64);
    loop {
        let mut fed = false;
        while in_flight.len() < play.window && sent < play.max_rounds && Instant::now() < play.stop {
            if let Err(err) = client::feed(ws, play.shape.frame(pair, sent, Side::Initiator)).await {
                return Err((err, (rtt, done)));
            }
            in_flight.push_back(Instant::now());
            sent += 1;
            fed = true;
        }
        if fed {
            if let Err(err) = client::flush(ws).await {
                return Err((err, (rtt, done)));
            }
        }
        let Some(&sent_at) = in_flight.front() else { break };
        let text = match client::recv(ws, Instant::now() + play.step, "an answer").await {
            Ok(text) => text,
            Err(err) => return Err((err, (rtt, done))),
        };
        match payload::read(&text) {
            Ok(Received::Signal(signal)) => {
                if let Err(err) = play.shape.check(&signal, pair, done, Side::Responder, partner) {
                    return Err((err, (rtt, done)));
                }
                rtt.push(sent_at.elapsed());
                in_flight.pop_front();
                done += 1;
            }
            Ok(Received::Control(Incoming::PeerJoined)) => {}
            Ok(Received::Control(other)) => return Err((other.into_error("an answer"), (rtt, done))),
            Ok(Received::End) => {
                return Err((ClientError::Integrity("the responder ended the stream".into()), (rtt, done)))
            }
            Err(err) => return Err((err, (rtt, done))),
        }
    }
    if let Err(err) = client::send(ws, payload::END).await {
        return Err((err, (rtt, done)));
    }
    Ok((rtt, done))
}

/// The responder's side: checks each signal and answers it in kind, until the end signal.
async fn respond(ws: &mut Ws, pair: Arc<str>, partner: Option<String>, play: Play) -> Result<(), ClientError> {
    let mut round = 0u64;
    // Nothing comes before `start`; after that, each signal within a step of the previous one.
    let mut deadline = play.start + play.step;
    loop {
        let text = client::recv(ws, deadline, "a signal").await?;
        match payload::read(&text)? {
            Received::Signal(signal) => {
                play.shape.check(&signal, &pair, round, Side::Initiator, partner.as_deref())?;
                client::send(ws, play.shape.frame(&pair, round, Side::Responder)).await?;
                round += 1;
            }
            Received::End => return Ok(()),
            Received::Control(Incoming::PeerJoined) => {}
            Received::Control(other) => return Err(other.into_error("a signal")),
        }
        deadline = Instant::now() + play.step;
    }
}
