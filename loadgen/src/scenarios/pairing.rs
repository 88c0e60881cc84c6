//! `pairing`: C clients connect and become available, in several rounds. Pairs per second (connection set-up
//! included), time from starting to connect to `matched`, and the pairing's consistency:
//! everyone got exactly one partner, the partner names them back, nobody got itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{cpu_seconds, describe, Context};
use crate::cli::PairingArgs;
use crate::client::{self, ClientError, Ws};
use crate::limits::socket_budget;
use crate::progress;
use crate::report::{Better, Report};
use crate::stats::{Samples, Tally};
use crate::wire::Incoming;
use crate::{procfs, redis_cost};

/// How long every socket is watched after all are matched, for a second `matched`.
const QUIET: Duration = Duration::from_millis(300);
/// Pause between rounds, for the server to finish the previous round's disconnects.
const ROUND_GAP: Duration = Duration::from_millis(500);

/// What one client saw.
struct Outcome {
    me: String,
    partner: String,
    room: String,
    initiator: bool,
    time_to_match: Duration,
    matched_at: Instant,
}

/// What one round of clients gave.
#[derive(Default)]
struct Round {
    outcomes: Vec<Outcome>,
    sockets: Vec<Ws>,
    errors: Tally,
}

/// Runs the scenario: `rounds` times, `clients` connect and pair, are checked, then leave.
pub async fn run(ctx: &Context, args: &PairingArgs) -> Report {
    let budget = socket_budget(ctx.file_limit);
    let clients = args.clients.min(budget) & !1;
    let rounds = args.rounds.max(1);
    let mut report = ctx.report(
        "pairing",
        serde_json::json!({ "clients": clients, "rounds": rounds, "in_flight": args.in_flight, "limit_s": args.limit }),
    );
    if clients < args.clients {
        report.note(format!("{} clients asked; {clients} fit the open-file limit and make pairs", args.clients));
    }
    let probes = ctx.instances().unwrap_or_else(|| vec![ctx.entry_probe()]);
    let own_before = procfs::own_cpu_seconds();
    let redis_before = ctx.redis_snapshot(&mut report).await;
    let bar = progress::bar((clients * rounds) as u64, "pairing", ctx.quiet());
    let deadline = Instant::now() + Duration::from_secs(args.limit);

    let (mut outcomes, mut errors) = (Vec::with_capacity(clients * rounds), Tally::default());
    let (mut elapsed, mut server_cpu, mut doubles, mut done) = (0.0, Some(0.0), 0, 0);
    for round in 0..rounds {
        if round > 0 {
            // Let the server finish the last round's disconnects outside the measured time.
            tokio::time::sleep(ROUND_GAP).await;
        }
        if Instant::now() >= deadline {
            report.note(format!("time limit reached after {round} rounds"));
            break;
        }
        let cpu_before = cpu_seconds(&probes);
        let start = Instant::now();
        let Round { outcomes: got, sockets, errors: errs } =
            pair_up(ctx, clients, args.in_flight, deadline, &bar).await;
        let last = got.iter().map(|o| o.matched_at).max().unwrap_or(start);
        elapsed += (last - start).as_secs_f64();
        server_cpu = server_cpu.zip(cpu_before.zip(cpu_seconds(&probes))).map(|(sum, (a, b))| sum + b - a);
        doubles += watch_for_second_match(sockets).await;
        outcomes.extend(got);
        errors.merge(errs);
        done += 1;
    }
    bar.finish_and_clear();
    // The last round's disconnects are part of what a match costs.
    tokio::time::sleep(ROUND_GAP).await;
    let redis_after = ctx.redis_snapshot(&mut report).await;

    report.elapsed_s = elapsed;
    let pairs = outcomes.len() as f64 / 2.0;
    if let (Some(before), Some(after)) = (redis_before, redis_after) {
        redis_cost::cost_figures(&mut report, before, after, pairs, "match", "match (connect to disconnect)");
    }
    report.figure("pairs_per_s", "pairs per second", pairs / elapsed, "pairs/s", Better::Higher);
    let mut ttm = Samples::default();
    outcomes.iter().for_each(|o| ttm.push(o.time_to_match));
    if let Some(summary) = ttm.summary() {
        report.latency("ttm", "time to match", &summary, false);
    }
    match server_cpu {
        Some(cpu) => {
            report.figure("server_cpu_s", "server CPU", cpu, "s", Better::Lower);
            report.figure(
                "pairs_per_server_cpu_s",
                "pairs per server CPU-second",
                pairs / cpu,
                "pairs/CPU-s",
                Better::Higher,
            );
        }
        None => report.note(format!("server CPU not measurable through {}", describe(&probes))),
    }
    report.loadgen_cpu_s = procfs::own_cpu_seconds() - own_before;

    let expected = clients * done;
    report.check(outcomes.len() == expected, || format!("{} of {expected} clients were matched", outcomes.len()));
    report.check(doubles == 0, || format!("{doubles} clients got a second `matched`"));
    for problem in consistency(&outcomes, ctx.target.stamps_sender()) {
        report.fail(problem);
    }
    report.errors = errors;
    report
}

