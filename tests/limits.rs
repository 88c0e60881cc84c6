//! Every abuse limit at, just below and just above its value: the message rate and burst, the
//! drops that close a socket, `next` presses per minute and their burst, connections per client
//! IP and per instance, and who may name the client IP.

mod support;

use std::time::Duration;

use serde_json::json;
use shared::limits::{Limits, TrustedProxies};
use support::{upgrade_answer, upgrade_status, Client, Stack};
use tokio::time::MissedTickBehavior;

/// Limits for one test: the defaults with `change` applied.
fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    change(&mut limits);
    limits
}

async fn stack(limits: Limits) -> Stack {
    let (mm, sig) = support::configs();
    Stack::start_with_limits(mm, sig, limits).await
}

/// A socket on each service, the matchmaker's greeting read.
async fn sockets(stack: &Stack) -> Vec<Client> {
    let (mm, _) = Client::matchmaker(stack).await;
    vec![mm, Client::signaler(stack).await]
}

/// Sends `n` pings at once and returns (pongs, rate-limited errors) among the answers.
async fn ping_burst(client: &mut Client, n: usize) -> (usize, usize) {
    for _ in 0..n {
        client.feed_text(r#"{"type":"ping"}"#).await;
    }
    client.flush().await;
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..n {
        let message = client.recv().await;
        match (message["type"].as_str(), message["code"].as_str()) {
            (Some("pong"), _) => pongs += 1,
            (Some("error"), Some("rate-limited")) => limited += 1,
            _ => panic!("unexpected answer {message}"),
        }
    }
    (pongs, limited)
}

/// A burst of 5 and a slow refill, so that a burst is over long before a token comes back.
fn burst_of_five() -> Limits {
    limits(|l| {
        l.message_burst = 5;
        l.messages_per_sec = 1;
    })
}

#[tokio::test]
async fn a_burst_just_below_message_burst_is_answered_in_full() {
    let stack = stack(burst_of_five()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 4).await, (4, 0));
    }
}

#[tokio::test]
async fn a_burst_of_exactly_message_burst_is_answered_in_full() {
    let stack = stack(burst_of_five()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 5).await, (5, 0));
        client.expect_silence().await;
    }
}

#[tokio::test]
async fn one_message_over_message_burst_is_dropped_with_rate_limited_and_the_socket_stays_open() {
    let stack = stack(burst_of_five()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 6).await, (5, 1));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        client.assert_open().await;
    }
}

/// Sends 20 pings, one every `period`, and counts (pongs, rate-limited).
async fn paced_pings(client: &mut Client, period: Duration) -> (usize, usize) {
    let mut ticks = tokio::time::interval(period);
    // Never two sends closer than `period`, even after a late tick.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..20 {
        ticks.tick().await;
        client.send(json!({"type":"ping"})).await;
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if message["code"] == "rate-limited" => limited += 1,
            _ => panic!("unexpected answer {message}"),
        }
    }
    (pongs, limited)
}

/// 10 messages a second, and a burst of 3 so that a late message (up to 200 ms) followed by an
/// on-time one does not count as a burst.
fn ten_per_second() -> Limits {
    limits(|l| {
        l.messages_per_sec = 10;
        l.message_burst = 3;
    })
}

#[tokio::test]
async fn sending_just_below_messages_per_sec_is_never_limited() {
    let stack = stack(ten_per_second()).await;
    let mut client = Client::signaler(&stack).await;
    assert_eq!(paced_pings(&mut client, Duration::from_millis(120)).await, (20, 0));
}

