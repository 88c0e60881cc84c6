//! The matchmaker's rules from the wire contract, checked over real sockets.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::{pair, Client, Stack};

#[tokio::test]
async fn every_connection_gets_ready_with_a_fresh_uuid_v4() {
    let stack = Stack::start().await;
    let (_a, a) = Client::matchmaker(&stack).await;
    let (_b, b) = Client::matchmaker(&stack).await;
    for id in [&a, &b] {
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }
    assert_ne!(a, b);
}

#[tokio::test]
async fn available_is_answered_with_queued() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    a.expect_silence().await;
}

#[tokio::test]
async fn two_available_clients_are_matched_with_everything_a_browser_needs() {
    let stack = Stack::start().await;
    let p = pair(&stack).await;
    assert_eq!(p.a_matched["partnerId"], p.b_id.as_str());
    assert_eq!(p.b_matched["partnerId"], p.a_id.as_str());
    assert_eq!(p.a_matched["roomId"], p.b_matched["roomId"]);
    let room = uuid::Uuid::parse_str(p.a_matched["roomId"].as_str().unwrap()).unwrap();
    assert_eq!(room.get_version_num(), 4);
    assert_ne!(p.a_matched["initiator"], p.b_matched["initiator"]);
    assert!(p.a_matched["initiator"].is_boolean());
    assert_eq!(p.a_matched["signalingUrl"], stack.sig_url());
    assert!(p.a_matched["iceServers"].is_array());
    assert!(p.a_matched["ticket"].as_str().is_some_and(|t| !t.is_empty()));
    assert_ne!(p.a_matched["ticket"], p.b_matched["ticket"]);
}

#[tokio::test]
async fn the_client_that_waited_longest_is_paired_first() {
    let stack = Stack::start().await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        let (mut c, id) = Client::matchmaker(&stack).await;
        c.send(json!({"type":"available"})).await;
        c.recv_type("queued").await;
        clients.push((c, id));
    }
    for i in (0..10).step_by(2) {
        let first = clients[i].0.recv_type("matched").await;
        assert_eq!(first["partnerId"], clients[i + 1].1.as_str(), "client {i} was not paired with {}", i + 1);
        let second = clients[i + 1].0.recv_type("matched").await;
        assert_eq!(second["partnerId"], clients[i].1.as_str());
    }
}

#[tokio::test]
async fn available_twice_queues_once() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    a.recv_type("queued").await;
    let (mut b, b_id) = Client::matchmaker(&stack).await;
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    assert_eq!(a.recv_type("matched").await["partnerId"], b_id.as_str());
    // Had `a` been queued twice, this third client would be paired with its ghost.
    let (mut c, _) = Client::matchmaker(&stack).await;
    c.send(json!({"type":"available"})).await;
    c.recv_type("queued").await;
    c.expect_silence().await;
}

#[tokio::test]
async fn available_while_matched_is_refused_and_changes_nothing() {
    let stack = Stack::start().await;
    let mut p = pair(&stack).await;
    p.a.send(json!({"type":"available"})).await;
    p.a.recv_error("already-matched").await;
    p.b.expect_silence().await;
    // Still matched: next ends that match.
    p.a.send(json!({"type":"next"})).await;
    p.b.recv_type("partner-left").await;
}

#[tokio::test]
async fn next_tells_the_partner_and_queues_both_again() {
    let stack = Stack::start().await;
    let mut p = pair(&stack).await;
    p.a.send(json!({"type":"next"})).await;
    p.a.recv_type("queued").await;
    let left = p.b.recv_type("partner-left").await;
    assert_eq!(left["roomId"], p.a_matched["roomId"]);
    p.b.recv_type("queued").await;
    // Only these two wait, and they just met: they wait instead of meeting again at once.
    p.a.expect_silence().await;
    p.b.expect_silence().await;
}

#[tokio::test]
async fn two_former_partners_are_paired_again_once_the_rematch_cooldown_is_over() {
    let (mut mm, sig) = support::configs();
    mm.rematch_cooldown = std::time::Duration::from_secs(1);
    let stack = Stack::start_with(mm, sig).await;
    let mut p = pair(&stack).await;
    p.a.send(json!({"type":"next"})).await;
    p.a.recv_type("queued").await;
    p.b.recv_type("partner-left").await;
    p.b.recv_type("queued").await;
    p.a.expect_silence_for(std::time::Duration::from_millis(700)).await;
    // In a new room.
    let again = p.a.recv_type("matched").await;
    assert_eq!(again["partnerId"], p.b_id.as_str());
    assert_ne!(again["roomId"], p.a_matched["roomId"]);
    p.b.recv_type("matched").await;
}

