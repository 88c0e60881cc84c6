//! Run alone, the matchmaker refuses to start without the shared ticket secret.

use std::process::Command;

#[test]
fn without_room_ticket_secret_the_service_refuses_to_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_matchmaker")).env_clear().env("PORT", "0").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ROOM_TICKET_SECRET"));
}