#[tokio::test]
async fn sending_exactly_at_messages_per_sec_is_never_limited() {
    let stack = stack(ten_per_second()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(paced_pings(&mut client, Duration::from_millis(100)).await, (20, 0));
}

#[tokio::test]
async fn sending_above_messages_per_sec_is_limited() {
    let stack = stack(ten_per_second()).await;
    let mut client = Client::signaler(&stack).await;
    // Four times the rate: after the burst, about one in four gets through.
    let (pongs, limited) = paced_pings(&mut client, Duration::from_millis(25)).await;
    assert!(limited >= 5, "{pongs} pongs, {limited} rate-limited");
    assert!(pongs >= 4, "the sustained rate still gets through: {pongs} pongs, {limited} rate-limited");
}

/// One message at a time, no refill to speak of, and 3 drops tolerated.
fn three_drops() -> Limits {
    limits(|l| {
        l.message_burst = 1;
        l.messages_per_sec = 1;
        l.max_dropped_messages = 3;
    })
}

#[tokio::test]
async fn just_below_max_dropped_messages_the_socket_stays_open() {
    let stack = stack(three_drops()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 3).await, (1, 2));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        client.assert_open().await;
    }
}

#[tokio::test]
async fn exactly_max_dropped_messages_leave_the_socket_open() {
    let stack = stack(three_drops()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 4).await, (1, 3));
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        client.assert_open().await;
    }
}

#[tokio::test]
async fn one_drop_over_max_dropped_messages_closes_the_socket_with_1008() {
    let stack = stack(three_drops()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 5).await, (1, 4), "the last drop is answered too");
        let close = client.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1008);
    }
}

#[tokio::test]
async fn binary_frames_count_against_the_message_rate() {
    let stack = stack(burst_of_five()).await;
    let mut client = Client::signaler(&stack).await;
    for _ in 0..5 {
        client.send_binary(b"x".to_vec()).await;
        client.recv_error("bad-message").await;
    }
    client.send(json!({"type":"ping"})).await;
    client.recv_error("rate-limited").await;
}

/// Three presses at once, then one a minute: far slower than these tests.
fn three_presses() -> Limits {
    limits(|l| {
        l.next_burst = 3;
        l.next_per_minute = 1;
    })
}

/// Sends `next` `n` times and returns the answers' types (error codes for errors).
async fn press_next(client: &mut Client, n: usize) -> Vec<String> {
    let mut answers = Vec::new();
    for _ in 0..n {
        client.send(json!({"type":"next"})).await;
        let message = client.recv().await;
        let answer = if message["type"] == "error" { &message["code"] } else { &message["type"] };
        answers.push(answer.as_str().unwrap_or_default().to_owned());
    }
    answers
}

