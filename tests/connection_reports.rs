//! Connection outcome telemetry (contract 1.1): a client reports once per room it was matched
//! into how its WebRTC connection went; `/metrics` adds the reports up. Runs on whichever backend
//! the environment names; on Redis, a client that resumed on another instance reports there.

mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use support::{http_get, match_up, metric_value, Client, Stack};

const CONNECTED: &str = "matchmaker_connection_reports_total{outcome=\"connected\"}";
const FAILED: &str = "matchmaker_connection_reports_total{outcome=\"failed\"}";
const RELAY: &str = "matchmaker_connected_candidates_total{candidate_type=\"relay\"}";
const HOST: &str = "matchmaker_connected_candidates_total{candidate_type=\"host\"}";
const TIMES: &str = "matchmaker_connect_seconds_count";
const TIME_SUM: &str = "matchmaker_connect_seconds_sum";

async fn figures(addr: SocketAddr) -> [f64; 6] {
    let (_, _, text) = http_get(addr, "/metrics").await;
    [CONNECTED, FAILED, RELAY, HOST, TIMES, TIME_SUM].map(|sample| metric_value(&text, sample).unwrap_or(f64::NAN))
}

fn connected(room: &Value, ms: u64, candidate: &str) -> Value {
    json!({"type":"connection-report","roomId":room,"outcome":"connected","connectMs":ms,"candidateType":candidate})
}

#[tokio::test]
async fn reports_add_up_in_metrics_by_outcome_candidate_type_and_time() {
    let stack = Stack::start().await;
    assert_eq!(figures(stack.matchmaker).await, [0.0; 6], "every series is there from the start");
    let (mut a, _) = Client::matchmaker(&stack).await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    a.send(connected(&a_matched["roomId"], 1500, "relay")).await;
    b.send(json!({"type":"connection-report","roomId":b_matched["roomId"],"outcome":"failed","connectMs":15000})).await;
    a.expect_silence().await; // no reply
    b.expect_silence().await;
    assert_eq!(figures(stack.matchmaker).await, [1.0, 1.0, 1.0, 0.0, 1.0, 1.5], "the failure has no time or type");
}

#[tokio::test]
async fn a_second_report_on_a_room_and_one_on_a_room_never_matched_into_are_ignored() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    let (mut c, _) = Client::matchmaker(&stack).await;
    let (a_matched, _) = match_up(&mut a, &mut b).await;
    let room = &a_matched["roomId"];
    a.send(connected(room, 200, "host")).await;
    a.send(connected(room, 300, "host")).await;
    c.send(connected(room, 400, "host")).await; // not c's room
    c.send(connected(&json!(uuid::Uuid::new_v4()), 400, "host")).await;
    c.send(connected(&json!("lobby"), 400, "host")).await;
    for client in [&mut a, &mut c] {
        client.expect_silence().await;
    }
    assert_eq!(figures(stack.matchmaker).await, [1.0, 0.0, 0.0, 1.0, 1.0, 0.2]);
}

#[tokio::test]
async fn a_report_on_an_earlier_room_counts_after_next() {
    // The rematch cooldown keeps the two apart after `next`: a waits, b is queued again.
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    let (first, _) = match_up(&mut a, &mut b).await;
    a.send(json!({"type":"next"})).await;
    a.recv_type("queued").await;
    a.send(json!({"type":"connection-report","roomId":first["roomId"],"outcome":"timeout"})).await;
    a.expect_silence().await;
    let (_, _, text) = http_get(stack.matchmaker, "/metrics").await;
    assert_eq!(metric_value(&text, "matchmaker_connection_reports_total{outcome=\"timeout\"}"), Some(1.0));
}

#[tokio::test]
async fn bad_fields_are_bad_messages_and_count_nothing() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    let (a_matched, _) = match_up(&mut a, &mut b).await;
    let room = &a_matched["roomId"];
    for bad in [
        json!({"type":"connection-report","outcome":"connected","connectMs":1,"candidateType":"host"}),
        json!({"type":"connection-report","roomId":room,"outcome":"fine"}),
        json!({"type":"connection-report","roomId":room,"outcome":"connected","connectMs":-5,"candidateType":"host"}),
        json!({"type":"connection-report","roomId":room,"outcome":"connected","connectMs":5,"candidateType":"turn"}),
        json!({"type":"connection-report","roomId":room,"outcome":"connected"}),
    ] {
        a.send(bad.clone()).await;
        a.recv_error("bad-message").await;
    }
    assert_eq!(figures(stack.matchmaker).await, [0.0; 6]);
    // The room is still reportable: the bad reports did not count as its report.
    a.send(connected(room, 100, "srflx")).await;
    support::wait_for_metric_value(stack.matchmaker, CONNECTED, |v| v == 1.0).await;
}

#[tokio::test]
async fn a_resumed_client_reports_on_its_match_through_the_instance_it_resumed_on() {
    let (mm, sig) = support::configs();
    let first = Stack::start_with(mm.clone(), sig.clone()).await;
    // On Redis, a second instance of the same deployment; in memory, the same instance.
    let second = match &mm.common.redis_url {
        Some(_) => Some(Stack::start_with(mm, sig).await),
        None => None,
    };
    let other = second.as_ref().unwrap_or(&first);
    let mut a = Client::connect(&first.mm_url()).await;
    let a_ready = a.recv_type("ready").await;
    let (mut b, _) = Client::matchmaker(&first).await;
    let (a_matched, _) = match_up(&mut a, &mut b).await;
    drop(a); // a network drop
    b.recv_type("partner-away").await;
    let (mut a2, _) = Client::matchmaker(other).await;
    a2.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    a2.recv_type("resumed").await;
    assert_eq!(a2.recv_type("matched").await["roomId"], a_matched["roomId"]);
    a2.send(connected(&a_matched["roomId"], 800, "prflx")).await;
    support::wait_for_metric_value(other.matchmaker, CONNECTED, |v| v == 1.0).await;
    let (_, _, text) = http_get(other.matchmaker, "/metrics").await;
    assert_eq!(metric_value(&text, "matchmaker_connected_candidates_total{candidate_type=\"prflx\"}"), Some(1.0));
}