#[tokio::test]
async fn next_pairs_the_sender_with_whoever_waited_longest() {
    let stack = Stack::start().await;
    let mut p = pair(&stack).await;
    let (mut c, c_id) = Client::matchmaker(&stack).await;
    c.send(json!({"type":"available"})).await;
    c.recv_type("queued").await;
    p.a.send(json!({"type":"next"})).await;
    p.a.recv_type("queued").await;
    assert_eq!(p.a.recv_type("matched").await["partnerId"], c_id.as_str());
    assert_eq!(c.recv_type("matched").await["partnerId"], p.a_id.as_str());
    p.b.recv_type("partner-left").await;
    p.b.recv_type("queued").await;
    p.b.expect_silence().await;
}

#[tokio::test]
async fn next_while_unmatched_is_the_same_as_available() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"next"})).await;
    a.recv_type("queued").await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    b.send(json!({"type":"next"})).await;
    b.recv_type("queued").await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
}

#[tokio::test]
async fn leave_answers_left_and_requeues_the_partner() {
    let stack = Stack::start().await;
    let mut p = pair(&stack).await;
    p.a.send(json!({"type":"leave"})).await;
    p.a.recv_type("left").await;
    p.b.recv_type("partner-left").await;
    p.b.recv_type("queued").await;
    p.a.expect_silence().await;
}

#[tokio::test]
async fn after_leave_the_socket_stays_open_and_available_works_again() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    a.send(json!({"type":"leave"})).await;
    a.recv_type("left").await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    b.expect_silence().await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    a.recv_type("matched").await;
    b.recv_type("matched").await;
}

#[tokio::test]
async fn leave_when_neither_queued_nor_matched_still_answers_left() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"leave"})).await;
    a.recv_type("left").await;
}

#[tokio::test]
async fn a_disconnect_is_the_same_as_leave() {
    let stack = Stack::start().await;
    let mut p = pair(&stack).await;
    p.a.close().await;
    p.b.recv_type("partner-left").await;
    p.b.recv_type("queued").await;
}

#[tokio::test]
async fn a_client_that_disconnected_while_waiting_is_never_matched() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    a.close().await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    b.expect_silence().await;
}

#[tokio::test]
async fn without_requeue_the_partner_is_told_but_not_queued() {
    let (mut mm, sig) = support::configs();
    mm.requeue_on_partner_leave = false;
    mm.rematch_cooldown = std::time::Duration::ZERO; // so that the two may meet again at once
    let stack = Stack::start_with(mm, sig).await;
    let mut p = pair(&stack).await;
    p.a.send(json!({"type":"next"})).await;
    p.a.recv_type("queued").await;
    p.b.recv_type("partner-left").await;
    p.b.expect_silence().await;
    // The partner chooses to come back.
    p.b.send(json!({"type":"available"})).await;
    p.b.recv_type("queued").await;
    p.b.recv_type("matched").await;
}

#[tokio::test]
async fn room_ids_are_never_reused() {
    // Two clients who meet again and again, each time in a new room.
    let (mut mm, sig) = support::configs();
    mm.rematch_cooldown = std::time::Duration::ZERO;
    let stack = Stack::start_with(mm, sig).await;
    let mut rooms = HashSet::new();
    let mut p = pair(&stack).await;
    rooms.insert(p.a_matched["roomId"].as_str().unwrap().to_owned());
    for _ in 0..20 {
        p.a.send(json!({"type":"next"})).await;
        p.a.recv_type("queued").await;
        let matched = p.a.recv_type("matched").await;
        assert!(rooms.insert(matched["roomId"].as_str().unwrap().to_owned()), "room id reused");
        p.b.recv_type("partner-left").await;
        p.b.recv_type("queued").await;
        p.b.recv_type("matched").await;
    }
}

#[tokio::test]
async fn signaling_url_names_the_host_the_client_used() {
    let (mut mm, sig) = support::configs();
    mm.signaling_url = "ws://{host}:8081/ws".into();
    let stack = Stack::start_with(mm, sig).await;
    let url = format!("ws://localhost:{}/ws", stack.matchmaker.port());
    let mut a = Client::connect(&url).await;
    a.recv_type("ready").await;
    let mut b = Client::connect(&stack.mm_url()).await;
    b.recv_type("ready").await;
    a.send(json!({"type":"available"})).await;
    b.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    b.recv_type("queued").await;
    let port = stack.signaler.port();
    assert_eq!(a.recv_type("matched").await["signalingUrl"], format!("ws://localhost:{port}/ws"));
    assert_eq!(b.recv_type("matched").await["signalingUrl"], format!("ws://127.0.0.1:{port}/ws"));
}

