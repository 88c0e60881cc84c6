//! matchbox's rooms over HTTP on the signaler (`/matchbox/poll/…`, `/matchbox/signal`), as
//! matchbox's WASI server serves them: joins, long-held polls, signals, idle leaving, and the
//! same rooms as the sockets'. Real HTTP requests; on memory, one Redis or a cluster.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{http_get, http_request, Client, Stack};

/// `POLL_HOLD_SECS` in these tests.
const HOLD: Duration = Duration::from_secs(1);

async fn stack() -> Stack {
    let (mm, mut sig) = support::configs();
    sig.common.poll_hold = HOLD;
    Stack::start_with(mm, sig).await
}

/// A poll's answer: its peer id and events, each event parsed.
async fn poll(stack: &Stack, path: &str) -> (String, Vec<Value>) {
    let (status, _, body) = http_get(stack.signaler, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let events =
        answer["events"].as_array().unwrap().iter().map(|e| serde_json::from_str(e.as_str().unwrap()).unwrap());
    (answer["peer_id"].as_str().unwrap().to_owned(), events.collect())
}

/// Joins `room` by a first poll; returns the peer id, checking `IdAssigned` came first.
async fn join(stack: &Stack, room: &str) -> String {
    let (peer, events) = poll(stack, &format!("/matchbox/poll/{room}")).await;
    assert_eq!(events, vec![json!({"IdAssigned": peer})]);
    peer
}

async fn events_of(stack: &Stack, room: &str, peer: &str) -> Vec<Value> {
    let join = if room.contains('?') { '&' } else { '?' };
    poll(stack, &format!("/matchbox/poll/{room}{join}peer_id={peer}")).await.1
}

async fn signal(stack: &Stack, from: &str, body: &str) -> u16 {
    http_request(stack.signaler, "POST", "/matchbox/signal", &[("X-Peer-Id", from)], Some(body)).await.0
}

#[tokio::test]
async fn two_pollers_see_each_other_and_a_signal_arrives_with_its_data_untouched() {
    let stack = stack().await;
    let a = join(&stack, "http").await;
    let b = join(&stack, "http").await;
    assert_eq!(events_of(&stack, "http", &a).await, vec![json!({"NewPeer": b})]);
    let data = r#"{ "Offer" : "v=0", "n": 1.50 }"#;
    assert_eq!(signal(&stack, &b, &format!(r#"{{"Signal":{{"receiver":"{a}","data":{data}}}}}"#)).await, 204);
    let (_, _, body) = http_get(stack.signaler, &format!("/matchbox/poll/http?peer_id={a}")).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["events"], json!([format!(r#"{{"Signal":{{"sender":"{b}","data":{data}}}}}"#)]));
}

#[tokio::test]
async fn a_poll_is_held_until_an_event_arrives_and_answers_at_once_then() {
    let (mm, mut sig) = support::configs();
    sig.common.poll_hold = Duration::from_secs(4);
    let stack = Stack::start_with(mm, sig).await;
    let a = join(&stack, "held").await;
    events_of(&stack, "held", &a).await; // nothing yet: answered empty after the hold
    let addr = stack.signaler;
    let path = format!("/matchbox/poll/held?peer_id={a}");
    let started = Instant::now();
    let held = tokio::spawn(async move { http_get(addr, &path).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = join(&stack, "held").await;
    let (status, _, body) = held.await.unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "answered only after {:?}", started.elapsed());
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["events"], json!([format!(r#"{{"NewPeer":"{b}"}}"#)]));
}

#[tokio::test]
async fn a_poll_with_nothing_waiting_answers_empty_at_the_end_of_the_hold() {
    let stack = stack().await;
    let a = join(&stack, "empty").await;
    let started = Instant::now();
    assert!(events_of(&stack, "empty", &a).await.is_empty());
    let waited = started.elapsed();
    assert!(waited >= HOLD - Duration::from_millis(50) && waited < HOLD * 3, "{waited:?}");
}

#[tokio::test]
async fn events_are_gone_once_the_next_poll_arrives() {
    let stack = stack().await;
    let a = join(&stack, "once").await;
    let b = join(&stack, "once").await;
    assert_eq!(events_of(&stack, "once", &a).await, vec![json!({"NewPeer": b})]);
    assert!(events_of(&stack, "once", &a).await.is_empty());
}

#[tokio::test]
async fn a_peer_that_stops_polling_for_twice_the_hold_has_left() {
    let stack = stack().await;
    let a = join(&stack, "idle").await;
    let b = join(&stack, "idle").await;
    let deadline = Instant::now() + HOLD * 6;
    let mut heard = Vec::new();
    while !heard.contains(&json!({"PeerLeft": b})) {
        assert!(Instant::now() < deadline, "never heard that {b} left: {heard:?}");
        heard.extend(events_of(&stack, "idle", &a).await);
    }
    let (status, _, _) = http_get(stack.signaler, &format!("/matchbox/poll/idle?peer_id={b}")).await;
    assert_eq!(status, 404, "a peer that left is unknown");
}

#[tokio::test]
async fn next_2_over_http_pairs_arrivals_in_order() {
    let stack = stack().await;
    let a = join(&stack, "pair?next=2").await;
    let b = join(&stack, "pair?next=2").await;
    let c = join(&stack, "pair?next=2").await;
    let d = join(&stack, "pair?next=2").await;
    assert_eq!(events_of(&stack, "pair?next=2&x=1", &a).await, vec![json!({"NewPeer": b})]);
    assert_eq!(events_of(&stack, "pair?next=2", &c).await, vec![json!({"NewPeer": d})]);
    assert_eq!(signal(&stack, &a, &format!(r#"{{"Signal":{{"receiver":"{c}","data":1}}}}"#)).await, 204);
    assert!(events_of(&stack, "pair?next=2", &c).await.is_empty(), "a signal across pairs goes nowhere");
}

#[tokio::test]
async fn polled_peers_and_socket_peers_share_the_rooms() {
    let stack = stack().await;
    let mut socket = Client::connect(&format!("ws://{}/matchbox/mixed", stack.signaler)).await;
    let socket_id = socket.recv().await["IdAssigned"].as_str().unwrap().to_owned();
    let polled = join(&stack, "mixed").await;
    assert_eq!(socket.recv().await, json!({"NewPeer": polled}));
    socket.send_text(&format!(r#"{{"Signal":{{"receiver":"{polled}","data":"offer"}}}}"#)).await;
    assert_eq!(
        events_of(&stack, "mixed", &polled).await,
        vec![json!({"Signal": {"sender": socket_id, "data": "offer"}})]
    );
    assert_eq!(
        signal(&stack, &polled, &format!(r#"{{"Signal":{{"receiver":"{socket_id}","data":"answer"}}}}"#)).await,
        204
    );
    assert_eq!(socket.recv().await, json!({"Signal": {"sender": polled, "data": "answer"}}));
}

#[tokio::test]
async fn unknown_peers_and_bad_requests_get_their_statuses() {
    let stack = stack().await;
    let a = join(&stack, "bad").await;
    let nobody = uuid::Uuid::new_v4().to_string();
    assert_eq!(http_get(stack.signaler, &format!("/matchbox/poll/bad?peer_id={nobody}")).await.0, 404);
    assert_eq!(http_get(stack.signaler, "/matchbox/poll/bad?peer_id=nope").await.0, 400);
    assert_eq!(http_get(stack.signaler, "/matchbox/poll/bad?next=0").await.0, 400);
    let to_a = format!(r#"{{"Signal":{{"receiver":"{a}","data":1}}}}"#);
    assert_eq!(signal(&stack, &nobody, &to_a).await, 404);
    assert_eq!(http_request(stack.signaler, "POST", "/matchbox/signal", &[], Some(&to_a)).await.0, 400);
    assert_eq!(signal(&stack, &a, "not json").await, 400);
    assert_eq!(signal(&stack, &a, r#""KeepAlive""#).await, 204);
    assert_eq!(signal(&stack, &a, &format!("\"{}\"", "x".repeat(70_000))).await, 413);
}

#[tokio::test]
async fn polling_peers_are_counted_in_metrics_and_held_to_max_connections() {
    let (mm, mut sig) = support::configs();
    sig.common.poll_hold = HOLD;
    let limits = shared::limits::Limits { max_connections: 2, ..shared::limits::Limits::unlimited() };
    let stack = Stack::start_with_limits(mm, sig, limits).await;
    join(&stack, "full").await;
    join(&stack, "full").await;
    let (status, head, _) = http_get(stack.signaler, "/matchbox/poll/full").await;
    assert_eq!(status, 503);
    assert!(head.to_ascii_lowercase().contains("retry-after: 5"), "{head}");
    support::wait_for_metric_value(stack.signaler, "signaler_matchbox_polled_peers", |v| v == 2.0).await;
}
