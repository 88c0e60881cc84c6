//! The long-polling transport (contract 1.1, "Long-polling transport"): the same sessions as
//! `/ws` over HTTP requests, on both services. Sessions live on the instance that opened them.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{http_request, Client, Stack};

/// A long-polling client: its sid and the highest seq it has seen.
struct Poller {
    addr: SocketAddr,
    sid: String,
    seen: u64,
    /// Events received and not yet read by the test.
    pending: std::collections::VecDeque<Value>,
}

impl Poller {
    /// `POST /lp`; returns the client and the events of the answer.
    async fn open(addr: SocketAddr) -> (Poller, Vec<Value>) {
        let (status, _, body) = http_request(addr, "POST", "/lp", &[], Some("")).await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        let mut poller =
            Poller { addr, sid: answer["sid"].as_str().unwrap().to_owned(), seen: 0, pending: Default::default() };
        let events = poller.take(&answer);
        (poller, events)
    }

    fn path(&self) -> String {
        format!("/lp/{}", self.sid)
    }

    /// The messages of an answer this client had not seen, in order.
    fn take(&mut self, answer: &Value) -> Vec<Value> {
        let mut fresh = Vec::new();
        for event in answer["events"].as_array().unwrap() {
            let seq = event["seq"].as_u64().unwrap();
            if seq > self.seen {
                assert_eq!(seq, self.seen + 1, "events in order, none missing: {answer}");
                self.seen = seq;
                fresh.push(event["msg"].clone());
            }
        }
        fresh
    }

    /// One `GET /lp/{sid}?ack=<seen>`: (status, answer).
    async fn get_raw(&self, ack: u64) -> (u16, Value) {
        let (status, _, body) = http_request(self.addr, "GET", &format!("{}?ack={ack}", self.path()), &[], None).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// The next message, polling as a page does.
    async fn recv(&mut self) -> Value {
        let deadline = Instant::now() + support::PATIENCE;
        while self.pending.is_empty() {
            assert!(Instant::now() < deadline, "no event in time");
            let (status, answer) = self.get_raw(self.seen).await;
            assert_eq!(status, 200, "{answer}");
            let fresh = self.take(&answer);
            self.pending.extend(fresh);
        }
        self.pending.pop_front().unwrap()
    }

    async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] == kind {
                return msg;
            }
        }
    }

    /// `POST /lp/{sid}` with these messages; returns the status.
    async fn send(&self, messages: &[Value]) -> u16 {
        let body = serde_json::to_string(messages).unwrap();
        http_request(self.addr, "POST", &self.path(), &[], Some(&body)).await.0
    }
}

fn configs(hold_secs: u64) -> (matchmaker::Config, signaler::Config) {
    let (mut mm, mut sig) = support::configs();
    mm.common.poll_hold = Duration::from_secs(hold_secs);
    sig.common.poll_hold = Duration::from_secs(hold_secs);
    (mm, sig)
}

