//! `session`: users live whole sessions, one after another, until the time is up: connect,
//! `available`, `matched`, join, offer/answer and a few ICE candidates each way, chat a few
//! seconds, then `next` (stay and be matched again) or `leave` (and reconnect). The initiator ends
//! each chat; the responder waits for `partner-left`. Users per second sustained, and per server
//! CPU-second.
//!
//! On the bare relay the same life is: connect, be paired, signal over the same socket, chat,
//! close (the initiator first).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{cpu_seconds, Context};
use crate::cli::SessionArgs;
use crate::client::{self, ClientError, Ws};
use crate::payload::{self, Received, Shape, Side};
use crate::progress;
use crate::report::{Better, Report};
use crate::stats::{Samples, Tally};
use crate::target::Target;
use crate::wire::{self, Incoming};
use crate::{procfs, redis_cost};

/// How a user lives.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// No session starts after this.
    stop: Instant,
    chat_min: Duration,
    chat_max: Duration,
    /// Signals: one description then `ice` candidates, per side.
    shape: Shape,
    ice: u64,
    next_percent: u8,
    step: Duration,
}

impl Plan {
    /// A deterministic spread of chat lengths and endings per user and session.
    fn draw(&self, user: u64, session: u64) -> (Duration, bool) {
        let r = splitmix64(user.wrapping_mul(1_000_003).wrapping_add(session));
        let span = (self.chat_max.saturating_sub(self.chat_min)).as_millis() as u64;
        let chat = self.chat_min + Duration::from_millis(if span == 0 { 0 } else { r % (span + 1) });
        (chat, (r >> 32) % 100 < u64::from(self.next_percent))
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one user lived.
#[derive(Debug, Default)]
struct Lived {
    /// When each session that got through signaling and the chat before the stop ended.
    completed: Vec<Instant>,
    /// Sessions whose partner left before signaling was done.
    abandoned: u64,
    /// Sessions cut off by the stop.
    cut_off: u64,
    /// From asking for a partner to `matched`.
    ttm: Samples,
    /// From `matched` to the last signal of the exchange.
    signaling: Samples,
    errors: Tally,
}

/// Why a session stopped early.
enum Interrupted {
    /// The partner went away.
    PartnerLeft,
    /// Something failed.
    Failed(ClientError),
}

impl From<ClientError> for Interrupted {
    fn from(err: ClientError) -> Self {
        Interrupted::Failed(err)
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Context, args: &SessionArgs) -> Report {
    let mut report = ctx.report(
        "session",
        serde_json::json!({
            "users": args.users, "duration_s": args.duration, "chat_ms": [args.chat_min_ms, args.chat_max_ms],
            "ice": args.ice, "next_percent": args.next_percent,
        }),
    );
    let probes = ctx.probes().await;
    let duration = Duration::from_secs(args.duration.max(1));
    let start = Instant::now();
    let plan = Plan {
        stop: start + duration,
        chat_min: Duration::from_millis(args.chat_min_ms),
        chat_max: Duration::from_millis(args.chat_max_ms.max(args.chat_min_ms)),
        shape: Shape { sdp_one_in: u64::MAX, ..Shape::default() },
        ice: args.ice,
        next_percent: args.next_percent,
        step: ctx.target.step(),
    };
    let redis_before = ctx.redis_snapshot(&mut report).await;
    let cpu_before = cpu_seconds(&probes);
    let own_before = procfs::own_cpu_seconds();
    let timer = progress::timed(duration, "session", ctx.quiet());

    let mut tasks = JoinSet::new();
    // Users arrive spread over the shortest chat rather than all at once: a thundering herd
    // would overflow the listen backlog and measure SYN retransmission.
    let ramp = plan.chat_min.min(duration / 4);
    for user_no in 0..args.users as u64 {
        let target = ctx.target.clone();
        let arrival = start + ramp.mul_f64(user_no as f64 / args.users.max(1) as f64);
        tasks.spawn(async move {
            tokio::time::sleep_until(arrival).await;
            live(target, user_no, plan).await
        });
    }
    let mut total = Lived::default();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(lived)) => merge(&mut total, lived),
                Some(Err(err)) => total.errors.add_kind("task".into(), err.to_string()),
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                timer.set_position(start.elapsed().as_secs().min(duration.as_secs()));
            }
        }
    }
    let cpu = cpu_before.zip(cpu_seconds(&probes)).map(|(a, b)| b - a);
    let redis_after = ctx.redis_snapshot(&mut report).await;
    timer.finish_and_clear();

    report.elapsed_s = duration.as_secs_f64();
    report.loadgen_cpu_s = procfs::own_cpu_seconds() - own_before;
    // The first chats end no sooner than `chat_max` after the start: count the steady state after.
    let warm = start + plan.chat_max.min(duration / 2);
    let steady = total.completed.iter().filter(|&&t| t >= warm).count() as f64;
    let steady_secs = (plan.stop - warm).as_secs_f64();
    report.figure("users_per_s", "user sessions per second (steady)", steady / steady_secs, "users/s", Better::Higher);
    let completed = total.completed.len() as f64;
    report.figure("sessions", "user sessions completed", completed, "sessions", Better::Higher);
    if let (Some(before), Some(after)) = (redis_before, redis_after) {
        redis_cost::cost_figures(&mut report, before, after, completed, "session", "user session");
    }
    if let Some(cpu) = cpu {
        report.figure("server_cpu_s", "server CPU", cpu, "s", Better::Lower);
        report.figure(
            "users_per_server_cpu_s",
            "user sessions per server CPU-second",
            completed / cpu,
            "users/CPU-s",
            Better::Higher,
        );
    } else {
        report.note("server CPU not measurable (give --pid / --signaler-pid)");
    }
    if let Some(summary) = total.ttm.summary() {
        report.latency("ttm", "time to match", &summary, false);
    }
    if let Some(summary) = total.signaling.summary() {
        report.latency("signaling", "matched to signaling done", &summary, false);
    }
    report.figure("abandoned", "sessions whose partner left first", total.abandoned as f64, "sessions", Better::Lower);
    report.note(format!(
        "rate counted after a {:.1} s warm-up; {} sessions in flight at the stop were cut off",
        (warm - start).as_secs_f64(),
        total.cut_off
    ));
    report.check(total.errors.count_of("integrity") == 0, || {
        format!("{} signals arrived altered, misattributed or out of order", total.errors.count_of("integrity"))
    });
    report.check(!total.completed.is_empty(), || "no session completed".to_owned());
    report.check(total.errors.total() == 0, || format!("{} sessions failed with an error", total.errors.total()));
    report.errors = total.errors;
    report
}

