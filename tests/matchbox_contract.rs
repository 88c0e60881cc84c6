//! matchbox's protocol on the signaler (`/matchbox/{room}`), checked over real sockets with raw
//! WebSocket clients: ids, who offers, `?next=N` groups, byte-for-byte signals, and the
//! signaler's limits, origin checks, metrics and shutdown. On memory, one Redis or a cluster,
//! as `TEST_REDIS_URL` says.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{http_get, upgrade_status, wait_for_metric_value, Client, Stack};

/// A matchbox peer: its socket and the id the server gave it.
struct Peer {
    client: Client,
    id: String,
}

fn url(stack: &Stack, room: &str) -> String {
    format!("ws://{}/matchbox/{room}", stack.signaler)
}

/// Connects to `room` (path and query) and reads `IdAssigned`, which must come first.
async fn connect(stack: &Stack, room: &str) -> Peer {
    let mut client = Client::connect(&url(stack, room)).await;
    let first = client.recv().await;
    let id = first["IdAssigned"].as_str().unwrap_or_else(|| panic!("expected IdAssigned first, got {first}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{first}");
    Peer { id: id.to_owned(), client }
}

/// Connects `n` peers to `room` one after another, each once those before it have heard of it.
async fn arrive(stack: &Stack, room: &str, n: usize) -> Vec<Peer> {
    let mut peers = Vec::new();
    for _ in 0..n {
        peers.push(connect(stack, room).await);
    }
    peers
}

async fn expect_new_peer(peer: &mut Peer, new: &Peer) {
    assert_eq!(peer.client.recv().await, json!({"NewPeer": new.id}));
}

fn signal(to: &Peer, data: &str) -> String {
    format!(r#"{{"Signal":{{"receiver":"{}","data":{data}}}}}"#, to.id)
}

#[tokio::test]
async fn id_assigned_comes_first_and_is_a_fresh_uuid() {
    let stack = Stack::start().await;
    let a = connect(&stack, "first").await;
    let b = connect(&stack, "first").await;
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn a_newcomer_is_a_new_peer_to_those_already_there_and_they_make_the_offer() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "lobby").await;
    let mut b = connect(&stack, "lobby").await;
    expect_new_peer(&mut a, &b).await;
    let mut c = connect(&stack, "lobby").await;
    expect_new_peer(&mut a, &c).await;
    expect_new_peer(&mut b, &c).await;
    // The newcomer hears of nobody: it waits for the offers of those already there.
    c.client.expect_silence().await;
    a.client.send_text(&signal(&c, r#"{"Offer":"sdp"}"#)).await;
    assert_eq!(c.client.recv().await, json!({"Signal": {"sender": a.id, "data": {"Offer": "sdp"}}}));
}

#[tokio::test]
async fn signal_data_reaches_the_receiver_byte_for_byte_with_the_sender_set_by_the_server() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "bytes").await;
    let mut b = connect(&stack, "bytes").await;
    expect_new_peer(&mut a, &b).await;
    let data = r#"{ "IceCandidate" : "{\"candidate\":\"c 1 udp\"}" , "n": 1.50e0, "u":"\u00e9", "x":[ ] }"#;
    a.client.send_text(&signal(&b, data)).await;
    let got = b.client.recv_text().await;
    assert_eq!(got, format!(r#"{{"Signal":{{"sender":"{}","data":{data}}}}}"#, a.id));
    b.client.send_text(&signal(&a, "null")).await;
    assert_eq!(a.client.recv_text().await, format!(r#"{{"Signal":{{"sender":"{}","data":null}}}}"#, b.id));
}

#[tokio::test]
async fn next_2_pairs_arrivals_in_arrival_order_and_keeps_pairs_apart() {
    let stack = Stack::start().await;
    let mut peers = arrive(&stack, "duel?next=2", 1).await;
    peers.push(connect(&stack, "duel?next=2").await);
    let (first, second) = peers.split_at_mut(1);
    expect_new_peer(&mut first[0], &second[0]).await;
    let mut c = connect(&stack, "duel?next=2").await;
    let mut d = connect(&stack, "duel?next=2").await;
    expect_new_peer(&mut c, &d).await;
    for peer in &mut peers {
        peer.client.expect_silence().await;
    }
    // A signal across pairs goes nowhere; within a pair it arrives.
    c.client.send_text(&signal(&peers[0], "1")).await;
    c.client.send_text(&signal(&d, "2")).await;
    assert_eq!(d.client.recv().await, json!({"Signal": {"sender": c.id, "data": 2}}));
    peers[0].client.expect_silence().await;
}

#[tokio::test]
async fn next_3_groups_three_arrivals_and_the_fourth_starts_a_new_group() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "trio?next=3").await;
    let mut b = connect(&stack, "trio?next=3").await;
    expect_new_peer(&mut a, &b).await;
    let c = connect(&stack, "trio?next=3").await;
    expect_new_peer(&mut a, &c).await;
    expect_new_peer(&mut b, &c).await;
    let mut d = connect(&stack, "trio?next=3").await;
    let e = connect(&stack, "trio?next=3").await;
    expect_new_peer(&mut d, &e).await;
    a.client.expect_silence().await;
    b.client.expect_silence().await;
}

#[tokio::test]
async fn pools_of_other_sizes_and_the_plain_room_of_one_name_are_apart() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "same?next=2").await;
    let mut plain = connect(&stack, "same").await;
    let mut three = connect(&stack, "same?next=3").await;
    a.client.expect_silence().await;
    plain.client.expect_silence().await;
    three.client.expect_silence().await;
}

#[tokio::test]
async fn peer_left_goes_only_within_the_group() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "leave?next=2").await;
    let b = connect(&stack, "leave?next=2").await;
    expect_new_peer(&mut a, &b).await;
    let mut c = connect(&stack, "leave?next=2").await;
    let d = connect(&stack, "leave?next=2").await;
    expect_new_peer(&mut c, &d).await;
    let gone = d.id.clone();
    d.client.close().await;
    assert_eq!(c.client.recv().await, json!({"PeerLeft": gone}));
    a.client.expect_silence().await;
    let dropped = b.id.clone();
    drop(b.client); // no close frame: a dropped matchbox socket has left too
    assert_eq!(a.client.recv().await, json!({"PeerLeft": dropped}));
}

