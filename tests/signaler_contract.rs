//! The signaler's rules from the wire contract, checked over real sockets.

mod support;

use serde_json::json;
use support::{forge_ticket, join, joined_room, now, pair, Client, Stack, SECRET};

#[tokio::test]
async fn join_with_the_matched_ticket_is_answered_joined() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&p.a_matched)).await;
    let joined = a.recv_type("joined").await;
    assert_eq!(joined["roomId"], p.a_matched["roomId"]);
    assert_eq!(joined["peerId"], p.a_id.as_str());
    assert_eq!(joined["peers"], json!([]));
}

#[tokio::test]
async fn the_second_peer_sees_the_first_and_the_first_hears_peer_joined() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&p.a_matched)).await;
    a.recv_type("joined").await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&p.b_matched)).await;
    let joined = b.recv_type("joined").await;
    assert_eq!(joined["peerId"], p.b_id.as_str());
    assert_eq!(joined["peers"], json!([p.a_id]));
    assert_eq!(a.recv_type("peer-joined").await["peerId"], p.b_id.as_str());
}

#[tokio::test]
async fn offer_answer_and_ice_are_relayed_whole_with_from_set_by_the_server() {
    let stack = Stack::start().await;
    let (mut a, a_id, mut b, b_id, _) = joined_room(&stack).await;
    a.send(json!({"type":"offer","sdp":"v=0 offer","from":"spoofed","extra":{"keep":[1,2]}})).await;
    assert_eq!(b.recv().await, json!({"type":"offer","sdp":"v=0 offer","from":a_id,"extra":{"keep":[1,2]}}));
    b.send(json!({"type":"answer","sdp":"v=0 answer"})).await;
    assert_eq!(a.recv().await, json!({"type":"answer","sdp":"v=0 answer","from":b_id}));
    let candidate =
        json!({"candidate":"candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0});
    a.send(json!({"type":"ice","candidate":candidate})).await;
    assert_eq!(b.recv().await, json!({"type":"ice","candidate":candidate,"from":a_id}));
    b.send(json!({"type":"ice","candidate":null})).await;
    assert_eq!(a.recv().await, json!({"type":"ice","candidate":null,"from":b_id}));
    a.expect_silence().await;
    b.expect_silence().await;
}

#[tokio::test]
async fn each_senders_messages_arrive_in_order_over_hundreds_of_messages() {
    let stack = Stack::start().await;
    let (mut a, _, mut b, _, _) = joined_room(&stack).await;
    const N: usize = 500;
    let sdp = "x".repeat(2_000);
    for i in 0..N {
        a.send(json!({"type":"ice","candidate":{"n":i}})).await;
        b.send(json!({"type":"offer","sdp":format!("{i}:{sdp}")})).await;
    }
    for i in 0..N {
        assert_eq!(b.recv().await["candidate"]["n"], i);
    }
    for i in 0..N {
        let got = a.recv().await;
        assert!(got["sdp"].as_str().unwrap().starts_with(&format!("{i}:")));
    }
}

#[tokio::test]
async fn signals_sent_before_the_partner_joins_are_held_and_delivered_after_its_joined() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&p.a_matched)).await;
    a.recv_type("joined").await;
    a.send(json!({"type":"offer","sdp":"held offer"})).await;
    for i in 0..5 {
        a.send(json!({"type":"ice","candidate":{"n":i}})).await;
    }
    a.expect_silence().await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&p.b_matched)).await;
    b.recv_type("joined").await;
    assert_eq!(b.recv().await, json!({"type":"offer","sdp":"held offer","from":p.a_id}));
    for i in 0..5 {
        assert_eq!(b.recv().await["candidate"]["n"], i);
    }
    a.recv_type("peer-joined").await;
}

#[tokio::test]
async fn sixty_four_held_messages_are_kept_and_the_next_is_refused() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&p.a_matched)).await;
    a.recv_type("joined").await;
    for i in 0..64 {
        a.send(json!({"type":"ice","candidate":{"n":i}})).await;
    }
    a.send(json!({"type":"ice","candidate":{"n":64}})).await;
    a.recv_error("rate-limited").await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&p.b_matched)).await;
    b.recv_type("joined").await;
    for i in 0..64 {
        assert_eq!(b.recv().await["candidate"]["n"], i);
    }
    b.expect_silence().await;
}

#[tokio::test]
async fn held_messages_are_capped_at_64_kib() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&p.a_matched)).await;
    a.recv_type("joined").await;
    let sdp = "s".repeat(20_000);
    for _ in 0..3 {
        a.send(json!({"type":"offer","sdp":sdp})).await;
    }
    a.expect_silence().await;
    a.send(json!({"type":"offer","sdp":sdp})).await;
    a.recv_error("rate-limited").await;
}

#[tokio::test]
async fn a_signal_before_join_is_not_joined() {
    let stack = Stack::start().await;
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"offer","sdp":"v=0"})).await;
    a.recv_error("not-joined").await;
    a.send(json!({"type":"ice","candidate":null})).await;
    a.recv_error("not-joined").await;
    a.assert_open().await;
}

#[tokio::test]
async fn a_tampered_ticket_is_a_bad_ticket() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut ticket = p.a_matched["ticket"].as_str().unwrap().to_owned();
    let last = ticket.pop().unwrap();
    ticket.push(if last == 'A' { 'B' } else { 'A' });
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"join","roomId":p.a_matched["roomId"],"ticket":ticket})).await;
    a.recv_error("bad-ticket").await;
    a.send(json!({"type":"offer","sdp":"v=0"})).await;
    a.recv_error("not-joined").await;
}