#[tokio::test]
async fn a_long_polling_client_is_greeted_paired_with_a_websocket_client_and_relays_to_it() {
    let (mm, sig) = configs(2);
    let stack = Stack::start_with(mm, sig).await;
    let (mut lp, greeting) = Poller::open(stack.matchmaker).await;
    assert_eq!(greeting[0]["type"], "ready", "{greeting:?}");
    assert!(greeting[0]["features"].as_array().unwrap().contains(&json!("poll")));
    let (mut ws, _) = Client::matchmaker(&stack).await;
    assert_eq!(lp.send(&[json!({"type":"available"})]).await, 204);
    lp.recv_type("queued").await;
    ws.send(json!({"type":"available"})).await;
    ws.recv_type("queued").await;
    let lp_matched = lp.recv_type("matched").await;
    let ws_matched = ws.recv_type("matched").await;
    assert_eq!(lp_matched["roomId"], ws_matched["roomId"]);

    // On the signaler: the long-polling peer joins and trades an offer and an answer.
    let (mut lp_sig, events) = Poller::open(stack.signaler).await;
    assert!(events.is_empty(), "the signaler greets nobody: {events:?}");
    lp_sig.send(&[json!({"type":"join","roomId":lp_matched["roomId"],"ticket":lp_matched["ticket"]})]).await;
    assert_eq!(lp_sig.recv_type("joined").await["protocol"], "1.1");
    let mut ws_sig = Client::signaler(&stack).await;
    ws_sig.send(support::join(&ws_matched)).await;
    ws_sig.recv_type("joined").await;
    lp_sig.recv_type("peer-joined").await;
    lp_sig.send(&[json!({"type":"offer","sdp":"v=0 lp"}), json!({"type":"ice","candidate":null})]).await;
    assert_eq!(ws_sig.recv_type("offer").await["sdp"], "v=0 lp");
    assert!(ws_sig.recv_type("ice").await["candidate"].is_null());
    ws_sig.send(json!({"type":"answer","sdp":"v=0 ws"})).await;
    assert_eq!(lp_sig.recv_type("answer").await["sdp"], "v=0 ws");
    // Errors are events too.
    lp_sig.send(&[json!({"type":"dance"})]).await;
    assert_eq!(lp_sig.recv_type("error").await["code"], "unknown-type");
}

