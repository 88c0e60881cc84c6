//! The server messages the load generator reads, and the few it writes that carry no payload.
//! Only what the scenarios need; unknown fields are ignored, as the contract allows.

use serde::Deserialize;

use crate::client::ClientError;

/// `{"type":"available"}`.
pub const AVAILABLE: &str = r#"{"type":"available"}"#;
/// `{"type":"next"}`.
pub const NEXT: &str = r#"{"type":"next"}"#;
/// `{"type":"leave"}`.
pub const LEAVE: &str = r#"{"type":"leave"}"#;

/// A message from the matchmaker, the signaler or the bare relay (not a relayed signal).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Incoming {
    /// Matchmaker greeting.
    Ready {
        /// This connection's id.
        client_id: String,
    },
    /// In the queue.
    Queued,
    /// Paired. The bare relay sends `clientId`, `partnerId` and `initiator` only.
    Matched {
        /// The room (matchmaker).
        #[serde(default)]
        room_id: String,
        /// The partner's client id.
        partner_id: String,
        /// Whether this side makes the offer.
        initiator: bool,
        /// Where to open the signaler (matchmaker).
        #[serde(default)]
        signaling_url: String,
        /// The room ticket (matchmaker).
        #[serde(default)]
        ticket: String,
        /// This connection's id (bare relay; the matchmaker said it in `ready`).
        #[serde(default)]
        client_id: String,
    },
    /// The partner ended the match.
    PartnerLeft {
        /// The room that ended.
        room_id: String,
    },
    /// Answer to `leave`.
    Left,
    /// Answer to `join`.
    Joined {
        /// The id the ticket names.
        peer_id: String,
    },
    /// The partner entered the room.
    PeerJoined,
    /// The partner left the room.
    PeerLeft,
    /// Answer to `ping`.
    Pong,
    /// A refused request.
    Error {
        /// Stable code.
        code: String,
        /// Explanation.
        message: String,
    },
    /// `offer`, `answer`, `ice`: relayed signals, read by [`crate::payload`] instead.
    Offer,
    /// See [`Incoming::Offer`].
    Answer,
    /// See [`Incoming::Offer`].
    Ice,
}

impl Incoming {
    /// Parses a frame.
    ///
    /// # Errors
    /// [`ClientError::Malformed`] naming what the client waited for.
    pub fn parse(text: &str, expected: &'static str) -> Result<Incoming, ClientError> {
        serde_json::from_str(text).map_err(|err| ClientError::Malformed { expected, detail: err.to_string() })
    }

    /// The message's `type`, for error reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Incoming::Ready { .. } => "ready",
            Incoming::Queued => "queued",
            Incoming::Matched { .. } => "matched",
            Incoming::PartnerLeft { .. } => "partner-left",
            Incoming::Left => "left",
            Incoming::Joined { .. } => "joined",
            Incoming::PeerJoined => "peer-joined",
            Incoming::PeerLeft => "peer-left",
            Incoming::Pong => "pong",
            Incoming::Error { .. } => "error",
            Incoming::Offer => "offer",
            Incoming::Answer => "answer",
            Incoming::Ice => "ice",
        }
    }

    /// An error message as a [`ClientError`]; any other message as unexpected.
    pub fn into_error(self, expected: &'static str) -> ClientError {
        match self {
            Incoming::Error { code, message } => ClientError::Server { code, message },
            other => ClientError::Unexpected { expected, got: other.kind().to_owned() },
        }
    }
}

/// `{"type":"join",...}` for the signaler.
pub fn join(room_id: &str, ticket: &str) -> String {
    serde_json::json!({ "type": "join", "roomId": room_id, "ticket": ticket }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_matched_from_both_targets() {
        let mm = r#"{"type":"matched","roomId":"r","partnerId":"p","initiator":true,"signalingUrl":"ws://x/ws","ticket":"t","iceServers":[]}"#;
        let Incoming::Matched { room_id, partner_id, initiator, signaling_url, ticket, .. } =
            Incoming::parse(mm, "matched").unwrap()
        else {
            panic!("not matched")
        };
        assert_eq!((room_id.as_str(), partner_id.as_str(), initiator), ("r", "p", true));
        assert_eq!((signaling_url.as_str(), ticket.as_str()), ("ws://x/ws", "t"));
        let bare = r#"{"type":"matched","clientId":"1","partnerId":"2","initiator":false}"#;
        assert!(
            matches!(Incoming::parse(bare, "matched").unwrap(), Incoming::Matched { client_id, .. } if client_id == "1")
        );
    }

    #[test]
    fn unknown_types_and_garbage_are_errors_not_panics() {
        assert!(Incoming::parse(r#"{"type":"dance"}"#, "x").is_err());
        assert!(Incoming::parse("nope", "x").is_err());
        let err = Incoming::parse(r#"{"type":"error","code":"bad-ticket","message":"m"}"#, "x").unwrap();
        assert_eq!(err.into_error("joined").kind(), "server error (bad-ticket)");
    }
}
