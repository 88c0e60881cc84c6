//! Shutting down on purpose: close code 1001 for every socket, nothing new accepted, done within
//! the grace period.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{joined_room, Client, Stack};

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let stack = Stack::start().await;
    let (mut a, _, mut b, _, _) = joined_room(&stack).await;
    let (mut mm, _) = Client::matchmaker(&stack).await;
    mm.send(json!({"type":"available"})).await;
    mm.recv_type("queued").await;
    let shutdown = tokio::spawn(stack.shutdown());
    for client in [&mut mm, &mut a, &mut b] {
        let close = client.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
    }
    assert!(shutdown.await.unwrap(), "services did not drain within the grace period");
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
    let (mut a, _, _stuck, _, _) = joined_room(&stack).await;
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