#[tokio::test]
async fn a_burst_just_below_next_burst_is_answered_in_full() {
    let stack = stack(three_presses()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(press_next(&mut client, 2).await, ["queued", "queued"]);
}

#[tokio::test]
async fn a_burst_of_exactly_next_burst_is_answered_in_full() {
    let stack = stack(three_presses()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(press_next(&mut client, 3).await, ["queued", "queued", "queued"]);
}

#[tokio::test]
async fn one_press_over_next_burst_is_rate_limited_and_the_socket_stays_usable() {
    let stack = stack(three_presses()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(press_next(&mut client, 4).await, ["queued", "queued", "queued", "rate-limited"]);
    client.send(json!({"type":"leave"})).await;
    client.recv_type("left").await;
    client.assert_open().await;
}

#[tokio::test]
async fn rate_limited_says_when_to_try_again() {
    // Messages: 1 per second after the burst; presses: 1 per minute after theirs.
    let stack = stack(limits(|l| {
        l.message_burst = 5;
        l.messages_per_sec = 1;
        l.next_burst = 1;
        l.next_per_minute = 1;
    }))
    .await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    client.send(json!({"type":"next"})).await;
    client.recv_type("queued").await;
    client.send(json!({"type":"next"})).await;
    let refused = client.recv_error("rate-limited").await;
    let wait = refused["retryAfterMs"].as_u64().unwrap_or_else(|| panic!("{refused}"));
    assert!((50_000..=60_000).contains(&wait), "a press comes back within a minute: {refused}");
    for _ in 0..3 {
        client.send(json!({"type":"ping"})).await;
        client.recv_type("pong").await;
    }
    client.send(json!({"type":"ping"})).await;
    let refused = client.recv_error("rate-limited").await;
    let wait = refused["retryAfterMs"].as_u64().unwrap_or_else(|| panic!("{refused}"));
    assert!((1..=1_000).contains(&wait), "a message comes back within a second: {refused}");
}

#[tokio::test]
async fn available_counts_as_a_press() {
    // Otherwise `leave` + `available` would churn partners as fast as `next`.
    let stack = stack(three_presses()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    for _ in 0..3 {
        client.send(json!({"type":"available"})).await;
        client.recv_type("queued").await;
    }
    client.send(json!({"type":"available"})).await;
    client.recv_error("rate-limited").await;
}

#[tokio::test]
async fn one_clients_presses_do_not_limit_another() {
    let stack = stack(three_presses()).await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    let (mut b, _) = Client::matchmaker(&stack).await;
    assert_eq!(press_next(&mut a, 4).await.last().map(String::as_str), Some("rate-limited"));
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    b.recv_type("matched").await;
}

/// Presses `next` 20 times, one every `period`, and counts (queued, rate-limited).
async fn paced_presses(client: &mut Client, period: Duration) -> (usize, usize) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut queued, mut limited) = (0, 0);
    for _ in 0..20 {
        ticks.tick().await;
        match press_next(client, 1).await[0].as_str() {
            "queued" => queued += 1,
            "rate-limited" => limited += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    (queued, limited)
}

/// Ten presses a second, and a burst of 3 so that a late press (up to 200 ms) followed by an
/// on-time one does not count as a burst.
fn ten_presses_per_second() -> Limits {
    limits(|l| {
        l.next_per_minute = 600;
        l.next_burst = 3;
    })
}

#[tokio::test]
async fn pressing_just_below_next_per_minute_is_never_limited() {
    let stack = stack(ten_presses_per_second()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(paced_presses(&mut client, Duration::from_millis(120)).await, (20, 0));
}

#[tokio::test]
async fn pressing_exactly_at_next_per_minute_is_never_limited() {
    let stack = stack(ten_presses_per_second()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    assert_eq!(paced_presses(&mut client, Duration::from_millis(100)).await, (20, 0));
}

#[tokio::test]
async fn pressing_above_next_per_minute_is_limited() {
    let stack = stack(ten_presses_per_second()).await;
    let (mut client, _) = Client::matchmaker(&stack).await;
    let (queued, limited) = paced_presses(&mut client, Duration::from_millis(25)).await;
    assert!(limited >= 5 && queued >= 4, "{queued} queued, {limited} rate-limited");
}

/// `n` sockets to `url` from the same address, kept open.
async fn open_sockets(url: &str, n: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(Client::connect(url).await);
    }
    clients
}

fn three_per_ip() -> Limits {
    limits(|l| {
        l.max_connections_per_ip = 3;
        l.trusted_proxies = TrustedProxies::default();
    })
}

#[tokio::test]
async fn just_below_max_connections_per_ip_another_socket_is_accepted() {
    let stack = stack(three_per_ip()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open = open_sockets(&url, 1).await;
        assert_eq!(upgrade_status(&url, &[]).await, 101);
    }
}

#[tokio::test]
async fn exactly_max_connections_per_ip_sockets_are_accepted() {
    let stack = stack(three_per_ip()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let mut open = open_sockets(&url, 3).await;
        for client in &mut open {
            client.send(json!({"type":"ping"})).await;
            while client.recv().await["type"] != "pong" {}
        }
    }
}

#[tokio::test]
async fn one_socket_over_max_connections_per_ip_gets_429_until_one_closes() {
    let stack = stack(three_per_ip()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let mut open = open_sockets(&url, 3).await;
        assert_eq!(upgrade_status(&url, &[]).await, 429);
        open.pop().unwrap().close().await;
        let deadline = tokio::time::Instant::now() + support::PATIENCE;
        while upgrade_status(&url, &[]).await != 101 {
            assert!(tokio::time::Instant::now() < deadline, "the closed socket's place was never given back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn three_per_instance() -> Limits {
    limits(|l| l.max_connections = 3)
}

#[tokio::test]
async fn just_below_max_connections_another_socket_is_accepted() {
    let stack = stack(three_per_instance()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open = open_sockets(&url, 2).await;
        assert_eq!(upgrade_status(&url, &[]).await, 101);
    }
}

#[tokio::test]
async fn exactly_max_connections_sockets_are_accepted() {
    let stack = stack(three_per_instance()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let mut open = open_sockets(&url, 3).await;
        for client in &mut open {
            client.send(json!({"type":"ping"})).await;
            while client.recv().await["type"] != "pong" {}
        }
    }
}

#[tokio::test]
async fn one_socket_over_max_connections_gets_503_whatever_its_address() {
    let stack = stack(three_per_instance()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open: Vec<Client> = {
            let mut open = Vec::new();
            for i in 1..=3 {
                let from = format!("198.51.100.{i}");
                open.push(Client::connect_with_headers(&url, &[("x-forwarded-for", &from)]).await.unwrap());
            }
            open
        };
        assert_eq!(upgrade_status(&url, &[("x-forwarded-for", "203.0.113.50")]).await, 503);
        // Plain HTTP is not a socket: the service still answers it.
        let addr = url.trim_start_matches("ws://").trim_end_matches("/ws").parse().unwrap();
        assert_eq!(support::http_get(addr, "/healthz").await.0, 200);
    }
}

#[tokio::test]
async fn refused_upgrades_are_counted_in_metrics() {
    let stack = stack(limits(|l| {
        l.max_connections_per_ip = 1;
        l.trusted_proxies = TrustedProxies::default();
    }))
    .await;
    let _open = open_sockets(&stack.sig_url(), 1).await;
    assert_eq!(upgrade_status(&stack.sig_url(), &[]).await, 429);
    let (_, _, metrics) = support::http_get(stack.signaler, "/metrics").await;
    assert_eq!(support::metric_value(&metrics, "signaler_connections_refused_total{reason=\"ip-full\"}"), Some(1.0));
    assert_eq!(
        support::metric_value(&metrics, "signaler_connections_refused_total{reason=\"instance-full\"}"),
        Some(0.0)
    );
}

fn one_per_ip_behind(proxies: &str) -> Limits {
    limits(|l| {
        l.max_connections_per_ip = 1;
        l.trusted_proxies = TrustedProxies::parse(proxies).unwrap();
    })
}

#[tokio::test]
async fn behind_a_trusted_proxy_x_forwarded_for_names_the_client() {
    let stack = stack(one_per_ip_behind("127.0.0.1/32")).await;
    let url = stack.sig_url();
    let _a = Client::connect_with_headers(&url, &[("x-forwarded-for", "198.51.100.1")]).await.unwrap();
    let _b = Client::connect_with_headers(&url, &[("x-forwarded-for", "198.51.100.2")]).await.unwrap();
    assert_eq!(upgrade_status(&url, &[("x-forwarded-for", "198.51.100.1")]).await, 429);
}

#[tokio::test]
async fn from_an_untrusted_peer_x_forwarded_for_is_ignored() {
    let stack = stack(one_per_ip_behind("none")).await;
    let url = stack.sig_url();
    let _a = Client::connect_with_headers(&url, &[("x-forwarded-for", "198.51.100.1")]).await.unwrap();
    assert_eq!(upgrade_status(&url, &[("x-forwarded-for", "198.51.100.2")]).await, 429);
}

#[tokio::test]
async fn addresses_a_client_writes_left_of_its_proxy_entry_are_not_believed() {
    let stack = stack(one_per_ip_behind("127.0.0.1/32")).await;
    let url = stack.mm_url();
    // The proxy appended 203.0.113.7; whatever the client wrote before it is its own claim.
    let _a = Client::connect_with_headers(&url, &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]).await.unwrap();
    assert_eq!(upgrade_status(&url, &[("x-forwarded-for", "198.51.100.2, 203.0.113.7")]).await, 429);
    assert_eq!(
        upgrade_status(&url, &[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-for", "192.0.2.1")]).await,
        101
    );
}

/// The default burst, and a refill too slow to matter within one burst.
fn default_burst() -> Limits {
    limits(|l| l.messages_per_sec = 1)
}

#[tokio::test]
async fn by_default_a_burst_of_256_messages_is_answered_in_full() {
    let stack = stack(default_burst()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 256).await, (256, 0));
    }
}

#[tokio::test]
async fn by_default_the_257th_message_of_a_burst_is_rate_limited_and_the_socket_stays_open() {
    let stack = stack(default_burst()).await;
    for mut client in sockets(&stack).await {
        assert_eq!(ping_burst(&mut client, 257).await, (256, 1));
        // The socket is still open: the next message after a token comes back is answered.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        client.assert_open().await;
    }
}

/// `n` sockets that a proxy on loopback (trusted by default) says come from `client`.
async fn sockets_from(url: &str, client: &str, n: usize) -> Vec<Client> {
    let mut open = Vec::new();
    for _ in 0..n {
        open.push(Client::connect_with_headers(url, &[("x-forwarded-for", client)]).await.unwrap());
    }
    open
}

#[tokio::test]
async fn by_default_255_sockets_from_one_address_leave_room_for_another() {
    let stack = stack(Limits::default()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open = sockets_from(&url, "198.51.100.7", 255).await;
        assert_eq!(upgrade_answer(&url, &[("x-forwarded-for", "198.51.100.7")]).await, (101, None));
    }
}

#[tokio::test]
async fn by_default_256_sockets_from_one_address_are_accepted_and_the_257th_gets_429_with_retry_after() {
    let stack = stack(Limits::default()).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open = sockets_from(&url, "198.51.100.7", 256).await;
        let retry_after = shared::limits::CONNECTION_RETRY_AFTER_SECS.to_string();
        assert_eq!(upgrade_answer(&url, &[("x-forwarded-for", "198.51.100.7")]).await, (429, Some(retry_after)));
        assert_eq!(upgrade_answer(&url, &[("x-forwarded-for", "198.51.100.8")]).await.0, 101, "another address");
    }
}

#[tokio::test]
async fn a_trusted_proxy_that_names_no_client_counts_against_no_address() {
    // One socket per address, and a proxy on loopback that sends no X-Forwarded-For.
    let stack = stack(limits(|l| l.max_connections_per_ip = 1)).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        let _open = open_sockets(&url, 3).await;
        assert_eq!(upgrade_status(&url, &[]).await, 101);
        assert_eq!(upgrade_status(&url, &[("x-forwarded-for", "198.51.100.9")]).await, 101);
    }
}

#[test]
fn a_bad_limit_stops_start_up_with_a_message_naming_it() {
    for (variable, value) in [
        ("MESSAGES_PER_SEC", "0"),
        ("MESSAGE_BURST", "lots"),
        ("MAX_DROPPED_MESSAGES", "-1"),
        ("NEXT_PER_MINUTE", "0"),
        ("NEXT_BURST", "0"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS_PER_IP", "many"),
        ("TRUSTED_PROXIES", "10.0.0.0/40"),
        ("OUTBOX_MAX_BYTES", "100"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_strangers"))
            .env_clear()
            .env("PORT", "0")
            .env("SIGNALER_PORT", "0")
            .env(variable, value)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value} not named in: {stderr}");
    }
}
