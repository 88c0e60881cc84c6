//! TURN credentials (contract 1.1, "TURN credentials"): with `TURN_SECRET` and `TURN_URLS` set,
//! every `matched` carries time-limited credentials for its client after the entries of
//! `ICE_SERVERS`, and a resume gets fresh ones. Runs on whichever backend the environment names.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{match_up, Client, Stack};

const TURN_SECRET: &str = "turn-secret-turn-secret-turn-secret";
const TTL_SECS: u64 = 600;

fn configs() -> (matchmaker::Config, signaler::Config) {
    let (mut mm, sig) = support::configs();
    let vars = [("TURN_SECRET", format!("{TURN_SECRET},retired-secret")), ("TURN_URLS", "turn:127.0.0.1:3478".into())];
    let vars = vars.into_iter().chain([("TURN_TTL_SECS", TTL_SECS.to_string())]);
    mm.common.turn = shared::turn::Turn::from_vars(vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    mm.ice_servers = serde_json::value::RawValue::from_string(r#"[{"urls":"stun:stun.example.org"}]"#.into()).unwrap();
    (mm, sig)
}

/// Checks the TURN entry of a `matched` for `client`; returns its expiry.
fn check_turn_entry(matched: &Value, client: &str) -> u64 {
    let servers = matched["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{matched}");
    assert_eq!(servers[0], json!({"urls":"stun:stun.example.org"}), "ICE_SERVERS first, unchanged");
    let turn = &servers[1];
    assert_eq!(turn["urls"], json!(["turn:127.0.0.1:3478"]));
    let username = turn["username"].as_str().unwrap();
    let (expiry, id) = username.split_once(':').unwrap();
    assert_eq!(id, client);
    let expiry: u64 = expiry.parse().unwrap();
    let now = support::now();
    assert!((now + TTL_SECS - 5..=now + TTL_SECS).contains(&expiry), "expiry {expiry}, now {now}");
    assert_eq!(turn["credential"], shared::turn::credential(TURN_SECRET, username), "the first secret signs");
    expiry
}

#[tokio::test]
async fn every_matched_carries_turn_credentials_for_its_client_after_the_ice_servers() {
    let (mm, sig) = configs();
    let stack = Stack::start_with(mm, sig).await;
    let (mut a, a_id) = Client::matchmaker(&stack).await;
    let (mut b, b_id) = Client::matchmaker(&stack).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    check_turn_entry(&a_matched, &a_id);
    check_turn_entry(&b_matched, &b_id);
}

#[tokio::test]
async fn a_resumed_match_gets_fresh_turn_credentials() {
    let (mm, sig) = configs();
    let stack = Stack::start_with(mm, sig).await;
    let mut a = Client::connect(&stack.mm_url()).await;
    let a_ready = a.recv_type("ready").await;
    let a_id = a_ready["clientId"].as_str().unwrap().to_owned();
    let (mut b, _) = Client::matchmaker(&stack).await;
    let (a_matched, _) = match_up(&mut a, &mut b).await;
    let first = check_turn_entry(&a_matched, &a_id);
    drop(a); // a network drop
    b.recv_type("partner-away").await;
    // Credentials are issued to the second: let one pass so that fresh ones differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut a2, _) = Client::matchmaker(&stack).await;
    a2.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    a2.recv_type("resumed").await;
    let again = a2.recv_type("matched").await;
    assert!(check_turn_entry(&again, &a_id) > first, "fresh credentials: {again}");
}

#[tokio::test]
async fn turn_is_listed_as_a_feature_only_when_configured_and_no_route_gives_credentials() {
    let (mm, sig) = configs();
    let stack = Stack::start_with(mm, sig).await;
    let plain = Stack::start().await;
    for (stack, listed) in [(&stack, true), (&plain, false)] {
        let mut client = Client::connect(&stack.mm_url()).await;
        let ready = client.recv_type("ready").await;
        assert_eq!(ready["features"].as_array().unwrap().contains(&json!("turn")), listed, "{ready}");
        let (status, _, body) = support::http_get(stack.matchmaker, "/api/config").await;
        assert_eq!(status, 200);
        let config: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(config["features"].as_array().unwrap().contains(&json!("turn")), listed, "{body}");
        assert!(!body.contains(TURN_SECRET) && !body.contains("credential"), "{body}");
    }
}
