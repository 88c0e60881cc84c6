//! Slow consumers: a client that never reads is disconnected once its send queue is full, its
//! partner is not slowed down meanwhile, and the server's memory stays within a bound. The
//! figures are printed (run with `--nocapture --test-threads=1` for undisturbed ones); nothing
//! here asserts on time.

mod support;

use std::time::Duration;

use serde_json::json;
use shared::limits::Limits;
use support::{joined_room, relay_latency, sample_relay, Latencies, Runner, Stack};

/// Production limits, with the message rate lifted where a test needs one client to send a lot.
fn unlimited_rate() -> Limits {
    Limits { messages_per_sec: 1_000_000, message_burst: 1_000_000, ..Limits::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_stall_its_partner() {
    let (mm, sig) = support::configs();
    let stack = Stack::start_with_limits(mm, sig, unlimited_rate()).await;
    let (mut a, _, _stuck, _, _) = joined_room(&stack).await;
    let (mut c, _, mut d, _, _) = joined_room(&stack).await;
    let baseline = sample_relay(&mut c, &mut d, Duration::from_millis(500)).await;
    // `_stuck` never reads: 24 MB of offers fill its socket buffers, then its queue.
    let sdp = "x".repeat(60_000);
    let mut pings = Latencies::default();
    let mut others = Latencies::default();
    for i in 0..400 {
        a.send(json!({"type":"offer","sdp":sdp})).await;
        if i % 25 == 0 {
            pings.push(a.ping_pong().await);
            others.push(relay_latency(&mut c, &mut d, i).await);
        }
    }
    println!("sender's ping round trip while its partner does not read: {pings}");
    println!("another pair's relay latency: before {baseline}; during {others}");
    a.ping_pong().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_once_its_queue_is_full() {
    let (mm, sig) = support::configs();
    let stack = Stack::start_with_limits(mm, sig, unlimited_rate()).await;
    let (mut a, _, _stuck, stuck_id, _) = joined_room(&stack).await;
    let sdp = "x".repeat(60_000);
    for _ in 0..400 {
        a.send(json!({"type":"offer","sdp":sdp})).await;
    }
    // The stuck socket cannot read its close frame; its partner hears that it left.
    let left = loop {
        let message = a.recv().await;
        if message["type"] == "peer-left" {
            break message;
        }
    };
    assert_eq!(left["peerId"], stuck_id.as_str());
    support::wait_for_metric_value(stack.signaler, "signaler_connections", |n| n == 1.0).await;
}

/// The binary's memory, in MiB, after `n` partners that never read were each sent 20 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_raise_server_memory_by_a_bounded_amount() {
    const STUCK: usize = 6;
    // Documented bound per stuck socket: OUTBOX_MAX_BYTES (1 MiB) plus the socket's write buffer
    // (1 MiB), plus one frame being read. Without the byte limit each would hold up to
    // OUTBOX_CAPACITY (1024) x 60 KB = 60 MB.
    const BOUND_PER_SOCKET_MIB: f64 = 3.0;
    const SLACK_MIB: f64 = 16.0;
    let runner = Runner::start(&[("MESSAGES_PER_SEC", "100000"), ("MESSAGE_BURST", "100000")]);
    let before = runner.resident_memory().await;
    let sdp = "x".repeat(60_000);
    let mut stuck = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..STUCK {
        let (a, b) = runner.room(["127.0.0.1", "127.0.0.1"]).await;
        senders.push(a);
        stuck.push(b);
    }
    let mut peak = before;
    for a in &mut senders {
        for _ in 0..340 {
            a.send(json!({"type":"offer","sdp":sdp})).await;
        }
        a.ping_pong().await;
        peak = peak.max(runner.resident_memory().await);
    }
    // Every stuck socket was dropped; only the senders are left.
    support::wait_for_metric_value(runner.signaler, "signaler_connections", |n| n == STUCK as f64).await;
    let after = runner.resident_memory().await;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "resident memory: before {:.1} MiB, peak {:.1} MiB, after the stuck sockets were dropped {:.1} MiB \
         ({STUCK} stuck sockets, {:.1} MB sent to each)",
        mib(before),
        mib(peak),
        mib(after),
        340.0 * 0.06
    );
    let growth = mib(peak).max(mib(after)) - mib(before);
    let bound = STUCK as f64 * BOUND_PER_SOCKET_MIB + SLACK_MIB;
    assert!(growth <= bound, "memory grew by {growth:.1} MiB, over the bound of {bound:.1} MiB");
    drop(stuck);
}
