//! Messages of the signaler socket.

use serde::Serialize;
use uuid::Uuid;

use super::{unknown_type, Envelope, JsonKind};
use crate::error::Rejected;

/// What a client may send to the signaler.
#[derive(Debug)]
pub enum ClientMessage<'a> {
    /// Enter a room with the ticket the matchmaker gave.
    Join {
        /// The room named in `matched`.
        room_id: String,
        /// The ticket from `matched`: `None` when missing or not a string (`bad-ticket`).
        ticket: Option<String>,
    },
    /// `offer`, `answer` or `ice`, checked and kept raw for relaying.
    Signal(Envelope<'a>),
    /// Leave the room; the socket stays open.
    Leave,
    /// App-level keepalive.
    Ping,
}

impl<'a> ClientMessage<'a> {
    /// Decodes one text frame.
    ///
    /// # Errors
    /// `bad-message` or `unknown-type`, as the contract says.
    pub fn decode(text: &'a str) -> Result<Self, Rejected> {
        let env = Envelope::parse(text)?;
        Ok(match env.kind() {
            "join" => ClientMessage::Join { room_id: env.string("roomId")?, ticket: env.string("ticket").ok() },
            "offer" | "answer" => {
                env.require("sdp", JsonKind::String)?;
                ClientMessage::Signal(env)
            }
            "ice" => {
                env.require("candidate", JsonKind::ObjectOrNull)?;
                ClientMessage::Signal(env)
            }
            "leave" => ClientMessage::Leave,
            "ping" => ClientMessage::Ping,
            other => return Err(unknown_type(other)),
        })
    }
}

/// What the signaler sends, besides relayed signals.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum ServerMessage<'a> {
    /// Answer to `join`.
    Joined {
        /// The room joined.
        room_id: Uuid,
        /// The client id the ticket names.
        peer_id: Uuid,
        /// The peers already in the room.
        peers: &'a [Uuid],
        /// The contract's version, `1.1`.
        protocol: &'a str,
    },
    /// Another peer entered the room (or re-entered it from a new connection).
    PeerJoined {
        /// Who.
        peer_id: Uuid,
    },
    /// Another peer left the room or disconnected.
    PeerLeft {
        /// Who.
        peer_id: Uuid,
    },
    /// Another peer's socket dropped; it may come back (what is sent to it is held).
    PeerAway {
        /// Who.
        peer_id: Uuid,
    },
    /// An away peer came back.
    PeerBack {
        /// Who.
        peer_id: Uuid,
    },
    /// Answer to `leave`.
    Left,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn code(text: &str) -> ErrorCode {
        ClientMessage::decode(text).unwrap_err().code
    }

    #[test]
    fn signals_need_their_field_with_the_right_type() {
        assert!(matches!(ClientMessage::decode(r#"{"type":"offer","sdp":"v=0"}"#), Ok(ClientMessage::Signal(_))));
        assert!(matches!(ClientMessage::decode(r#"{"type":"ice","candidate":null}"#), Ok(ClientMessage::Signal(_))));
        assert_eq!(code(r#"{"type":"offer"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"answer","sdp":{}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"ice"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"ice","candidate":"x"}"#), ErrorCode::BadMessage);
    }

    #[test]
    fn join_needs_a_room_string_and_reports_a_missing_ticket() {
        assert!(matches!(
            ClientMessage::decode(r#"{"type":"join","roomId":"r"}"#),
            Ok(ClientMessage::Join { ticket: None, .. })
        ));
        assert!(matches!(
            ClientMessage::decode(r#"{"type":"join","roomId":"r","ticket":5}"#),
            Ok(ClientMessage::Join { ticket: None, .. })
        ));
        assert_eq!(code(r#"{"type":"join","roomId":1,"ticket":"t"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"hello"}"#), ErrorCode::UnknownType);
    }
}
