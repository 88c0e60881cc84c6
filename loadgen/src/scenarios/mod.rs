//! The four scenarios, and what they share: the target built from the command line, opening
//! many clients at once, and grouping them back into pairs.

pub mod idle;
pub mod pairing;
pub mod relay;
pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::TargetArgs;
use crate::client::{ClientError, Endpoint};
use crate::procfs::Probe;
use crate::redis_cost::{RedisProbe, Snapshot};
use crate::report::Report;
use crate::stats::Tally;
use crate::target::{Kind, Peer, Target};

/// What every scenario starts from.
#[derive(Debug, Clone)]
pub struct Context {
    /// The server under load.
    pub target: Arc<Target>,
    /// The command line's target options.
    pub args: TargetArgs,
    /// This process's open-file limit.
    pub file_limit: u64,
    /// The Redis the services share, when `--redis` names one.
    pub redis: Option<RedisProbe>,
}

impl Context {
    /// Resolves the URLs of `args`.
    ///
    /// # Errors
    /// [`ClientError::Url`] for an unusable URL.
    pub async fn new(args: &TargetArgs, file_limit: u64) -> Result<Context, ClientError> {
        let (kind, entry_urls) =
            if args.bare { (Kind::Bare, args.bare_url.as_str()) } else { (Kind::Strangers, args.matchmaker.as_str()) };
        let entries = resolve_all(entry_urls, args.allow_remote).await?;
        let signalers = match (&args.signaler, kind) {
            (Some(urls), Kind::Strangers) => resolve_all(urls, args.allow_remote).await?,
            _ => Vec::new(),
        };
        let step = Duration::from_secs(args.step_timeout.max(1));
        let target = Target::new(kind, entries, signalers, args.allow_remote, step);
        let redis = match &args.redis {
            None => None,
            Some(url) => {
                let probe =
                    RedisProbe::new(url).await.map_err(|reason| ClientError::Url { url: url.clone(), reason })?;
                if !args.allow_remote && !probe.addr().ip().is_loopback() {
                    let reason = "not a loopback address (add --allow-remote)".to_owned();
                    return Err(ClientError::Url { url: url.clone(), reason });
                }
                Some(probe)
            }
        };
        Ok(Context { target: Arc::new(target), args: args.clone(), file_limit, redis })
    }

    /// Redis's counters now, when `--redis` was given and Redis answers (else a note says why).
    pub async fn redis_snapshot(&self, report: &mut Report) -> Option<Snapshot> {
        match self.redis.as_ref()?.snapshot().await {
            Ok(snapshot) => Some(snapshot),
            Err(why) => {
                report.note(format!("Redis figures left out: {why}"));
                None
            }
        }
    }

    /// Progress bars are hidden when the output is JSON.
    pub fn quiet(&self) -> bool {
        self.args.json
    }

    /// An empty report for `scenario` with `params`.
    pub fn report(&self, scenario: &str, params: serde_json::Value) -> Report {
        Report::new(scenario, self.target.kind().name(), self.target.entry().url(), &self.args.label, params)
    }

    /// Where to read the entry server's CPU and memory (the matchmaker, the all-in-one runner
    /// or the bare relay).
    pub fn entry_probe(&self) -> Probe {
        Probe::find(self.args.pid.first().copied(), self.target.entry().addr())
    }

    /// The instances given with `--pid`, when there are several: the server CPU is theirs.
    pub fn instances(&self) -> Option<Vec<Probe>> {
        (self.args.pid.len() > 1).then(|| self.args.pid.iter().map(|pid| Probe::Pid(*pid)).collect())
    }

    /// Where to read the signaler's, given its address.
    pub fn signaler_probe(&self, addr: SocketAddr) -> Probe {
        Probe::find(self.args.signaler_pid, addr)
    }

