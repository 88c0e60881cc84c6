//! What the fuzz targets check, as plain functions of the input bytes, so that the root test
//! `tests/fuzz_regressions.rs` runs every kept input (`fuzz/regressions/<target>/`) through
//! exactly the same code without the fuzzer.
//!
//! Beyond "never panics", each target checks a property a client could otherwise break:
//! decoding only ever answers with the contract's codes and short replies; a relayed signal is
//! the sender's object plus `from`, nothing lost or smuggled; and no ticket the signaler accepts
//! says anything other than what the matchmaker signed.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use shared::error::Rejected;
use shared::protocol::{matchmaker, signaler, Envelope, JsonKind};
use shared::ticket::{Admission, Tickets};
use shared::ErrorCode;
use uuid::Uuid;

/// The longest error reply a frame may get back (the message is cut to
/// [`shared::ws::MAX_ERROR_MESSAGE_BYTES`]; the rest is the code and the JSON around them).
pub const MAX_ERROR_REPLY: usize = shared::ws::MAX_ERROR_MESSAGE_BYTES + 64;

/// The sender id relayed signals are stamped with.
const SENDER: &str = "5b0b0a6e-0000-4000-8000-000000000001";

/// Text frames are UTF-8 (tungstenite checks it before any service sees them).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A refusal has one of the expected codes, and the reply the client gets is short JSON.
fn check_rejection(rejected: &Rejected, allowed: &[ErrorCode], input: &str) {
    assert!(allowed.contains(&rejected.code), "code {:?} for {input:?}", rejected.code);
    assert!(!rejected.message.is_empty(), "empty message for {input:?}");
    let reply = shared::ws::error_reply(rejected);
    assert!(reply.len() <= MAX_ERROR_REPLY, "a {} byte reply for {input:?}", reply.len());
    let value: Value = serde_json::from_str(&reply).unwrap_or_else(|err| panic!("reply {reply:?} is not JSON: {err}"));
    assert_eq!(value["code"], rejected.code.as_str());
}

/// The matchmaker's decoder: any frame is a message or `bad-message`/`unknown-type`.
pub fn matchmaker_decode(data: &[u8]) {
    let Some(input) = text(data) else { return };
    match matchmaker::ClientMessage::decode(input) {
        Ok(matchmaker::ClientMessage::Auth { token }) => {
            // The token is the frame's `token` string, exactly.
            let value: Option<Value> = serde_json::from_str(input).ok();
            if let Some(Value::String(expected)) = value.as_ref().and_then(|v| v.get("token")) {
                assert_eq!(&token, expected);
            }
        }
        Ok(_) => {}
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadMessage, ErrorCode::UnknownType], input),
    }
}

/// The signaler's decoder, and the relay of what it accepts.
pub fn signaler_decode(data: &[u8]) {
    let Some(input) = text(data) else { return };
    match signaler::ClientMessage::decode(input) {
        Ok(signaler::ClientMessage::Signal(envelope)) => check_relay(input, &envelope),
        Ok(_) => {}
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadMessage, ErrorCode::UnknownType], input),
    }
}

/// What the partner receives is the sender's object with `from` set to the sender, and
/// every other field as sent.
fn check_relay(input: &str, envelope: &Envelope<'_>) {
    let relayed = envelope.with_from(SENDER);
    let again = Envelope::parse(&relayed).unwrap_or_else(|err| panic!("relayed {relayed:?} does not parse: {err}"));
    assert_eq!(again.kind(), envelope.kind());
    assert_eq!(again.string("from").ok().as_deref(), Some(SENDER), "relayed {relayed:?}");
    for field in ["sdp", "candidate"] {
        assert_eq!(again.raw(field).map(|r| r.get()), envelope.raw(field).map(|r| r.get()));
    }
    assert!(
        again.require("sdp", JsonKind::String).is_ok() || again.require("candidate", JsonKind::ObjectOrNull).is_ok()
    );
    // Where serde_json reads the frame too, the relayed object is the frame plus `from`.
    if let Ok(Value::Object(mut sent)) = serde_json::from_str::<Value>(input) {
        sent.insert("from".to_owned(), Value::String(SENDER.to_owned()));
        let got: BTreeMap<String, Value> =
            serde_json::from_str(&relayed).unwrap_or_else(|err| panic!("relayed {relayed:?} is not JSON: {err}"));
        let sent: BTreeMap<String, Value> = sent.into_iter().collect();
        assert_eq!(got, sent, "relayed {relayed:?} for {input:?}");
    }
}

