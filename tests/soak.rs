//! Soak: many users join, signal, chat, press Next, leave or just vanish, over and over; then
//! nothing may be left behind (sockets, queue entries, rooms with their held messages, tasks),
//! and memory must stay flat while it goes on.
//!
//! `a_short_soak_leaves_nothing_behind` runs with every `cargo test`. The long one is ignored
//! there; `scripts/soak.sh` runs it (`SOAK_SECS`, `SOAK_USERS`) against the release binary,
//! after its load-generator phase, and it prints resident memory over time.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::limits::Limits;
use support::{http_get, metric_value, Runner, Stack};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a user waits for any one answer before giving up on the session.
const STEP: Duration = Duration::from_secs(3);

/// How sessions end, in turn.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `next` on the matchmaker (then the signaler socket closes).
    Next,
    /// `leave` on both sockets, then close them.
    Leave,
    /// Drop both connections without a word or a close frame.
    Vanish,
    /// Close both sockets politely, without `leave`.
    Close,
}

const ENDINGS: [Ending; 4] = [Ending::Next, Ending::Leave, Ending::Vanish, Ending::Close];

/// What the users did, for the printout.
#[derive(Debug, Default, Clone, Copy)]
struct Lived {
    sessions: u64,
    matched: u64,
    signals_received: u64,
}

async fn connect(url: &str, from: &str) -> Option<Ws> {
    let mut request = url.into_client_request().ok()?;
    request.headers_mut().insert("x-forwarded-for", from.parse().ok()?);
    let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request)).await.ok()?.ok()?;
    Some(ws)
}

async fn send(ws: &mut Ws, value: Value) -> Option<()> {
    ws.send(Message::text(value.to_string())).await.ok()
}

/// The next message of type `kind`, skipping others, within [`STEP`].
async fn wait_for(ws: &mut Ws, kind: &str) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.ok()?;
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str()).ok()?;
            if value["type"] == kind {
                return Some(value);
            }
        }
    }
}

/// Reads whatever arrives for `duration` (the chat, which in a browser goes peer to peer);
/// returns how many messages came.
async fn listen(ws: &mut Ws, duration: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + duration;
    let mut n = 0;
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, ws.next()).await {
        n += 1;
    }
    n
}

/// One user living sessions until `until`, from its own address.
async fn live(mm_url: String, user: u32, until: Instant) -> Lived {
    let from = format!("10.{}.{}.{}", (user >> 16) & 255, (user >> 8) & 255, user & 255);
    let mut lived = Lived::default();
    let mut session = 0usize;
    while Instant::now() < until {
        lived.sessions += 1;
        session += 1;
        let ending = ENDINGS[(user as usize + session) % ENDINGS.len()];
        let Some(mut mm) = connect(&mm_url, &from).await else { continue };
        let matched = async {
            wait_for(&mut mm, "ready").await?;
            send(&mut mm, json!({"type":"available"})).await?;
            wait_for(&mut mm, "matched").await
        }
        .await;
        let Some(matched) = matched else {
            let _ = mm.close(None).await;
            continue;
        };
        lived.matched += 1;
        let Some(mut sig) = connect(matched["signalingUrl"].as_str().unwrap_or_default(), &from).await else {
            continue;
        };
        let _ = send(&mut sig, json!({"type":"join","roomId":matched["roomId"],"ticket":matched["ticket"]})).await;
        let description = if matched["initiator"] == true { "offer" } else { "answer" };
        let _ = send(&mut sig, json!({"type":description,"sdp":"v=0 soak ".repeat(40)})).await;
        for i in 0..8 {
            let candidate = json!({"candidate":format!("candidate:{i} 1 udp 2113937151 10.0.0.{i} 5000{i} typ host"),"sdpMid":"0","sdpMLineIndex":0});
            let _ = send(&mut sig, json!({"type":"ice","candidate":candidate})).await;
        }
        let chat = Duration::from_millis(200 + (u64::from(user) * 37 + session as u64 * 101) % 600);
        lived.signals_received += listen(&mut sig, chat).await;
        match ending {
            Ending::Next => {
                let _ = send(&mut mm, json!({"type":"next"})).await;
                let _ = wait_for(&mut mm, "queued").await;
                let _ = sig.close(None).await;
                let _ = mm.close(None).await;
            }
            Ending::Leave => {
                let _ = send(&mut sig, json!({"type":"leave"})).await;
                let _ = send(&mut mm, json!({"type":"leave"})).await;
                let _ = wait_for(&mut mm, "left").await;
                let _ = sig.close(None).await;
                let _ = mm.close(None).await;
            }
            Ending::Vanish => {
                drop(sig);
                drop(mm);
            }
            Ending::Close => {
                let _ = sig.close(None).await;
                let _ = mm.close(None).await;
            }
        }
    }
    lived
}