#[tokio::test]
async fn keep_alive_and_what_matchbox_does_not_say_are_ignored() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "quiet").await;
    let mut b = connect(&stack, "quiet").await;
    expect_new_peer(&mut a, &b).await;
    for text in [r#""KeepAlive""#, "not json", r#"{"type":"offer"}"#, r#"{"Signal":{"receiver":"x","data":1}}"#] {
        a.client.send_text(text).await;
    }
    a.client.expect_silence().await;
    b.client.expect_silence().await;
    a.client.send_text(&signal(&b, "3")).await;
    assert_eq!(b.client.recv().await, json!({"Signal": {"sender": a.id, "data": 3}}));
}

#[tokio::test]
async fn a_bad_room_name_or_next_is_refused_before_the_upgrade() {
    let stack = Stack::start().await;
    assert_eq!(upgrade_status(&url(&stack, "room?next=0"), &[]).await, 400);
    assert_eq!(upgrade_status(&url(&stack, "room?next=two"), &[]).await, 400);
    assert_eq!(upgrade_status(&url(&stack, &"x".repeat(129)), &[]).await, 400);
    assert_eq!(upgrade_status(&url(&stack, "room?next=2"), &[]).await, 101);
    let (status, _, _) = http_get(stack.signaler, "/matchbox/a/b").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn origins_not_allowed_are_refused_as_on_ws() {
    let (mm, mut sig) = support::configs();
    sig.common.allowed_origins = shared::origin::AllowedOrigins::parse("https://game.example").unwrap();
    let stack = Stack::start_with(mm, sig).await;
    let room = url(&stack, "guarded");
    assert_eq!(upgrade_status(&room, &[("origin", "https://evil.example")]).await, 403);
    assert_eq!(upgrade_status(&room, &[("origin", "https://game.example")]).await, 101);
}

#[tokio::test]
async fn connections_per_address_and_message_size_are_limited_as_on_ws() {
    let (mm, mut sig) = support::configs();
    sig.common.max_message_bytes = 1024;
    let limits = shared::limits::Limits { max_connections_per_ip: 2, ..shared::limits::Limits::unlimited() };
    let stack = Stack::start_with_limits(mm, sig, limits).await;
    let mut a = connect(&stack, "limits").await;
    let mut b = connect(&stack, "limits").await;
    expect_new_peer(&mut a, &b).await;
    assert_eq!(upgrade_status(&url(&stack, "limits"), &[]).await, 429);
    a.client.send_text(&signal(&b, &format!("\"{}\"", "x".repeat(2048)))).await;
    let frame = a.client.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(b.client.recv().await, json!({"PeerLeft": a.id}));
}

#[tokio::test]
async fn relayed_signals_and_connections_show_in_metrics() {
    let stack = Stack::start().await;
    let mut a = connect(&stack, "counted").await;
    let mut b = connect(&stack, "counted").await;
    expect_new_peer(&mut a, &b).await;
    a.client.send_text(&signal(&b, "1")).await;
    b.client.recv().await;
    wait_for_metric_value(stack.signaler, "signaler_relayed_messages_total", |v| v >= 1.0).await;
    wait_for_metric_value(stack.signaler, "signaler_connections", |v| v >= 2.0).await;
}

#[tokio::test]
async fn a_drain_closes_a_lonely_matchbox_peer_with_1012_and_a_group_at_the_end_of_the_grace() {
    let (mm, mut sig) = support::configs();
    // The last 2 s of the grace are for closing handshakes: 4 s leave 2 s of chat.
    sig.common.shutdown_grace = Duration::from_secs(4);
    let stack = Stack::start_with(mm, sig).await;
    let mut alone = connect(&stack, "drain-alone").await;
    let mut a = connect(&stack, "drain-pair").await;
    let mut b = connect(&stack, "drain-pair").await;
    expect_new_peer(&mut a, &b).await;
    let shutdown = tokio::spawn(stack.shutdown());
    assert_eq!(u16::from(alone.client.expect_close().await.expect("a close frame").code), 1012);
    a.client.send_text(&signal(&b, r#""during the drain""#)).await;
    let during: Value = b.client.recv().await;
    assert_eq!(during["Signal"]["data"], "during the drain");
    assert_eq!(u16::from(a.client.expect_close().await.expect("a close frame").code), 1001);
    assert!(shutdown.await.unwrap(), "the signaler did not drain within the grace period");
}

#[tokio::test]
async fn frames_refused_by_the_limits_are_dropped_without_an_error_matchbox_cannot_read() {
    let (mm, sig) = support::configs();
    let limits =
        shared::limits::Limits { messages_per_sec: 1, message_burst: 2, ..shared::limits::Limits::unlimited() };
    let stack = Stack::start_with_limits(mm, sig, limits).await;
    let mut a = connect(&stack, "strict").await;
    let mut b = connect(&stack, "strict").await;
    expect_new_peer(&mut a, &b).await;
    for n in 0..4 {
        a.client.send_text(&signal(&b, &n.to_string())).await;
    }
    a.client.send_binary(vec![1, 2, 3]).await;
    assert_eq!(b.client.recv().await, json!({"Signal": {"sender": a.id, "data": 0}}));
    assert_eq!(b.client.recv().await, json!({"Signal": {"sender": a.id, "data": 1}}));
    b.client.expect_silence().await;
    a.client.expect_silence().await; // no {"type":"error"}: matchbox's clients would choke on it
    wait_for_metric_value(stack.signaler, "signaler_errors_total{code=\"rate-limited\"}", |v| v >= 2.0).await;
}
