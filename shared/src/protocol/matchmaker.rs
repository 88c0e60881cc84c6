//! Messages of the matchmaker socket.

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{unknown_type, Envelope};
use crate::error::Rejected;

/// What a client may send to the matchmaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Present a JWT; required before `available` when `AUTH_JWT_SECRET` is set.
    Auth {
        /// The JWT.
        token: String,
    },
    /// Join the queue.
    Available,
    /// End the current match and queue again (or just queue when unmatched).
    Next,
    /// Leave the queue and any match; the socket stays open.
    Leave,
    /// App-level keepalive.
    Ping,
    /// Be the client a resume token names again, on this new socket.
    Resume {
        /// The token from `ready` or `resumed`.
        token: String,
    },
}

impl ClientMessage {
    /// Decodes one text frame.
    ///
    /// # Errors
    /// `bad-message` or `unknown-type`, as the contract says.
    pub fn decode(text: &str) -> Result<Self, Rejected> {
        let env = Envelope::parse(text)?;
        Ok(match env.kind() {
            "auth" => ClientMessage::Auth { token: env.string("token")? },
            "available" => ClientMessage::Available,
            "next" => ClientMessage::Next,
            "leave" => ClientMessage::Leave,
            "ping" => ClientMessage::Ping,
            "resume" => ClientMessage::Resume { token: env.string("token")? },
            other => return Err(unknown_type(other)),
        })
    }
}

/// What the matchmaker sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum ServerMessage<'a> {
    /// First message on every socket: the id this connection goes by.
    Ready {
        /// A fresh UUID v4.
        client_id: Uuid,
        /// The contract's version, `1.1`.
        protocol: &'a str,
        /// The optional features this deployment has switched on.
        features: &'a [&'a str],
        /// What a new socket shows to be this client again after a drop.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume_token: Option<&'a str>,
        /// How long a dropped client stays resumable, in seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume_grace_secs: Option<u64>,
    },
    /// Answer to `auth`.
    Authenticated {
        /// The token's `sub`, or the client id.
        user_id: &'a str,
    },
    /// The client waits in the queue.
    Queued {
        /// How many wait in all (not exact under load).
        waiting: usize,
    },
    /// The client has a partner.
    Matched {
        /// The room both partners join on the signaler.
        room_id: Uuid,
        /// The partner's client id.
        partner_id: Uuid,
        /// Whether this side creates the WebRTC offer.
        initiator: bool,
        /// Where to open the signaler socket.
        signaling_url: &'a str,
        /// Proof for the signaler that this client belongs in the room.
        ticket: &'a str,
        /// `RTCIceServer` objects, ready for `new RTCPeerConnection({iceServers})`.
        ice_servers: &'a RawValue,
    },
    /// The partner sent `next` or `leave`, or disconnected.
    PartnerLeft {
        /// The room that ended.
        room_id: Uuid,
    },
    /// The partner's socket dropped; it may come back (resume).
    PartnerAway {
        /// The room.
        room_id: Uuid,
    },
    /// The partner came back.
    PartnerBack {
        /// The room.
        room_id: Uuid,
    },
    /// Answer to `leave`.
    Left,
    /// Answer to a successful `resume`: this socket is now that client.
    Resumed {
        /// The original client id.
        client_id: Uuid,
        /// `idle`, `queued` or `matched` (a `matched` follows).
        state: &'a str,
        /// The next token (the one just used is spent).
        resume_token: &'a str,
    },
}

/// The contract version both services speak.
pub const PROTOCOL_VERSION: &str = "1.1";

/// `GET /api/config`: what a page needs before it opens any socket. No secrets.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiConfig {
    /// The contract's version, `1.1`.
    pub protocol: &'static str,
    /// The optional features this deployment has switched on (as `ready` lists them).
    pub features: Vec<&'static str>,
    /// Where matched clients open the signaler, for the host the page was reached at.
    pub signaling_url: String,
    /// The limits a client should stay within.
    pub limits: ClientLimits,
}

/// The limits of a deployment, as a client sees them.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientLimits {
    /// The largest text frame accepted, in bytes.
    pub max_message_bytes: usize,
    /// Messages a socket may send per second, sustained.
    pub messages_per_sec: u32,
    /// Messages a socket may send at once.
    pub message_burst: u32,
    /// `next`/`available` requests per minute per socket.
    pub next_per_minute: u32,
    /// `next`/`available` requests a socket may send at once.
    pub next_burst: u32,
    /// Open sockets per client address.
    pub max_connections_per_ip: usize,
    /// How long a dropped client stays resumable, in seconds (0: no resume).
    pub resume_grace_secs: u64,
    /// How often the services ping; a socket silent for two intervals is dropped.
    pub ping_interval_secs: u64,
    /// How long a ticket admits its holder to its room, in seconds.
    pub ticket_ttl_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn decodes_every_client_message() {
        assert_eq!(
            ClientMessage::decode(r#"{"type":"auth","token":"t"}"#).unwrap(),
            ClientMessage::Auth { token: "t".into() }
        );
        assert_eq!(ClientMessage::decode(r#"{"type":"available"}"#).unwrap(), ClientMessage::Available);
        assert_eq!(ClientMessage::decode(r#"{"type":"next","x":1}"#).unwrap(), ClientMessage::Next);
        assert_eq!(ClientMessage::decode(r#"{"type":"leave"}"#).unwrap(), ClientMessage::Leave);
        assert_eq!(ClientMessage::decode(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping);
        assert_eq!(
            ClientMessage::decode(r#"{"type":"resume","token":"t"}"#).unwrap(),
            ClientMessage::Resume { token: "t".into() }
        );
    }

    #[test]
    fn unknown_type_and_bad_fields_are_told_apart() {
        assert_eq!(ClientMessage::decode(r#"{"type":"dance"}"#).unwrap_err().code, ErrorCode::UnknownType);
        assert_eq!(ClientMessage::decode(r#"{"type":"auth"}"#).unwrap_err().code, ErrorCode::BadMessage);
        assert_eq!(ClientMessage::decode(r#"{"type":"auth","token":5}"#).unwrap_err().code, ErrorCode::BadMessage);
    }

    #[test]
    fn matched_uses_camel_case_fields() {
        let ice = RawValue::from_string("[]".into()).unwrap();
        let text = crate::protocol::encode(&ServerMessage::Matched {
            room_id: Uuid::nil(),
            partner_id: Uuid::nil(),
            initiator: true,
            signaling_url: "ws://x/ws",
            ticket: "t",
            ice_servers: &ice,
        });
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "matched");
        assert_eq!(value["roomId"], Uuid::nil().to_string());
        assert_eq!(value["signalingUrl"], "ws://x/ws");
        assert_eq!(value["iceServers"], serde_json::json!([]));
    }
}
