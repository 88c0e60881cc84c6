//! The development runner as a user starts it: `cargo run --release` at the root.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::Client;

fn runner() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strangers"));
    command.env_clear().env("PORT", "0").env("SIGNALER_PORT", "0").env("RUST_LOG", "warn");
    command
}

/// Runs the runner with one bad setting; returns its exit code and stderr.
fn start_up_error(variable: &str, value: &str) -> (Option<i32>, String) {
    let output = runner().env(variable, value).stdin(Stdio::null()).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_bad_setting_stops_start_up_with_a_message_naming_it() {
    for (variable, value) in [
        ("PORT", "eighty"),
        ("SIGNALER_PORT", "99999"),
        ("TICKET_TTL_SECS", "soon"),
        ("MAX_MESSAGE_BYTES", "1"),
        ("ALLOWED_ORIGIN", "not-an-origin"),
        ("ICE_SERVERS", "{\"urls\":1}"),
        ("REQUEUE_ON_PARTNER_LEAVE", "perhaps"),
        ("REMATCH_COOLDOWN_SECS", "-1"),
        ("SIGNALING_URL", "http://wrong"),
        ("SHUTDOWN_GRACE_SECS", "-3"),
        ("RUST_LOG", "info,[[["),
    ] {
        let (code, stderr) = start_up_error(variable, value);
        assert_eq!(code, Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value} not named in: {stderr}");
    }
}

#[tokio::test]
async fn the_runner_prints_the_url_serves_both_services_and_stops_on_sigterm() {
    let mut child =
        runner().env("SHUTDOWN_GRACE_SECS", "2").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("the runner printed no URL");
        if let Some(rest) = line.strip_prefix("open http://") {
            break rest.split_whitespace().next().unwrap().trim_end_matches('/').to_owned();
        }
    };
    let (mut a, _) = matchmaker(&url).await;
    let (mut b, _) = matchmaker(&url).await;
    a.send(json!({"type":"available"})).await;
    b.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    let matched = a.recv_type("matched").await;
    // The signaling URL the runner hands out works as is.
    let mut signal = Client::connect(matched["signalingUrl"].as_str().unwrap()).await;
    signal.send(support::join(&matched)).await;
    signal.recv_type("joined").await;

    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // The drain: a peer alone in its room moves on at once (1012); a client in a chat is closed
    // at the end of the grace period (1001).
    let close = signal.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1012);
    let close = a.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still running after the grace period");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

async fn matchmaker(host: &str) -> (Client, String) {
    let mut client = Client::connect(&format!("ws://{host}/ws")).await;
    let ready = client.recv_type("ready").await;
    (client, ready["clientId"].as_str().unwrap().to_owned())
}
