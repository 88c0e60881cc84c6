//! Floods from one hostile address against the real binary with its default limits: messages,
//! connections and `next`. Each gets the documented answer, and honest clients on the same
//! instance keep pairing and relaying; their latency is measured and printed (run with
//! `--nocapture --test-threads=1` for undisturbed figures; nothing here asserts on time).
//!
//! Every client connects through loopback, which the binary trusts as a proxy by default, so
//! `X-Forwarded-For` gives the hostile and the honest clients their own addresses.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::limits::{DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MESSAGES_PER_SEC, DEFAULT_MESSAGE_BURST};
use support::{sample_relay, upgrade_status, Client, Latencies, Runner};
use tokio_tungstenite::tungstenite::Message;

/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(2);
/// Frames a flooding socket sends per millisecond: about 32,000 a second, 1,600 times the rate.
const BATCH: usize = 32;
/// The hostile address.
const HOSTILE: &str = "203.0.113.66";

/// What a hostile client saw.
#[derive(Debug, Default)]
struct Tally {
    connections: usize,
    sent: usize,
    /// Answers by `type` (errors by `code`).
    answers: HashMap<String, usize>,
    /// Close codes the server sent.
    closes: HashMap<u16, usize>,
    /// HTTP statuses of refused upgrades.
    refused: HashMap<u16, usize>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.connections += other.connections;
        self.sent += other.sent;
        for (k, v) in other.answers {
            *self.answers.entry(k).or_default() += v;
        }
        for (k, v) in other.closes {
            *self.closes.entry(k).or_default() += v;
        }
        for (k, v) in other.refused {
            *self.refused.entry(k).or_default() += v;
        }
    }

    fn answers(&self, kind: &str) -> usize {
        self.answers.get(kind).copied().unwrap_or(0)
    }
}

/// Opens one socket from `from` (an `X-Forwarded-For` address; loopback is a trusted proxy by
/// default) and sends `frame` as fast as it can until the server closes it or `until`.
async fn flood_one(url: &str, from: &str, frame: &str, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let socket = match Client::connect_with_headers(url, &[("x-forwarded-for", from)]).await {
        Ok(client) => client,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            *tally.refused.entry(response.status().as_u16()).or_default() += 1;
            return tally;
        }
        Err(err) => panic!("flood connect: {err}"),
    };
    tally.connections = 1;
    let (mut sink, mut stream) = socket.into_inner().split();
    let reader = tokio::spawn(async move {
        let mut answers: HashMap<String, usize> = HashMap::new();
        let mut close = None;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(support::PATIENCE, stream.next()).await {
            match frame {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let key = if value["type"] == "error" { &value["code"] } else { &value["type"] };
                    *answers.entry(key.as_str().unwrap_or("?").to_owned()).or_default() += 1;
                }
                Message::Close(frame) => {
                    close = frame.map(|f| u16::from(f.code));
                    break;
                }
                _ => {}
            }
        }
        (answers, close)
    });
    let message = Message::text(frame.to_owned());
    'flood: while Instant::now() < until {
        for _ in 0..BATCH {
            if sink.feed(message.clone()).await.is_err() {
                break 'flood;
            }
            tally.sent += 1;
        }
        if sink.flush().await.is_err() {
            break;
        }
        // A pause a millisecond long, so that the flood is bounded by the wire rather than by
        // this process starving the server of the machine's two cores.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = sink.close().await;
    if let Ok(Ok((answers, close))) = tokio::time::timeout(support::PATIENCE, reader).await {
        tally.answers = answers;
        if let Some(code) = close {
            tally.closes.insert(code, 1);
        }
    }
    tally
}

