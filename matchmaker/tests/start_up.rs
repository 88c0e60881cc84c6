//! Run alone, the matchmaker refuses to start without the shared ticket secret.

use std::process::Command;

#[test]
fn without_room_ticket_secret_the_service_refuses_to_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_matchmaker")).env_clear().env("PORT", "0").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ROOM_TICKET_SECRET"));
}

#[test]
fn the_healthcheck_subcommand_reports_whether_the_service_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let probe =
        || Command::new(env!("CARGO_BIN_EXE_matchmaker")).arg("healthcheck").env("PORT", &port).status().unwrap();
    assert!(!probe().success(), "nothing listens yet");
    let mut service = Command::new(env!("CARGO_BIN_EXE_matchmaker"))
        .env_clear()
        .env("PORT", &port)
        .env("HOST", "127.0.0.1")
        .env("ROOM_TICKET_SECRET", "healthcheck-test-secret-healthcheck-test")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut healthy = false;
    while std::time::Instant::now() < deadline && !healthy {
        healthy = probe().success();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = service.kill();
    let _ = service.wait();
    assert!(healthy, "the running service never passed its health check");
}