#[tokio::test]
async fn a_lost_response_is_sent_again_and_an_acknowledged_event_is_not() {
    let (mm, sig) = configs(1);
    let stack = Stack::start_with(mm, sig).await;
    let (lp, greeting) = Poller::open(stack.matchmaker).await;
    lp.send(&[json!({"type":"ping"}), json!({"type":"ping"})]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ready (1) and two pongs: all again, as long as the client acknowledges nothing.
    for _ in 0..2 {
        let (_, answer) = lp.get_raw(0).await;
        let seqs: Vec<u64> = answer["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3], "{answer}");
        assert_eq!(answer["events"][0]["msg"], greeting[0]);
    }
    let (_, answer) = lp.get_raw(2).await;
    assert_eq!(answer["events"], json!([{"seq":3,"msg":{"type":"pong"}}]));
    let started = Instant::now();
    let (_, answer) = lp.get_raw(3).await;
    assert_eq!(answer["events"], json!([]), "nothing new: an empty answer after the hold");
    assert!(started.elapsed() >= Duration::from_millis(900), "the GET waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_second_get_answers_the_first_at_once() {
    let (mm, sig) = configs(5);
    let stack = Stack::start_with(mm, sig).await;
    let (lp, _) = Poller::open(stack.matchmaker).await;
    let addr = stack.matchmaker;
    let path = format!("{}?ack=1", lp.path());
    let started = Instant::now();
    let first = tokio::spawn(async move { http_request(addr, "GET", &path, &[], None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn({
        let path = format!("{}?ack=1", lp.path());
        async move { http_request(addr, "GET", &path, &[], None).await }
    });
    let (status, _, body) = first.await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"events":[]}"#));
    assert!(started.elapsed() < Duration::from_secs(2), "the first GET ended when the second began");
    lp.send(&[json!({"type":"ping"})]).await;
    let (_, _, body) = second.await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["events"][0]["msg"]["type"], "pong");
}

#[tokio::test]
async fn a_session_with_no_get_for_twice_the_hold_has_dropped_and_resumes() {
    let (mm, sig) = configs(1);
    let stack = Stack::start_with(mm, sig).await;
    let (mut lp, greeting) = Poller::open(stack.matchmaker).await;
    let (mut ws, _) = Client::matchmaker(&stack).await;
    lp.send(&[json!({"type":"available"})]).await;
    lp.recv_type("queued").await;
    ws.send(json!({"type":"available"})).await;
    ws.recv_type("queued").await;
    let matched = lp.recv_type("matched").await;
    ws.recv_type("matched").await;
    // No GET from now on: after 2 s the partner hears the client is away, not gone.
    let away = ws.recv_within(Duration::from_secs(5)).await;
    assert_eq!(away["type"], "partner-away", "{away}");
    let (mut again, _) = Poller::open(stack.matchmaker).await;
    again.send(&[json!({"type":"resume","token":greeting[0]["resumeToken"]})]).await;
    assert_eq!(again.recv_type("resumed").await["state"], "matched");
    assert_eq!(again.recv_type("matched").await["roomId"], matched["roomId"]);
    ws.recv_type("partner-back").await;
}

#[tokio::test]
async fn delete_is_a_clean_close_and_an_unknown_or_ended_sid_is_404() {
    let (mm, sig) = configs(2);
    let stack = Stack::start_with(mm, sig).await;
    let (mut lp, _) = Poller::open(stack.matchmaker).await;
    let (mut ws, _) = Client::matchmaker(&stack).await;
    lp.send(&[json!({"type":"available"})]).await;
    lp.recv_type("queued").await;
    ws.send(json!({"type":"available"})).await;
    ws.recv_type("queued").await;
    ws.recv_type("matched").await;
    let (status, _, _) = http_request(stack.matchmaker, "DELETE", &lp.path(), &[], Some("")).await;
    assert_eq!(status, 204);
    ws.recv_type("partner-left").await; // gone at once, not away
    assert_eq!(lp.get_raw(0).await.0, 404);
    assert_eq!(lp.send(&[json!({"type":"ping"})]).await, 404);
    assert_eq!(http_request(stack.matchmaker, "GET", "/lp/nobody?ack=0", &[], None).await.0, 404);
}

#[tokio::test]
async fn a_body_over_the_message_limit_is_413_and_ends_the_session_as_1009() {
    let (mm, sig) = configs(2);
    let stack = Stack::start_with(mm, sig).await;
    let (mut lp, _) = Poller::open(stack.signaler).await;
    let big = format!(r#"[{{"type":"offer","sdp":"{}"}}]"#, "x".repeat(70_000));
    let (status, _, _) = http_request(stack.signaler, "POST", &lp.path(), &[], Some(&big)).await;
    assert_eq!(status, 413);
    assert_eq!(lp.recv_type("error").await["code"], "too-large");
    let (_, answer) = lp.get_raw(lp.seen).await;
    assert_eq!(answer["closed"]["code"], 1009, "{answer}");
    // Not a JSON array: 400, and the session goes on.
    let (mut other, _) = Poller::open(stack.signaler).await;
    let (status, _, _) = http_request(stack.signaler, "POST", &other.path(), &[], Some(r#"{"type":"ping"}"#)).await;
    assert_eq!(status, 400);
    other.send(&[json!({"type":"ping"})]).await;
    other.recv_type("pong").await;
}

#[tokio::test]
async fn cors_is_allowed_exactly_for_the_allowed_origins() {
    let (mut mm, mut sig) = configs(1);
    let origins = shared::origin::AllowedOrigins::parse("https://chat.example.com").unwrap();
    mm.common.allowed_origins = origins.clone();
    sig.common.allowed_origins = origins;
    let stack = Stack::start_with(mm, sig).await;
    let good = [("Origin", "https://chat.example.com")];
    let evil = [("Origin", "https://evil.example.com")];
    for addr in [stack.matchmaker, stack.signaler] {
        let (status, head, _) = http_request(addr, "OPTIONS", "/lp", &good, Some("")).await;
        assert_eq!(status, 204);
        let head = head.to_ascii_lowercase();
        assert!(head.contains("access-control-allow-origin: https://chat.example.com"), "{head}");
        assert!(head.contains("access-control-allow-methods: get, post, delete, options"), "{head}");
        let (status, head, _) = http_request(addr, "OPTIONS", "/lp", &evil, Some("")).await;
        assert_eq!(status, 403);
        assert!(!head.to_ascii_lowercase().contains("access-control-allow-origin"), "{head}");
        assert_eq!(http_request(addr, "POST", "/lp", &evil, Some("")).await.0, 403);
        assert_eq!(http_request(addr, "POST", "/lp", &[], Some("")).await.0, 403, "no Origin: refused, as an upgrade");
        let (status, head, body) = http_request(addr, "POST", "/lp", &good, Some("")).await;
        assert_eq!(status, 200, "{body}");
        assert!(head.to_ascii_lowercase().contains("access-control-allow-origin: https://chat.example.com"));
        let sid = serde_json::from_str::<Value>(&body).unwrap()["sid"].as_str().unwrap().to_owned();
        let path = format!("/lp/{sid}");
        assert_eq!(http_request(addr, "POST", &path, &evil, Some("[]")).await.0, 403);
        assert_eq!(http_request(addr, "POST", &path, &good, Some("[]")).await.0, 204);
    }
}

#[tokio::test]
async fn what_waits_for_a_client_is_bounded_and_a_client_that_stops_polling_is_dropped_all_the_same() {
    let (mut mm, sig) = configs(1);
    mm.common.outbox_capacity = 80;
    let stack = Stack::start_with(mm, sig).await;
    let (lp, _) = Poller::open(stack.matchmaker).await;
    // 300 pongs, never acknowledged: the carriage keeps OUTBOX_CAPACITY events and takes no
    // more, as a socket that stopped reading.
    let pings: Vec<Value> = (0..300).map(|_| json!({"type":"ping"})).collect();
    assert_eq!(lp.send(&pings).await, 204);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, answer) = lp.get_raw(0).await;
    assert_eq!(status, 200);
    assert_eq!(answer["events"].as_array().unwrap().len(), 80, "ready and 79 pongs, no more");
    // No GET for twice the hold: dropped, though its driver was waiting to write.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(lp.get_raw(80).await.0, 404);
}

/// A room on the signaler whose two peers use WebSockets, or long polling when `poll`.
async fn room_over(stack: &Stack, poll: bool) -> (Client, Client) {
    let (mut a, _) = Client::matchmaker(stack).await;
    let (mut b, _) = Client::matchmaker(stack).await;
    let (a_matched, b_matched) = support::match_up(&mut a, &mut b).await;
    let mut peers = Vec::new();
    for matched in [a_matched, b_matched] {
        let mut peer =
            if poll { Client::connect_poll(&stack.sig_url()).await } else { Client::connect(&stack.sig_url()).await };
        peer.send(support::join(&matched)).await;
        peer.recv_type("joined").await;
        peers.push(peer);
    }
    let b = peers.pop().unwrap();
    let mut a = peers.pop().unwrap();
    a.recv_type("peer-joined").await;
    (a, b)
}

#[tokio::test]
async fn a_relayed_message_over_long_polling_arrives_within_a_second_and_its_round_trip_is_printed_next_to_websockets()
{
    let (mm, sig) = configs(25);
    let stack = Stack::start_with(mm, sig).await;
    let (mut ws_a, mut ws_b) = room_over(&stack, false).await;
    let (mut lp_a, mut lp_b) = room_over(&stack, true).await;
    let over_ws = support::sample_relay(&mut ws_a, &mut ws_b, Duration::from_secs(2)).await;
    let over_lp = support::sample_relay(&mut lp_a, &mut lp_b, Duration::from_secs(2)).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "relay sender -> signaler -> receiver, same run: WebSocket p50 {:.2} ms p99 {:.2} ms ({} samples); long polling p50 {:.2} ms p99 {:.2} ms ({} samples)",
        ms(over_ws.quantile(0.5)),
        ms(over_ws.quantile(0.99)),
        over_ws.0.len(),
        ms(over_lp.quantile(0.5)),
        ms(over_lp.quantile(0.99)),
        over_lp.0.len()
    );
    assert!(over_lp.quantile(0.99) < Duration::from_secs(1), "long polling p99 {:?}", over_lp.quantile(0.99));
}