#[tokio::test]
async fn a_ticket_for_another_room_is_a_bad_ticket() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let q = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"join","roomId":q.a_matched["roomId"],"ticket":p.a_matched["ticket"]})).await;
    a.recv_error("bad-ticket").await;
}

#[tokio::test]
async fn an_expired_ticket_is_a_bad_ticket() {
    let stack = Stack::start().await;
    let room = uuid::Uuid::new_v4().to_string();
    let peer = uuid::Uuid::new_v4().to_string();
    let ticket = forge_ticket(&room, &peer, now() - 120, now() - 60, SECRET);
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"join","roomId":room,"ticket":ticket})).await;
    a.recv_error("bad-ticket").await;
}

#[tokio::test]
async fn a_ticket_signed_with_another_secret_is_a_bad_ticket() {
    let stack = Stack::start().await;
    let room = uuid::Uuid::new_v4().to_string();
    let ticket =
        forge_ticket(&room, &uuid::Uuid::new_v4().to_string(), now(), now() + 60, "another-secret-another-secret-xxxx");
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"join","roomId":room,"ticket":ticket})).await;
    a.recv_error("bad-ticket").await;
}

#[tokio::test]
async fn join_without_a_ticket_or_with_a_non_string_or_empty_one_is_a_bad_ticket() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(json!({"type":"join","roomId":p.a_matched["roomId"]})).await;
    a.recv_error("bad-ticket").await;
    a.send(json!({"type":"join","roomId":p.a_matched["roomId"],"ticket":7})).await;
    a.recv_error("bad-ticket").await;
    a.send(json!({"type":"join","roomId":p.a_matched["roomId"],"ticket":""})).await;
    a.recv_error("bad-ticket").await;
}

#[tokio::test]
async fn a_third_ticket_holder_finds_the_room_full() {
    let stack = Stack::start().await;
    let (_a, _, _b, _, room) = joined_room(&stack).await;
    let intruder = forge_ticket(&room, &uuid::Uuid::new_v4().to_string(), now(), now() + 60, support::SECRET);
    let mut c = Client::signaler(&stack).await;
    c.send(json!({"type":"join","roomId":room,"ticket":intruder})).await;
    c.recv_error("room-full").await;
}

#[tokio::test]
async fn the_same_ticket_on_a_new_connection_replaces_the_old_one_with_close_4000() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    let mut a1 = Client::signaler(&stack).await;
    a1.send(join(&p.a_matched)).await;
    a1.recv_type("joined").await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&p.b_matched)).await;
    b.recv_type("joined").await;
    let mut a2 = Client::signaler(&stack).await;
    a2.send(join(&p.a_matched)).await;
    let joined = a2.recv_type("joined").await;
    assert_eq!(joined["peers"], json!([p.b_id]));
    // a1 heard peer-joined for b before it was replaced.
    a1.recv_type("peer-joined").await;
    let close = a1.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4000);
    // The partner learns that the peer came back (so it can negotiate again) ...
    assert_eq!(b.recv_type("peer-joined").await["peerId"], p.a_id.as_str());
    // ... and talks to the new connection.
    b.send(json!({"type":"offer","sdp":"again"})).await;
    assert_eq!(a2.recv_type("offer").await["sdp"], "again");
    b.expect_silence().await;
}

#[tokio::test]
async fn leave_answers_left_and_tells_the_partner_peer_left() {
    let stack = Stack::start().await;
    let (mut a, a_id, mut b, _, _) = joined_room(&stack).await;
    a.send(json!({"type":"leave"})).await;
    a.recv_type("left").await;
    assert_eq!(b.recv_type("peer-left").await["peerId"], a_id.as_str());
    a.send(json!({"type":"offer","sdp":"v=0"})).await;
    a.recv_error("not-joined").await;
    b.expect_silence().await;
}

#[tokio::test]
async fn a_disconnect_is_the_same_as_leave() {
    let stack = Stack::start().await;
    let (a, a_id, mut b, _, _) = joined_room(&stack).await;
    a.close().await;
    assert_eq!(b.recv_type("peer-left").await["peerId"], a_id.as_str());
}

#[tokio::test]
async fn a_signal_with_a_missing_or_mistyped_field_is_a_bad_message_and_not_relayed() {
    let stack = Stack::start().await;
    let (mut a, _, mut b, _, _) = joined_room(&stack).await;
    for bad in [
        json!({"type":"offer"}),
        json!({"type":"offer","sdp":42}),
        json!({"type":"answer","sdp":{"x":1}}),
        json!({"type":"ice"}),
        json!({"type":"ice","candidate":"candidate:1"}),
        json!({"type":"ice","candidate":[1]}),
    ] {
        a.send(bad).await;
        a.recv_error("bad-message").await;
    }
    b.expect_silence().await;
}

#[tokio::test]
async fn an_empty_room_is_forgotten() {
    let stack = Stack::start().await;
    let (a, _, b, _, _) = joined_room(&stack).await;
    // The room gauge is exact in memory and refreshed every heartbeat on Redis.
    support::wait_for_metric(stack.signaler, "signaler_rooms 1").await;
    a.close().await;
    b.close().await;
    support::wait_for_metric(stack.signaler, "signaler_rooms 0").await;
}