fn merge(total: &mut Lived, lived: Lived) {
    total.completed.extend(lived.completed);
    total.abandoned += lived.abandoned;
    total.cut_off += lived.cut_off;
    total.ttm.merge(lived.ttm);
    total.signaling.merge(lived.signaling);
    total.errors.merge(lived.errors);
}

/// One user's sessions until the stop.
async fn live(target: Arc<Target>, user_no: u64, plan: Plan) -> Lived {
    let mut lived = Lived::default();
    // The matchmaker socket and this client's id, kept across `next`.
    let mut kept: Option<(Ws, String)> = None;
    let mut session_no = 0;
    while Instant::now() < plan.stop {
        session_no += 1;
        // A session that cannot end by the stop would not count: cut it there.
        match tokio::time::timeout_at(plan.stop, session(&target, user_no, session_no, &plan, &mut kept, &mut lived))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                lived.errors.add(&err);
                kept = None;
            }
            Err(_) => {
                lived.cut_off += 1;
                kept = None;
            }
        }
    }
    lived
}

/// One session: find a partner, signal, chat, end. Leaves the matchmaker socket in `kept` when
/// the user stays (`next`).
async fn session(
    target: &Target,
    user_no: u64,
    session_no: u64,
    plan: &Plan,
    kept: &mut Option<(Ws, String)>,
    lived: &mut Lived,
) -> Result<(), ClientError> {
    let looking = Instant::now();
    let (ws, me) = match kept.take() {
        Some(kept) => kept,
        None => {
            let (mut ws, me) = target.connect(None).await?;
            target.ask(&mut ws, wire::AVAILABLE).await?;
            (ws, me)
        }
    };
    let matched = target.wait_matched(ws, me, looking, Instant::now() + plan.step, true).await?;
    lived.ttm.push(matched.matched_at - looking);
    let (mut channel, mut matchmaker) = match target.join(&matched, None).await? {
        Some(signaler) => (signaler, Some(matched.ws)),
        None => (matched.ws, None),
    };
    let partner = target.stamps_sender().then_some(matched.partner.as_str());
    let pair = if matched.initiator { matched.me.as_str() } else { matched.partner.as_str() };
    match exchange(&mut channel, matchmaker.as_mut(), pair, partner, (matched.initiator, &matched.room), plan).await {
        Ok(()) => {}
        Err(Interrupted::PartnerLeft) => {
            lived.abandoned += 1;
            // Re-queued by the server (REQUEUE_ON_PARTNER_LEAVE); `available` makes sure.
            if let Some(mut ws) = matchmaker {
                target.ask(&mut ws, wire::AVAILABLE).await?;
                *kept = Some((ws, matched.me));
            }
            return Ok(());
        }
        Err(Interrupted::Failed(err)) => return Err(err),
    }
    lived.signaling.push(matched.matched_at.elapsed());

    let (chat, stays) = plan.draw(user_no, session_no);
    let watched = matchmaker.as_mut().unwrap_or(&mut channel);
    if matched.initiator {
        // Chat, unless the partner goes first.
        let _ = wait_for_partner_end(watched, Instant::now() + chat).await;
    } else {
        // The initiator ends the chat.
        wait_for_partner_end(watched, Instant::now() + plan.chat_max + plan.step)
            .await
            .map_err(|_| ClientError::Timeout("the partner to end the chat"))?;
    }
    lived.completed.push(Instant::now());
    drop(channel);
    let Some(mut ws) = matchmaker else { return Ok(()) };
    if stays {
        // The responder was re-queued when its partner left: `available` is then the same as
        // `next` without ending a match that may have formed meanwhile.
        let ask = if matched.initiator { wire::NEXT } else { wire::AVAILABLE };
        client::send(&mut ws, ask).await?;
        *kept = Some((ws, matched.me));
    } else {
        client::send(&mut ws, wire::LEAVE).await?;
        let deadline = Instant::now() + plan.step;
        while !matches!(Incoming::parse(&client::recv(&mut ws, deadline, "left").await?, "left")?, Incoming::Left) {}
    }
    Ok(())
}

