//! Block, report, ban and the operator's routes, from the wire contract, over real sockets. On
//! memory, and (with `TEST_REDIS_URL`, as `test.sh` runs it) on one Redis and on a Redis Cluster.
//! Client addresses come from `X-Forwarded-For`, which the services believe from loopback here,
//! as they would from a reverse proxy.

mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use shared::limits::{Limits, TrustedProxies};
use support::{http_request, match_up, wait_for_metric, Client, Stack};

const TOKEN: &str = "operator-token-operator-token-42";

/// A stack behind a trusted proxy on loopback, with no rematch cooldown (so that only a block
/// can keep two clients apart), the given report threshold and an operator token.
async fn stack(threshold: u32) -> Stack {
    let (mut mm, sig) = support::configs();
    mm.rematch_cooldown = std::time::Duration::ZERO;
    mm.safety.rules.report_threshold = threshold as usize;
    mm.safety.admin_token = Some(TOKEN.into());
    let mut limits = Limits::unlimited();
    limits.trusted_proxies = TrustedProxies::loopback();
    Stack::start_with_limits(mm, sig, limits).await
}

/// A matchmaker client whose address (as a proxy says) is `address`.
async fn from(stack: &Stack, address: &str) -> Client {
    let mut client = Client::connect_with_headers(&stack.mm_url(), &[("x-forwarded-for", address)]).await.unwrap();
    client.recv_type("ready").await;
    client
}