    /// The signaler's address: `--signaler`, or the `signalingUrl` of a probe match of two
    /// clients (closed again at once). `None` for the bare relay or when the probe fails.
    pub async fn signaler_addr(&self) -> Option<SocketAddr> {
        if self.target.kind() == Kind::Bare {
            return None;
        }
        if self.args.signaler.is_some() {
            // The override is what every client will use, whatever `matched` says.
            return self.target.signaler("").await.ok().map(|e| e.addr());
        }
        let deadline = self.target.step_deadline();
        let (a, b) = tokio::join!(self.target.match_one(None, deadline), self.target.match_one(None, deadline));
        let url = a.as_ref().or(b.as_ref()).ok()?.signaling_url.clone();
        Some(self.target.signaler(&url).await.ok()?.addr())
    }

    /// Every server process the scenario loads, once each: the entry server and, when it runs
    /// apart, the signaler.
    pub async fn probes(&self) -> Vec<Probe> {
        if let Some(instances) = self.instances() {
            return instances;
        }
        let mut probes = vec![self.entry_probe()];
        if let Some(addr) = self.signaler_addr().await {
            let signaler = self.signaler_probe(addr);
            if !probes.contains(&signaler) {
                probes.push(signaler);
            }
        }
        probes
    }
}

/// Every endpoint of a comma-separated list of URLs (at least one).
async fn resolve_all(urls: &str, allow_remote: bool) -> Result<Vec<Endpoint>, ClientError> {
    let mut endpoints = Vec::new();
    for url in urls.split(',').map(str::trim).filter(|url| !url.is_empty()) {
        endpoints.push(Endpoint::resolve(url, allow_remote).await?);
    }
    if endpoints.is_empty() {
        return Err(ClientError::Url { url: urls.to_owned(), reason: "no URL given".to_owned() });
    }
    Ok(endpoints)
}

/// Describes where `probes` read their figures.
pub fn describe(probes: &[Probe]) -> String {
    probes.iter().map(Probe::describe).collect::<Vec<_>>().join(" + ")
}

/// Total CPU seconds of `probes` so far; `None` when any cannot tell.
pub fn cpu_seconds(probes: &[Probe]) -> Option<f64> {
    probes.iter().map(Probe::cpu_seconds).sum()
}

/// Opens `count` peers (matched and joined) with at most `in_flight` setting up at once.
/// Returns them with the errors met; `bar` advances per peer.
pub async fn open_peers(
    target: &Arc<Target>,
    count: usize,
    in_flight: usize,
    deadline: Instant,
    bar: &ProgressBar,
) -> (Vec<Peer>, Tally) {
    let gate = Arc::new(Semaphore::new(in_flight.max(2)));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (target, gate) = (target.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            tokio::time::timeout_at(deadline, target.peer(None, deadline))
                .await
                .unwrap_or(Err(ClientError::Timeout("set-up time limit")))
        });
    }
    let mut peers = Vec::with_capacity(count);
    let mut errors = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(peer)) => peers.push(peer),
            Ok(Err(err)) => errors.add(&err),
            Err(err) => errors.add_kind("task".into(), err.to_string()),
        }
        bar.inc(1);
    }
    (peers, errors)
}

/// Groups peers into (initiator, responder) pairs. Peers whose partner is missing, or whose
/// pairing is inconsistent, are returned apart with the reasons.
pub fn into_pairs(peers: Vec<Peer>) -> (Vec<(Peer, Peer)>, Vec<String>) {
    let mut by_pair: HashMap<String, Vec<Peer>> = HashMap::new();
    for peer in peers {
        by_pair.entry(peer.pair().to_owned()).or_default().push(peer);
    }
    let mut pairs = Vec::with_capacity(by_pair.len());
    let mut problems = Vec::new();
    for (name, mut group) in by_pair {
        let initiator = group.iter().position(|p| p.initiator);
        let responder = group.iter().position(|p| !p.initiator);
        match (group.len(), initiator, responder) {
            (2, Some(i), Some(_)) => {
                let first = group.swap_remove(i);
                let second = group.swap_remove(0);
                if first.partner == second.me && second.partner == first.me && first.me != first.partner {
                    pairs.push((first, second));
                } else {
                    problems.push(format!("pair {name}: partners do not name each other"));
                }
            }
            (1, _, _) => problems.push(format!("pair {name}: partner missing (its set-up failed)")),
            (n, _, _) => problems.push(format!("pair {name}: {n} peers, initiators {initiator:?}")),
        }
    }
    (pairs, problems)
}