/// `sockets` hostile sockets at a time from `from`, each reconnecting when closed, for `FLOOD`.
async fn flood(url: String, from: &'static str, frame: &'static str, sockets: usize) -> Tally {
    let until = Instant::now() + FLOOD;
    let mut tasks = Vec::new();
    for _ in 0..sockets {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < until {
                tally.add(flood_one(&url, from, frame, until).await);
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.add(task.await.unwrap());
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_flood_is_rate_limited_then_closed_with_1008_while_others_keep_their_latency() {
    let runner = Runner::start(&[]);
    let (mut a, mut b) = runner.room(["198.51.100.1", "198.51.100.2"]).await;
    let baseline = sample_relay(&mut a, &mut b, Duration::from_millis(500)).await;
    let (attack, during) =
        tokio::join!(flood(runner.sig_url(), HOSTILE, r#"{"type":"ping"}"#, 4), sample_relay(&mut a, &mut b, FLOOD));
    println!(
        "message flood: {} sockets sent {} frames; answers {:?}; closes {:?}",
        attack.connections, attack.sent, attack.answers, attack.closes
    );
    println!("honest relay latency: before {baseline}; during the flood {during}");
    assert!(attack.answers("rate-limited") > 0, "{attack:?}");
    // Each socket gets its burst and its rate for the time it lives, no more.
    let per_socket = (DEFAULT_MESSAGE_BURST + DEFAULT_MESSAGES_PER_SEC * FLOOD.as_secs() as u32 + 1) as usize;
    assert!(attack.answers("pong") <= attack.connections * per_socket, "{attack:?}");
    assert_eq!(attack.closes.keys().copied().collect::<Vec<_>>(), [1008], "{attack:?}");
    a.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_gets_429_while_others_still_pair() {
    let runner = Runner::start(&[]);
    let url = runner.mm_url();
    // The hostile address holds as many sockets as it may, then keeps asking for more.
    let mut held = Vec::new();
    for _ in 0..DEFAULT_MAX_CONNECTIONS_PER_IP {
        held.push(Client::connect_with_headers(&url, &[("x-forwarded-for", HOSTILE)]).await.unwrap());
    }
    let attack = async {
        let until = Instant::now() + FLOOD;
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        while Instant::now() < until {
            *statuses.entry(upgrade_status(&url, &[("x-forwarded-for", HOSTILE)]).await).or_default() += 1;
        }
        statuses
    };
    let (statuses, pairing) = tokio::join!(attack, honest_pairing(&url));
    println!("connection flood: upgrade answers beyond the per-address limit {statuses:?}");
    println!("honest clients, connect to matched, during the flood: {pairing}");
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [429], "{statuses:?}");
    assert!(!pairing.0.is_empty());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_flood_is_rate_limited_while_others_still_pair() {
    let runner = Runner::start(&[]);
    let url = runner.mm_url();
    let (attack, pairing) = tokio::join!(flood(url.clone(), HOSTILE, r#"{"type":"next"}"#, 4), honest_pairing(&url));
    println!(
        "next flood: {} sockets sent {} frames; answers {:?}; closes {:?}",
        attack.connections, attack.sent, attack.answers, attack.closes
    );
    println!("honest clients, connect to matched, during the flood: {pairing}");
    // Presses beyond NEXT_BURST are refused, and a socket that keeps sending past the message
    // rate is closed.
    assert!(attack.answers("rate-limited") > 0, "{attack:?}");
    assert!(attack.closes.keys().all(|code| *code == 1008), "{attack:?}");
    assert!(!pairing.0.is_empty());
}

/// Honest pairs, each from its own addresses, connecting and waiting to be matched, one pair
/// after another for `FLOOD`: how long from connecting until both are matched.
async fn honest_pairing(url: &str) -> Latencies {
    let mut pairing = Latencies::default();
    let until = Instant::now() + FLOOD;
    let mut n = 0;
    while Instant::now() < until {
        let started = Instant::now();
        let (one, two) = (format!("198.51.100.{}", n % 200 + 1), format!("192.0.2.{}", n % 200 + 1));
        let mut x = Client::connect_with_headers(url, &[("x-forwarded-for", &one)]).await.unwrap();
        let mut y = Client::connect_with_headers(url, &[("x-forwarded-for", &two)]).await.unwrap();
        for client in [&mut x, &mut y] {
            client.recv_type("ready").await;
            client.send(json!({"type":"available"})).await;
        }
        // Each is paired with whoever waits: the other, or a flooder (which may leave it again at
        // once, and then it is queued again). Either way it meets someone.
        for client in [&mut x, &mut y] {
            while client.recv().await["type"] != "matched" {}
        }
        pairing.push(started.elapsed());
        x.close().await;
        y.close().await;
        n += 1;
    }
    pairing
}
