//! Shutting down on purpose, a drain: clients that are not in a chat are closed with 1012 at
//! once (so that they resume on another instance), clients in a chat get 1001 at the end of the
//! grace period or as soon as they leave it, nothing new is accepted, and it is all over within
//! the grace period.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{join, Client, Stack};

/// A stack whose services drain for `grace`.
async fn stack(grace: Duration) -> Stack {
    let (mut mm, mut sig) = support::configs();
    mm.common.shutdown_grace = grace;
    sig.common.shutdown_grace = grace;
    Stack::start_with(mm, sig).await
}

/// Long enough that "at once" and "at the end" cannot be confused.
const LONG_GRACE: Duration = Duration::from_secs(10);

async fn close_code(client: &mut Client) -> u16 {
    u16::from(client.expect_close().await.expect("a close frame").code)
}

#[tokio::test]
async fn a_drain_closes_idle_and_waiting_matchmaker_clients_with_1012_at_once() {
    let stack = stack(LONG_GRACE).await;
    let (mut idle, _) = Client::matchmaker(&stack).await;
    let (mut waiting, _) = Client::matchmaker(&stack).await;
    waiting.send(json!({"type":"available"})).await;
    waiting.recv_type("queued").await;
    let started = Instant::now();
    let shutdown = tokio::spawn(stack.shutdown());
    assert_eq!(close_code(&mut idle).await, 1012);
    assert_eq!(close_code(&mut waiting).await, 1012);
    assert!(started.elapsed() < LONG_GRACE / 2, "closed only after {:?}", started.elapsed());
    assert!(shutdown.await.unwrap(), "services did not drain within the grace period");
}

#[tokio::test]
async fn a_drain_closes_signaler_sockets_in_no_room_or_alone_in_theirs_with_1012_at_once() {
    let stack = stack(LONG_GRACE).await;
    let pair = support::pair(&stack).await;
    let mut unjoined = Client::signaler(&stack).await;
    let mut alone = Client::signaler(&stack).await;
    alone.send(join(&pair.a_matched)).await;
    alone.recv_type("joined").await;
    let started = Instant::now();
    let _shutdown = tokio::spawn(stack.shutdown());
    assert_eq!(close_code(&mut unjoined).await, 1012);
    assert_eq!(close_code(&mut alone).await, 1012);
    assert!(started.elapsed() < LONG_GRACE / 2, "closed only after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_drain_closes_clients_in_a_chat_with_1001_at_the_end_of_the_grace_period() {
    let stack = stack(Duration::from_secs(4)).await;
    let mut pair = support::pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(join(&pair.a_matched)).await;
    a.recv_type("joined").await;
    let mut b = Client::signaler(&stack).await;
    b.send(join(&pair.b_matched)).await;
    b.recv_type("joined").await;
    a.recv_type("peer-joined").await;
    let shutdown = tokio::spawn(stack.shutdown());
    // The chat goes on meanwhile.
    a.send(json!({"type":"offer","sdp":"during the drain"})).await;
    assert_eq!(b.recv_type("offer").await["sdp"], "during the drain");
    let quiet = Duration::from_millis(800);
    tokio::join!(
        pair.a.expect_silence_for(quiet),
        pair.b.expect_silence_for(quiet),
        a.expect_silence_for(quiet),
        b.expect_silence_for(quiet)
    );
    for client in [&mut pair.a, &mut pair.b, &mut a, &mut b] {
        assert_eq!(close_code(client).await, 1001);
    }
    assert!(shutdown.await.unwrap(), "services did not drain within the grace period");
}

#[tokio::test]
async fn a_chatting_client_that_leaves_during_a_drain_hears_left_and_is_closed_with_1001() {
    let stack = stack(LONG_GRACE).await;
    let mut pair = support::pair(&stack).await;
    let _shutdown = tokio::spawn(stack.shutdown());
    pair.a.expect_silence_for(Duration::from_millis(300)).await;
    pair.a.send(json!({"type":"leave"})).await;
    pair.a.recv_type("left").await;
    assert_eq!(close_code(&mut pair.a).await, 1001);
    // Its partner is no longer in a chat: it moves on like any waiting client.
    pair.b.recv_type("partner-left").await;
    assert_eq!(close_code(&mut pair.b).await, 1012);
}

#[tokio::test]
async fn after_shutdown_begins_no_new_connection_is_accepted() {
    let stack = Stack::start().await;
    let (matchmaker, signaler) = (stack.matchmaker, stack.signaler);
    assert!(!stack.lifecycle.is_draining());
    let lifecycle = stack.lifecycle.clone();
    assert!(stack.shutdown().await);
    assert!(!lifecycle.is_ready());
    for addr in [matchmaker, signaler] {
        let url = format!("ws://{addr}/ws");
        assert!(tokio_tungstenite::connect_async(url).await.is_err());
    }
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_period_even_if_a_socket_cannot_take_its_close_frame() {
    let (mut mm, mut sig) = support::configs();
    mm.common.shutdown_grace = Duration::from_millis(300);
    sig.common.shutdown_grace = Duration::from_millis(300);
    // Let the queue grow so that the stuck reader is not dropped as a slow consumer first.
    sig.common.outbox_capacity = 65_536;
    let stack = Stack::start_with(mm, sig).await;
    let (mut a, _, _stuck, _, _) = support::joined_room(&stack).await;
    // `_stuck` never reads: ~18 MB of offers fill every buffer between it and the server.
    let sdp = "x".repeat(60_000);
    for _ in 0..300 {
        a.send(json!({"type":"offer","sdp":sdp})).await;
    }
    a.assert_open().await;
    let started = std::time::Instant::now();
    let drained = stack.shutdown().await;
    assert!(!drained, "the stuck socket cannot have closed cleanly");
    assert!(started.elapsed() < Duration::from_millis(1_500), "took {:?}", started.elapsed());
}
