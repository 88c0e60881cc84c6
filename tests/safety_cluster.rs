//! Reports and bans across instances: reporters on one instance ban an abuser on another, and
//! the ban, kept in Redis, outlives every instance. Real `redis-server`s and real processes of
//! the runner, on one Redis and on a Redis Cluster.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::instances::*;
use support::{http_request, match_up, Client};

const TOKEN: &str = "operator-token-operator-token-42";

fn start(redis: &Redis) -> Instance {
    Instance::start_with(redis, &[("ADMIN_TOKEN", TOKEN), ("REPORT_THRESHOLD", "2"), ("REMATCH_COOLDOWN_SECS", "0")])
}

/// A client of `instance` whose address (as the proxy on loopback says) is `address`.
async fn from(instance: &Instance, address: &str) -> Client {
    let mut client = Client::connect_with_headers(&instance.url(), &[("x-forwarded-for", address)]).await.unwrap();
    client.recv_type("ready").await;
    client
}

async fn bans(instance: &Instance) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) =
        http_request(instance.matchmaker, "GET", "/admin/bans", &[("authorization", &auth)], None).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Waits until `instance` lists exactly one ban, on `address`.
async fn banned_address(instance: &Instance, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = bans(instance).await;
        if status == 200 && body["bans"].as_array().is_some_and(|b| b.len() == 1 && b[0]["address"] == address) {
            return;
        }
        assert!(Instant::now() < deadline, "the ban never showed: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries `available` until the answer is not `unavailable` (a new owner is taking over).
async fn available_answer(client: &mut Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        client.send(json!({"type":"available"})).await;
        let reply = client.recv().await;
        if reply["code"] != "unavailable" {
            return reply;
        }
        assert!(Instant::now() < deadline, "the service did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both!(
    reports_ban_across_instances_and_the_ban_outlives_them,
    reports_on_one_instance_ban_a_client_of_another_and_the_ban_outlives_every_instance_on_one_redis,
    reports_on_one_instance_ban_a_client_of_another_and_the_ban_outlives_every_instance_on_a_redis_cluster
);

async fn reports_ban_across_instances_and_the_ban_outlives_them(redis: Redis) {
    let mut first = start_ready_with(&redis, start).await;
    let mut second = start_ready_with(&redis, start).await;
    let mut abuser = from(&second, "203.0.113.9").await;
    for address in ["198.51.100.1", "198.51.100.2"] {
        let mut reporter = from(&first, address).await;
        match_up(&mut abuser, &mut reporter).await;
        reporter.send(json!({"type":"report","reason":"nudity"})).await;
        reporter.recv_type("reported").await;
        reporter.send(json!({"type":"leave"})).await;
        abuser.recv_type("partner-left").await;
        abuser.recv_type("queued").await;
    }
    let banned = abuser.recv_error("banned").await;
    assert!(banned["retryAfterSecs"].as_u64().is_some_and(|s| s > 3_500), "{banned}");
    banned_address(&first, "203.0.113.9").await;
    for instance in [&mut first, &mut second] {
        instance.terminate();
        let _ = instance.child.wait();
    }
    let restarted = start(&redis);
    banned_address(&restarted, "203.0.113.9").await;
    let mut again = from(&restarted, "203.0.113.9").await;
    let reply = available_answer(&mut again).await;
    assert_eq!(reply["code"], "banned", "{reply}");
    let mut someone = from(&restarted, "198.51.100.7").await;
    assert_eq!(available_answer(&mut someone).await["type"], "queued");
}