/// `users` users living sessions for `duration`.
async fn soak(mm_url: &str, users: u32, duration: Duration) -> Lived {
    let until = Instant::now() + duration;
    let tasks: Vec<_> = (0..users).map(|user| tokio::spawn(live(mm_url.to_owned(), user, until))).collect();
    let mut total = Lived::default();
    for task in tasks {
        let lived = task.await.unwrap();
        total.sessions += lived.sessions;
        total.matched += lived.matched;
        total.signals_received += lived.signals_received;
    }
    total
}

/// The samples that must return to zero once every user is gone.
const LEFTOVERS: [&str; 6] = [
    "matchmaker_connections",
    "matchmaker_online",
    "matchmaker_queue_length",
    "matchmaker_rooms",
    "signaler_connections",
    "signaler_rooms",
];

/// Waits until every [`LEFTOVERS`] sample is zero; returns those that are not, with their values.
async fn wait_for_nothing_left(matchmaker: std::net::SocketAddr, signaler: std::net::SocketAddr) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, mm) = http_get(matchmaker, "/metrics").await;
        let (_, _, sig) = http_get(signaler, "/metrics").await;
        let left: Vec<String> = LEFTOVERS
            .iter()
            .filter_map(|sample| {
                let text = if sample.starts_with("matchmaker") { &mm } else { &sig };
                let value = metric_value(text, sample);
                (value != Some(0.0)).then(|| format!("{sample}={value:?}"))
            })
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_leaves_nothing_behind() {
    let (mut mm, mut sig) = support::configs();
    // Dropped sockets are held for resume this long; a short window lets the soak see them go.
    mm.common.resume_grace = Duration::from_secs(1);
    sig.common.resume_grace = Duration::from_secs(1);
    let stack = Stack::start_with_limits(mm, sig, Limits::default()).await;
    // One client through both services first, so that every task they keep is running.
    let warm_up = soak(&stack.mm_url(), 2, Duration::from_millis(300)).await;
    assert!(warm_up.matched > 0);
    let left = wait_for_nothing_left(stack.matchmaker, stack.signaler).await;
    assert!(left.is_empty(), "left behind by the warm-up: {left:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let lived = soak(&stack.mm_url(), 24, Duration::from_secs(4)).await;
    println!("short soak: {lived:?}");
    assert!(lived.matched > 24, "{lived:?}");
    let left = wait_for_nothing_left(stack.matchmaker, stack.signaler).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    // Every socket's task has ended: only the services' own tasks remain.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks_after = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    while tasks_after > tasks_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tasks_after = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    }
    assert!(tasks_after <= tasks_before, "{tasks_before} tasks before the soak, {tasks_after} after");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Long soak against the release-built binary (run by `scripts/soak.sh`): resident memory is
/// sampled while users come and go in rounds; after a warm-up round, memory must not grow from
/// round to round by more than 10% + 2 MiB, and nothing may be left after each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by scripts/soak.sh"]
async fn soak_memory_stays_flat() {
    let total = Duration::from_secs(env_number("SOAK_SECS", 120));
    let users = env_number("SOAK_USERS", 200) as u32;
    let round = Duration::from_secs(env_number("SOAK_ROUND_SECS", 20));
    let runner = Runner::start(&[]);
    let started = Instant::now();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut after_rounds = Vec::new();
    println!("{:>7}  {:>9}  {:>9}  {:>9}  {:>8}  left behind", "time", "rss MiB", "sessions", "matched", "signals");
    println!("{:>6.0}s  {:>9.1}  {:>9}  {:>9}  {:>8}  -", 0.0, mib(runner.resident_memory().await), 0, 0, 0);
    while started.elapsed() < total {
        let lived = soak(&runner.mm_url(), users, round).await;
        let left = wait_for_nothing_left(runner.matchmaker, runner.signaler).await;
        let rss = runner.resident_memory().await;
        after_rounds.push(rss);
        println!(
            "{:>6.0}s  {:>9.1}  {:>9}  {:>9}  {:>8}  {}",
            started.elapsed().as_secs_f64(),
            mib(rss),
            lived.sessions,
            lived.matched,
            lived.signals_received,
            if left.is_empty() { "nothing".to_owned() } else { left.join(" ") }
        );
        assert!(left.is_empty(), "left behind after a round: {left:?}");
    }
    let (_, _, metrics) = http_get(runner.signaler, "/metrics").await;
    println!("open files at the end: {:?}", metric_value(&metrics, "signaler_process_open_fds"));
    // The first round warms the allocator and the maps up; after it, flat.
    if let (Some(&warm), Some(&last)) = (after_rounds.first(), after_rounds.last()) {
        let allowed = mib(warm) * 1.10 + 2.0;
        println!("resident memory after the first round {:.1} MiB, after the last {:.1} MiB", mib(warm), mib(last));
        assert!(mib(last) <= allowed, "memory grew from {:.1} to {:.1} MiB", mib(warm), mib(last));
    }
}