/// The envelope under both decoders: agrees with serde_json on `type`, and its accessors
/// never panic.
pub fn envelope(data: &[u8]) {
    let Some(input) = text(data) else { return };
    match Envelope::parse(input) {
        Ok(envelope) => {
            if let Ok(value) = serde_json::from_str::<Value>(input) {
                assert_eq!(value.get("type").and_then(Value::as_str), Some(envelope.kind()), "{input:?}");
            }
            for name in ["type", "sdp", "candidate", "roomId", "ticket", "token", "from", ""] {
                if let Err(rejected) = envelope.string(name) {
                    check_rejection(&rejected, &[ErrorCode::BadMessage], input);
                }
                for kind in [JsonKind::String, JsonKind::ObjectOrNull] {
                    let _ = envelope.require(name, kind);
                }
            }
            let _ = envelope.with_from(SENDER);
        }
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadMessage], input),
    }
}

/// The secret and room of the ticket targets.
const SECRET: &[u8] = b"fuzz-ticket-secret-fuzz-ticket-secret";
fn fixture() -> &'static (Tickets, Uuid, Uuid, String) {
    static FIXTURE: OnceLock<(Tickets, Uuid, Uuid, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // A day, so that a run never outlives its own genuine ticket.
        let tickets = Tickets::new(SECRET, Duration::from_secs(86_400));
        let (room, peer) = (Uuid::from_u128(0x1111), Uuid::from_u128(0x2222));
        let ticket = tickets.issue(room, peer);
        (tickets, room, peer, ticket)
    })
}

/// Any bytes as `ticket` and `roomId` (split at the first newline): `bad-ticket` or an admission
/// to the room it was presented for, never a panic.
pub fn ticket_verify(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let (ticket, room) = input.split_once('\n').unwrap_or((input, "00000000-0000-0000-0000-000000000000"));
    let (tickets, ..) = fixture();
    match tickets.verify(ticket, room) {
        Ok(admission) => assert_eq!(Uuid::parse_str(room).ok(), Some(admission.room)),
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadTicket], input),
    }
}

/// Edits a genuine ticket (the input is a list of `(position, byte)` pairs): whatever still
/// passes must admit exactly what the genuine one does.
pub fn ticket_tamper(data: &[u8]) {
    let (tickets, room, peer, genuine) = fixture();
    let mut bytes = genuine.clone().into_bytes();
    for edit in data.chunks_exact(2) {
        let position = usize::from(edit[0]) * bytes.len() / 256;
        match edit[1] {
            // 0 deletes, 1 duplicates; anything else overwrites.
            0 if bytes.len() > 1 => {
                bytes.remove(position);
            }
            1 => bytes.insert(position, bytes[position]),
            byte => bytes[position] = byte,
        }
    }
    let Ok(ticket) = String::from_utf8(bytes) else { return };
    match tickets.verify(&ticket, &room.to_string()) {
        Ok(Admission { room: got_room, peer: got_peer, .. }) => {
            assert_eq!((got_room, got_peer), (*room, *peer), "{ticket:?}");
        }
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadTicket], &ticket),
    }
}

/// A ticket made of any header and claims bytes (split at the first newline), once signed with
/// the real secret and once with another: the foreign one is always refused; the genuine one
/// admits only to the room its claims name, and only with every claim a ticket needs.
pub fn ticket_parts(data: &[u8]) {
    let (tickets, room, ..) = fixture();
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, claims) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let unsigned = format!("{}.{}", base64url(header), base64url(claims));
    let sign = |secret: &[u8]| {
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        jsonwebtoken::crypto::sign(unsigned.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .map(|signature| format!("{unsigned}.{signature}"))
            .unwrap_or_default()
    };
    let forged = sign(b"not-the-secret-not-the-secret-not");
    match tickets.verify(&forged, &room.to_string()) {
        Ok(admission) => panic!("a foreign key admitted {admission:?} with {forged:?}"),
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadTicket], &forged),
    }
    let genuine = sign(SECRET);
    match tickets.verify(&genuine, &room.to_string()) {
        Ok(admission) => {
            let claims: Value = serde_json::from_slice(claims).unwrap_or_default();
            assert_eq!(claims["room"].as_str().and_then(|r| Uuid::parse_str(r).ok()), Some(admission.room));
            assert_eq!(claims["aud"], "signaler", "{genuine:?}");
            assert!(claims["exp"].is_u64() && claims["nbf"].is_u64(), "{genuine:?}");
        }
        Err(rejected) => check_rejection(&rejected, &[ErrorCode::BadTicket], &genuine),
    }
}

/// Base64url without padding, as JWTs use it.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