async fn admin(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string());
    let (status, _, text) = http_request(addr, method, path, &[("authorization", &auth)], body.as_deref()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls an operator's list until `check` holds (on Redis another instance may answer first).
async fn admin_until(addr: SocketAddr, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let (status, body) = admin(addr, "GET", path, None).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never showed it: {status} {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `abuser` meets a fresh client from `address`, who reports it; the reporter then leaves.
async fn reported_from(stack: &Stack, abuser: &mut Client, address: &str) -> Value {
    let mut reporter = from(stack, address).await;
    match_up(abuser, &mut reporter).await;
    reporter.send(json!({"type":"report","reason":"harassment","note":"rude"})).await;
    reporter.recv_type("reported").await;
    reporter.send(json!({"type":"leave"})).await;
    abuser.recv_type("partner-left").await
}

#[tokio::test]
async fn block_ends_the_match_as_next_does_and_answers_blocked_before_queued() {
    let stack = stack(3).await;
    let (mut a, mut b) = (from(&stack, "198.51.100.1").await, from(&stack, "198.51.100.2").await);
    match_up(&mut a, &mut b).await;
    a.send(json!({"type":"block"})).await;
    assert_eq!(a.recv().await["type"], "blocked");
    assert_eq!(a.recv().await["type"], "queued");
    b.recv_type("partner-left").await;
}

#[tokio::test]
async fn blocked_strangers_are_never_paired_again_even_when_nobody_else_waits() {
    let stack = stack(3).await;
    let (mut a, mut b) = (from(&stack, "198.51.100.1").await, from(&stack, "198.51.100.2").await);
    match_up(&mut a, &mut b).await;
    a.send(json!({"type":"block"})).await;
    a.recv_type("blocked").await;
    a.recv_type("queued").await;
    b.recv_type("partner-left").await;
    b.recv_type("queued").await;
    a.expect_silence_for(std::time::Duration::from_millis(600)).await;
    let mut c = from(&stack, "198.51.100.3").await;
    c.send(json!({"type":"available"})).await;
    c.recv_type("queued").await;
    assert_eq!(c.recv_type("matched").await["type"], "matched", "a newcomer meets one of them");
}

#[tokio::test]
async fn block_right_after_a_match_ended_refers_to_the_last_partner() {
    let stack = stack(3).await;
    let (mut a, mut b) = (from(&stack, "198.51.100.1").await, from(&stack, "198.51.100.2").await);
    match_up(&mut a, &mut b).await;
    b.send(json!({"type":"leave"})).await;
    b.recv_type("left").await;
    a.recv_type("partner-left").await;
    a.recv_type("queued").await;
    a.send(json!({"type":"block"})).await;
    a.recv_type("blocked").await;
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    b.expect_silence_for(std::time::Duration::from_millis(600)).await;
}

#[tokio::test]
async fn block_or_report_with_no_partner_is_a_bad_message() {
    let stack = stack(3).await;
    let mut a = from(&stack, "198.51.100.1").await;
    a.send(json!({"type":"block"})).await;
    a.recv_error("bad-message").await;
    a.send(json!({"type":"report","reason":"spam"})).await;
    a.recv_error("bad-message").await;
    a.assert_open().await;
}

#[tokio::test]
async fn a_report_with_a_bad_reason_or_a_long_note_is_a_bad_message_and_changes_nothing() {
    let stack = stack(3).await;
    let (mut a, mut b) = (from(&stack, "198.51.100.1").await, from(&stack, "198.51.100.2").await);
    match_up(&mut a, &mut b).await;
    for bad in [
        json!({"type":"report"}),
        json!({"type":"report","reason":"boring"}),
        json!({"type":"report","reason":"spam","note":"x".repeat(501)}),
    ] {
        a.send(bad).await;
        a.recv_error("bad-message").await;
    }
    b.expect_silence().await;
}

#[tokio::test]
async fn reports_from_the_threshold_of_addresses_ban_the_reported_who_keeps_its_socket() {
    let stack = stack(2).await;
    let mut abuser = from(&stack, "203.0.113.9").await;
    reported_from(&stack, &mut abuser, "198.51.100.1").await;
    abuser.recv_type("queued").await;
    let mut partner = from(&stack, "198.51.100.2").await;
    match_up(&mut abuser, &mut partner).await;
    partner.send(json!({"type":"report","reason":"spam"})).await;
    partner.recv_type("reported").await;
    abuser.recv_type("partner-left").await;
    abuser.recv_type("queued").await;
    let banned = abuser.recv_error("banned").await;
    assert!(banned["retryAfterSecs"].as_u64().is_some_and(|s| (3_590..=3_600).contains(&s)), "{banned}");
    abuser.send(json!({"type":"available"})).await;
    assert!(abuser.recv_error("banned").await["retryAfterSecs"].as_u64().is_some());
    abuser.send(json!({"type":"next"})).await;
    abuser.recv_error("banned").await;
    abuser.assert_open().await;
    let mut again = from(&stack, "203.0.113.9").await;
    again.send(json!({"type":"available"})).await;
    again.recv_error("banned").await;
}

#[tokio::test]
async fn a_ban_ends_the_current_match_and_the_partner_hears_partner_left() {
    let stack = stack(2).await;
    let mut abuser = from(&stack, "203.0.113.9").await;
    reported_from(&stack, &mut abuser, "198.51.100.1").await;
    abuser.recv_type("queued").await;
    // The second reporter reports from another match: the abuser is with someone else then.
    let mut bystander = from(&stack, "198.51.100.5").await;
    match_up(&mut abuser, &mut bystander).await;
    let (status, _) =
        admin(stack.matchmaker, "POST", "/admin/bans", Some(json!({"address":"203.0.113.9","secs":60}))).await;
    assert_eq!(status, 201);
    bystander.recv_type("partner-left").await;
    assert_eq!(abuser.recv_error("banned").await["retryAfterSecs"], 60);
}

#[tokio::test]
async fn one_address_reporting_many_times_counts_once() {
    let stack = stack(2).await;
    let mut abuser = from(&stack, "203.0.113.9").await;
    for _ in 0..3 {
        reported_from(&stack, &mut abuser, "198.51.100.1").await;
        abuser.recv_type("queued").await;
    }
    abuser.send(json!({"type":"available"})).await;
    abuser.recv_type("queued").await;
    let bans = admin_until(stack.matchmaker, "/admin/bans", |b| b["bans"].is_array()).await;
    assert_eq!(bans["bans"], json!([]));
}

#[tokio::test]
async fn without_an_admin_token_the_operator_routes_do_not_exist() {
    let stack = Stack::start().await;
    for (method, path) in [("GET", "/admin/reports"), ("GET", "/admin/bans"), ("POST", "/admin/bans")] {
        let (status, _, _) = http_request(stack.matchmaker, method, path, &[("authorization", "Bearer x")], None).await;
        assert_eq!(status, 404, "{method} {path}");
    }
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401() {
    let stack = stack(3).await;
    for headers in [vec![], vec![("authorization", "Bearer wrong")], vec![("authorization", TOKEN)]] {
        let (status, head, _) = http_request(stack.matchmaker, "GET", "/admin/bans", &headers, None).await;
        assert_eq!(status, 401, "{headers:?}");
        assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
    }
}

#[tokio::test]
async fn reports_are_listed_newest_first_a_page_at_a_time() {
    let stack = stack(10).await;
    let mut abuser = from(&stack, "203.0.113.9").await;
    for i in 1..=3 {
        reported_from(&stack, &mut abuser, &format!("198.51.100.{i}")).await;
        abuser.recv_type("queued").await;
    }
    let first = admin_until(stack.matchmaker, "/admin/reports?limit=2", |b| b["total"] == 3).await;
    let page = first["reports"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["reporter"]["address"], "198.51.100.3");
    assert_eq!(page[1]["reporter"]["address"], "198.51.100.2");
    assert_eq!((page[0]["reason"].clone(), page[0]["note"].clone()), (json!("harassment"), json!("rude")));
    assert_eq!(page[0]["reported"]["address"], "203.0.113.9");
    assert_eq!(first["next"], 2);
    let (_, second) = admin(stack.matchmaker, "GET", "/admin/reports?offset=2&limit=2", None).await;
    assert_eq!(second["reports"][0]["reporter"]["address"], "198.51.100.1");
    assert_eq!(second["next"], Value::Null);
    let (status, _) = admin(stack.matchmaker, "GET", "/admin/reports?limit=0", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_operator_bans_an_address_or_a_user_and_lifts_the_ban() {
    let stack = stack(3).await;
    let (status, ban) = admin(
        stack.matchmaker,
        "POST",
        "/admin/bans",
        Some(json!({"address":"203.0.113.9","secs":600,"reason":"spam"})),
    )
    .await;
    assert_eq!(status, 201, "{ban}");
    assert_eq!(
        (ban["address"].clone(), ban["reason"].clone(), ban["source"].clone()),
        (json!("203.0.113.9"), json!("spam"), json!("operator"))
    );
    let id = ban["id"].as_str().unwrap().to_owned();
    admin_until(stack.matchmaker, "/admin/bans", |b| b["bans"].as_array().is_some_and(|l| l.len() == 1)).await;
    let mut abuser = from(&stack, "203.0.113.9").await;
    abuser.send(json!({"type":"available"})).await;
    assert!(abuser.recv_error("banned").await["retryAfterSecs"].as_u64().is_some_and(|s| s > 590));
    let (status, _) = admin(stack.matchmaker, "DELETE", &format!("/admin/bans/{id}"), None).await;
    assert_eq!(status, 204);
    admin_until(stack.matchmaker, "/admin/bans", |b| b["bans"] == json!([])).await;
    abuser.send(json!({"type":"available"})).await;
    abuser.recv_type("queued").await;
    let (status, _) = admin(stack.matchmaker, "DELETE", &format!("/admin/bans/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, user_ban) =
        admin(stack.matchmaker, "POST", "/admin/bans", Some(json!({"userId":"mallory","secs":60}))).await;
    assert_eq!((status, user_ban["userId"].clone()), (201, json!("mallory")));
}

#[tokio::test]
async fn a_bad_ban_request_is_refused_with_400() {
    let stack = stack(3).await;
    for body in [
        json!({"secs":60}),
        json!({"address":"not an address","secs":60}),
        json!({"address":"203.0.113.9","userId":"u","secs":60}),
        json!({"address":"203.0.113.9","secs":0}),
        json!({"address":"203.0.113.9"}),
        json!({"address":"203.0.113.9","secs":60,"reason":"x".repeat(501)}),
    ] {
        let (status, answer) = admin(stack.matchmaker, "POST", "/admin/bans", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn an_ipv6_ban_covers_the_whole_slash_64() {
    let stack = stack(3).await;
    let (status, ban) =
        admin(stack.matchmaker, "POST", "/admin/bans", Some(json!({"address":"2001:db8:1:2::77","secs":60}))).await;
    assert_eq!((status, ban["address"].clone()), (201, json!("2001:db8:1:2::")));
    admin_until(stack.matchmaker, "/admin/bans", |b| b["bans"].as_array().is_some_and(|l| l.len() == 1)).await;
    let mut neighbour = from(&stack, "2001:db8:1:2:abcd::1").await;
    neighbour.send(json!({"type":"available"})).await;
    neighbour.recv_error("banned").await;
    let mut elsewhere = from(&stack, "2001:db8:1:3::1").await;
    elsewhere.send(json!({"type":"available"})).await;
    elsewhere.recv_type("queued").await;
}

#[tokio::test]
async fn blocks_reports_and_bans_are_counted_in_metrics() {
    let stack = stack(1).await;
    let (mut a, mut b) = (from(&stack, "198.51.100.1").await, from(&stack, "198.51.100.2").await);
    match_up(&mut a, &mut b).await;
    a.send(json!({"type":"block"})).await;
    a.recv_type("blocked").await;
    for client in [&mut a, &mut b] {
        client.send(json!({"type":"leave"})).await;
    }
    let mut abuser = from(&stack, "203.0.113.9").await;
    reported_from(&stack, &mut abuser, "198.51.100.3").await;
    wait_for_metric(stack.matchmaker, "matchmaker_blocks_total 1").await;
    wait_for_metric(stack.matchmaker, "matchmaker_reports_total{reason=\"harassment\"} 1").await;
    wait_for_metric(stack.matchmaker, "matchmaker_bans_total 1").await;
}