#[tokio::test]
async fn ice_servers_are_passed_to_clients_as_configured() {
    let (mut mm, sig) = support::configs();
    let ice =
        r#"[{"urls":["stun:stun.example.org:3478"]},{"urls":"turn:turn.example.org","username":"u","credential":"p"}]"#;
    mm.ice_servers = serde_json::value::RawValue::from_string(ice.into()).unwrap();
    let stack = Stack::start_with(mm, sig).await;
    let p = pair(&stack).await;
    assert_eq!(p.a_matched["iceServers"], serde_json::from_str::<serde_json::Value>(ice).unwrap());
}

#[tokio::test]
async fn stats_count_online_waiting_and_rooms() {
    let stack = Stack::start().await;
    let _p = pair(&stack).await;
    let (mut c, _) = Client::matchmaker(&stack).await;
    c.send(json!({"type":"available"})).await;
    c.recv_type("queued").await;
    let (status, head, body) = support::http_get(stack.matchmaker, "/api/stats").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"));
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats, json!({"online":3,"waiting":1,"rooms":1}));
}

#[tokio::test]
async fn api_config_tells_a_page_the_protocol_its_features_the_signaling_url_and_the_limits() {
    let (mut mm, sig) = support::configs();
    mm.signaling_url = "wss://{host}/signal".into();
    mm.common.ticket_ttl = std::time::Duration::from_secs(45);
    let stack = Stack::start_with_limits(mm, sig, shared::limits::Limits::default()).await;
    let (status, head, body) = support::http_get(stack.matchmaker, "/api/config").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("cache-control: no-store"), "{head}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["protocol"], "1.1");
    assert_eq!(config["features"], json!(["resume", "interests", "block", "report", "poll"]));
    assert_eq!(config["signalingUrl"], "wss://127.0.0.1/signal", "rendered for the host the page was reached at");
    let limits = &config["limits"];
    assert_eq!(
        (limits["messageBurst"].as_u64(), limits["maxConnectionsPerIp"].as_u64(), limits["ticketTtlSecs"].as_u64()),
        (Some(256), Some(256), Some(45))
    );
    assert_eq!(limits["resumeGraceSecs"], 20);
    assert!(!body.contains(support::SECRET), "no secrets: {body}");
}

#[tokio::test]
async fn a_client_with_interests_meets_the_longest_waiting_one_who_shares_one_and_matched_names_them() {
    let stack = Stack::start().await;
    let (mut chess, chess_id) = Client::matchmaker(&stack).await;
    chess.send(json!({"type":"available","interests":["Chess"]})).await;
    chess.recv_type("queued").await;
    let (mut music, _) = Client::matchmaker(&stack).await;
    music.send(json!({"type":"available","interests":["music"]})).await;
    music.recv_type("queued").await;
    let (mut both, _) = Client::matchmaker(&stack).await;
    both.send(json!({"type":"available","interests":["music ","CHESS"]})).await;
    both.recv_type("queued").await;
    let matched = both.recv_type("matched").await;
    assert_eq!(matched["partnerId"], chess_id.as_str(), "the longest-waiting one it shares an interest with");
    assert_eq!(matched["commonInterests"], json!(["chess"]));
    assert_eq!(chess.recv_type("matched").await["commonInterests"], json!(["chess"]));
    music.expect_silence().await;
}

#[tokio::test]
async fn after_its_interest_wait_a_client_meets_anyone_in_a_random_match() {
    let stack = Stack::start().await;
    let (mut chess, _) = Client::matchmaker(&stack).await;
    chess.send(json!({"type":"available","interests":["chess"],"interestWaitSecs":1})).await;
    chess.recv_type("queued").await;
    let (mut plain, plain_id) = Client::matchmaker(&stack).await;
    plain.send(json!({"type":"available"})).await;
    plain.recv_type("queued").await;
    chess.expect_silence_for(std::time::Duration::from_millis(600)).await;
    let matched = chess.recv_type("matched").await;
    assert_eq!(matched["partnerId"], plain_id.as_str());
    assert_eq!(matched["commonInterests"], json!([]));
}

#[tokio::test]
async fn interests_out_of_bounds_are_bad_messages_and_change_nothing() {
    let stack = Stack::start().await;
    let (mut c, _) = Client::matchmaker(&stack).await;
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    for bad in [
        json!({"type":"available","interests":eleven}),
        json!({"type":"available","interests":["x".repeat(33)]}),
        json!({"type":"available","interests":[""]}),
        json!({"type":"next","interests":[7]}),
        json!({"type":"available","interestWaitSecs":61}),
    ] {
        c.send(bad.clone()).await;
        c.recv_error("bad-message").await;
    }
    let s: serde_json::Value =
        serde_json::from_str(&support::http_get(stack.matchmaker, "/api/stats").await.2).unwrap();
    assert_eq!(s["waiting"], 0, "nobody was queued");
}