/// Offer/answer and ICE both ways; the initiator speaks first, the responder after the offer.
/// Watches the matchmaker for `partner-left` meanwhile.
async fn exchange(
    channel: &mut Ws,
    mut matchmaker: Option<&mut Ws>,
    pair: &str,
    partner: Option<&str>,
    (initiator, room): (bool, &str),
    plan: &Plan,
) -> Result<(), Interrupted> {
    let (mine, theirs) =
        if initiator { (Side::Initiator, Side::Responder) } else { (Side::Responder, Side::Initiator) };
    if initiator {
        speak(channel, pair, mine, plan).await?;
    }
    let deadline = Instant::now() + plan.step;
    let mut round = 0u64;
    loop {
        let text = tokio::select! {
            text = client::recv(channel, deadline, "a signal") => match text {
                Ok(text) => text,
                // The bare relay says a partner left by closing.
                Err(ClientError::Closed(_)) if matchmaker.is_none() => return Err(Interrupted::PartnerLeft),
                Err(err) => return Err(err.into()),
            },
            news = next_news(matchmaker.as_deref_mut(), deadline) => match news? {
                Incoming::PartnerLeft { room_id } if room_id == room => return Err(Interrupted::PartnerLeft),
                _ => continue,
            },
        };
        match payload::read(&text)? {
            Received::Signal(signal) => {
                plan.shape.check(&signal, pair, round, theirs, partner)?;
                round += 1;
                if round == 1 && !initiator {
                    speak(channel, pair, mine, plan).await?;
                }
            }
            Received::End if round == plan.ice + 1 => return Ok(()),
            Received::End => {
                return Err(ClientError::Integrity(format!(
                    "the stream ended after {round} of {} signals",
                    plan.ice + 1
                ))
                .into())
            }
            Received::Control(Incoming::PeerJoined) => {}
            Received::Control(Incoming::PeerLeft) => return Err(Interrupted::PartnerLeft),
            Received::Control(other) => return Err(other.into_error("a signal").into()),
        }
    }
}

/// Sends this side's description, its candidates and the end of candidates, in one flush.
async fn speak(channel: &mut Ws, pair: &str, side: Side, plan: &Plan) -> Result<(), ClientError> {
    for round in 0..=plan.ice {
        client::feed(channel, plan.shape.frame(pair, round, side)).await?;
    }
    client::feed(channel, payload::END).await?;
    client::flush(channel).await
}

/// The next matchmaker message, or never without a matchmaker socket.
async fn next_news(matchmaker: Option<&mut Ws>, deadline: Instant) -> Result<Incoming, ClientError> {
    let Some(ws) = matchmaker else { return std::future::pending().await };
    Incoming::parse(&client::recv(ws, deadline, "matchmaker news").await?, "matchmaker news")
}

/// Waits until the partner ends the chat (`partner-left`, or the bare relay closing) or the
/// deadline; returns whether the partner ended it.
async fn wait_for_partner_end(ws: &mut Ws, deadline: Instant) -> Result<(), ClientError> {
    loop {
        match client::recv(ws, deadline, "the chat's end").await {
            Ok(text) => {
                if let Ok(Incoming::PartnerLeft { .. }) = Incoming::parse(&text, "the chat's end") {
                    return Ok(());
                }
            }
            Err(err @ ClientError::Timeout(_)) => return Err(err),
            Err(_) => return Ok(()), // closed: on the bare relay, that is how the partner leaves
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_spread_chats_and_endings_within_bounds() {
        let plan = Plan {
            stop: Instant::now(),
            chat_min: Duration::from_millis(1_000),
            chat_max: Duration::from_millis(3_000),
            shape: Shape::default(),
            ice: 3,
            next_percent: 50,
            step: Duration::from_secs(1),
        };
        let draws: Vec<_> = (0..1_000).map(|i| plan.draw(i % 37, i)).collect();
        assert!(draws.iter().all(|(chat, _)| (1_000..=3_000).contains(&(chat.as_millis() as u64))));
        let stays = draws.iter().filter(|(_, stays)| *stays).count();
        assert!((400..600).contains(&stays), "{stays}");
    }
}
