//! Resume after a dropped socket (contract 1.1, "Resume"): a socket that ends without a close
//! frame leaves its client away for the grace window, and a new socket with the client's resume
//! token becomes that client again. Runs on whichever backend the environment names.

mod support;

use serde_json::{json, Value};
use support::{join, match_up, Client, Stack};

/// Connects to the matchmaker; returns the client, its `ready`.
async fn ready(stack: &Stack) -> (Client, Value) {
    let mut client = Client::connect(&stack.mm_url()).await;
    let ready = client.recv_type("ready").await;
    (client, ready)
}

/// Two clients, paired: (a, a's ready, b, b's matched, a's matched).
async fn matched(stack: &Stack) -> (Client, Value, Client, Value, Value) {
    let (mut a, a_ready) = ready(stack).await;
    let (mut b, _) = ready(stack).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    (a, a_ready, b, b_matched, a_matched)
}

#[tokio::test]
async fn ready_names_the_protocol_the_resume_token_and_the_grace_window() {
    let stack = Stack::start().await;
    let (_a, ready) = ready(&stack).await;
    assert_eq!(ready["protocol"], "1.1");
    assert!(ready["features"].as_array().unwrap().contains(&json!("resume")), "{ready}");
    assert!(ready["resumeToken"].as_str().is_some_and(|t| !t.is_empty()), "{ready}");
    assert_eq!(ready["resumeGraceSecs"], 20);
}

#[tokio::test]
async fn a_dropped_matched_client_is_away_and_resumes_its_match_on_a_new_socket() {
    let stack = Stack::start().await;
    let (a, a_ready, mut b, _, a_matched) = matched(&stack).await;
    drop(a); // no close frame: a network drop
    assert_eq!(b.recv_type("partner-away").await["roomId"], a_matched["roomId"]);

    let (mut a2, _) = ready(&stack).await;
    a2.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    let resumed = a2.recv_type("resumed").await;
    assert_eq!(resumed["clientId"], a_ready["clientId"]);
    assert_eq!(resumed["state"], "matched");
    assert_ne!(resumed["resumeToken"], a_ready["resumeToken"]);
    let again = a2.recv_type("matched").await;
    for field in ["roomId", "partnerId", "initiator"] {
        assert_eq!(again[field], a_matched[field], "{field}");
    }
    assert_eq!(b.recv_type("partner-back").await["roomId"], a_matched["roomId"]);
}

#[tokio::test]
async fn a_clean_close_is_a_goodbye_not_an_absence() {
    let stack = Stack::start().await;
    let (a, _, mut b, _, _) = matched(&stack).await;
    a.close().await;
    b.recv_type("partner-left").await;
}

#[tokio::test]
async fn a_forged_or_used_token_is_refused_and_the_socket_goes_on_as_itself() {
    let stack = Stack::start().await;
    let (a, a_ready) = ready(&stack).await;
    drop(a);
    let (mut forger, forger_ready) = ready(&stack).await;
    forger.send(json!({"type":"resume","token":"not-a-token"})).await;
    forger.recv_error("resume-failed").await;
    let (mut a2, _) = ready(&stack).await;
    a2.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    assert_eq!(a2.recv_type("resumed").await["state"], "idle");
    forger.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    forger.recv_error("resume-failed").await;
    forger.send(json!({"type":"available"})).await;
    forger.recv_type("queued").await;
    assert_ne!(forger_ready["clientId"], a_ready["clientId"]);
}

#[tokio::test]
async fn a_dropped_peer_keeps_its_seat_and_what_is_sent_meanwhile_is_held_for_it() {
    let stack = Stack::start().await;
    let (_a_mm, _, _b_mm, b_matched, a_matched) = matched(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&a_matched)).await;
    a.recv_type("joined").await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&b_matched)).await;
    b.recv_type("joined").await;
    a.recv_type("peer-joined").await;

    drop(a); // a network drop on the signaler
    assert_eq!(b.recv_type("peer-away").await["peerId"], b_matched["partnerId"]);
    b.send(json!({"type":"offer","sdp":"while you were away"})).await;
    let mut a2 = Client::signaler(&stack).await;
    a2.send(join(&a_matched)).await;
    a2.recv_type("joined").await;
    assert_eq!(a2.recv_type("offer").await["sdp"], "while you were away");
    assert_eq!(b.recv_type("peer-back").await["peerId"], b_matched["partnerId"]);
}