/// One round: `clients` connect and become available, at most `in_flight` at once; each is held
/// once matched.
async fn pair_up(ctx: &Context, clients: usize, in_flight: usize, deadline: Instant, bar: &ProgressBar) -> Round {
    let gate = Arc::new(Semaphore::new(in_flight.max(2)));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (target, gate) = (ctx.target.clone(), gate.clone());
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let matched = tokio::time::timeout_at(deadline, target.match_one(None, deadline))
                .await
                .unwrap_or(Err(ClientError::Timeout("time limit")))?;
            drop(permit);
            let outcome = Outcome {
                time_to_match: matched.matched_at - matched.started,
                matched_at: matched.matched_at,
                me: matched.me,
                partner: matched.partner,
                room: matched.room,
                initiator: matched.initiator,
            };
            Ok::<_, ClientError>((outcome, matched.ws))
        });
    }
    let mut round = Round::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok((outcome, ws))) => {
                round.outcomes.push(outcome);
                round.sockets.push(ws);
            }
            Ok(Err(err)) => round.errors.add(&err),
            Err(err) => round.errors.add_kind("task".into(), err.to_string()),
        }
        bar.inc(1);
    }
    round
}

/// Reads every socket for a short while (all still open, so nobody is re-queued meanwhile) and
/// counts those that receive another `matched`. Closes them all afterwards.
async fn watch_for_second_match(sockets: Vec<Ws>) -> usize {
    let until = Instant::now() + QUIET;
    let mut tasks = JoinSet::new();
    for mut ws in sockets {
        tasks.spawn(async move {
            let mut second = false;
            while let Ok(text) = client::recv(&mut ws, until, "nothing").await {
                second |= matches!(Incoming::parse(&text, "nothing"), Ok(Incoming::Matched { .. }));
            }
            (second, ws)
        });
    }
    let mut held = Vec::new();
    let mut doubles = 0;
    while let Some(Ok((second, ws))) = tasks.join_next().await {
        doubles += usize::from(second);
        held.push(ws);
    }
    doubles
}

/// Everything wrong with the pairing as the clients saw it.
fn consistency(outcomes: &[Outcome], has_rooms: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_id: HashMap<&str, &Outcome> = HashMap::with_capacity(outcomes.len());
    for o in outcomes {
        if by_id.insert(&o.me, o).is_some() {
            problems.push(format!("two clients have the id {}", o.me));
        }
    }
    let (mut selves, mut unknown, mut one_sided, mut rooms, mut initiators) = (0, 0, 0, 0, 0);
    for o in outcomes {
        if o.partner == o.me {
            selves += 1;
            continue;
        }
        let Some(partner) = by_id.get(o.partner.as_str()) else {
            unknown += 1;
            continue;
        };
        one_sided += usize::from(partner.partner != o.me);
        rooms += usize::from(has_rooms && partner.room != o.room);
        initiators += usize::from(partner.initiator == o.initiator);
    }
    let mut say = |n: usize, what: &str| {
        if n > 0 {
            problems.push(format!("{n} clients {what}"));
        }
    };
    say(selves, "were paired with themselves");
    say(unknown, "got a partner that is not one of this run's clients");
    say(one_sided, "got a partner that names someone else");
    say(rooms, "got a different room than their partner");
    say(initiators, "have the same `initiator` as their partner (exactly one must offer)");
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(me: &str, partner: &str, initiator: bool) -> Outcome {
        Outcome {
            me: me.into(),
            partner: partner.into(),
            room: "r".into(),
            initiator,
            time_to_match: Duration::ZERO,
            matched_at: Instant::now(),
        }
    }

    #[test]
    fn a_consistent_pairing_has_no_problems() {
        assert!(consistency(&[outcome("a", "b", true), outcome("b", "a", false)], true).is_empty());
    }

    #[test]
    fn self_pairs_one_sided_pairs_and_double_initiators_are_found() {
        let problems = consistency(&[outcome("a", "a", true)], true);
        assert!(problems[0].contains("themselves"));
        let problems = consistency(&[outcome("a", "b", true), outcome("b", "c", true), outcome("c", "b", false)], true);
        assert!(problems.iter().any(|p| p.contains("names someone else")), "{problems:?}");
        let problems = consistency(&[outcome("a", "b", true), outcome("b", "a", true)], true);
        assert!(problems.iter().any(|p| p.contains("initiator")));
    }
}
