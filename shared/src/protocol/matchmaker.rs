//! Messages of the matchmaker socket.

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use rules::matchmaking::safety::Reason;

use super::{bad_message, unknown_type, Envelope};
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
    Available(Wish),
    /// End the current match and queue again (or just queue when unmatched).
    Next(Wish),
    /// Leave the queue and any match; the socket stays open.
    Leave,
    /// App-level keepalive.
    Ping,
    /// Be the client a resume token names again, on this new socket.
    Resume {
        /// The token from `ready` or `resumed`.
        token: String,
    },
    /// Never be paired with the current (or last) partner again; ends the match as `next` does.
    Block,
    /// A block, plus a report for operators.
    Report {
        /// Why.
        reason: Reason,
        /// What the reporter adds, at most [`MAX_REPORT_NOTE_CHARS`] characters.
        note: Option<String>,
    },
    /// How the WebRTC connection of a match went (`None`: a `roomId` that names no room).
    ConnectionReport(Option<super::report::ConnectionReport>),
}

/// Longest `note` of a `report`, in characters.
pub const MAX_REPORT_NOTE_CHARS: usize = 500;

impl ClientMessage {
    /// Decodes one text frame.
    ///
    /// # Errors
    /// `bad-message` or `unknown-type`, as the contract says.
    pub fn decode(text: &str) -> Result<Self, Rejected> {
        let env = Envelope::parse(text)?;
        Ok(match env.kind() {
            "auth" => ClientMessage::Auth { token: env.string("token")? },
            "available" => ClientMessage::Available(Wish::decode(&env)?),
            "next" => ClientMessage::Next(Wish::decode(&env)?),
            "leave" => ClientMessage::Leave,
            "ping" => ClientMessage::Ping,
            "resume" => ClientMessage::Resume { token: env.string("token")? },
            "block" => ClientMessage::Block,
            "report" => decode_report(&env)?,
            "connection-report" => ClientMessage::ConnectionReport(super::report::ConnectionReport::decode(&env)?),
            other => return Err(unknown_type(other)),
        })
    }
}

fn decode_report(env: &Envelope<'_>) -> Result<ClientMessage, Rejected> {
    let reason = env.string("reason")?;
    let Some(reason) = Reason::ALL.into_iter().find(|r| r.as_str() == reason) else {
        return Err(bad_message("`reason` must be one of spam, harassment, nudity, underage, other"));
    };
    let note = env.optional_string("note")?;
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_REPORT_NOTE_CHARS) {
        return Err(bad_message(format!("`note` must be at most {MAX_REPORT_NOTE_CHARS} characters")));
    }
    Ok(ClientMessage::Report { reason, note: note.filter(|n| !n.trim().is_empty()) })
}

/// Most interests an `available` or `next` may carry.
pub const MAX_INTERESTS: usize = 10;
/// Longest interest, in characters after trimming.
pub const MAX_INTEREST_CHARS: usize = 32;
/// Longest `interestWaitSecs`.
pub const MAX_INTEREST_WAIT_SECS: u64 = 60;

/// What an `available` or `next` may say about whom to meet: `interests` (lower-cased, trimmed,
/// without duplicates) and `interestWaitSecs`. `None`: the field was not there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wish {
    /// The interests, when the field was sent (an empty list clears them).
    pub interests: Option<Vec<String>>,
    /// How long to wait for someone who shares one, in seconds.
    pub interest_wait_secs: Option<u64>,
}

impl Wish {
    fn decode(env: &Envelope<'_>) -> Result<Self, Rejected> {
        let interests = match env.raw("interests") {
            None => None,
            Some(raw) => Some(parse_interests(raw.get())?),
        };
        let interest_wait_secs = match env.raw("interestWaitSecs") {
            None => None,
            Some(raw) => match serde_json::from_str::<u64>(raw.get()) {
                Ok(secs) if secs <= MAX_INTEREST_WAIT_SECS => Some(secs),
                _ => {
                    return Err(bad_message(format!(
                        "`interestWaitSecs` must be a whole number of seconds from 0 to {MAX_INTEREST_WAIT_SECS}"
                    )))
                }
            },
        };
        Ok(Wish { interests, interest_wait_secs })
    }

    /// Whether it says anything.
    pub fn is_empty(&self) -> bool {
        self.interests.is_none() && self.interest_wait_secs.is_none()
    }
}

fn parse_interests(raw: &str) -> Result<Vec<String>, Rejected> {
    let wrong = || {
        bad_message(format!(
            "`interests` must be a list of at most {MAX_INTERESTS} strings of 1 to {MAX_INTEREST_CHARS} characters"
        ))
    };
    let list: Vec<String> = serde_json::from_str(raw).map_err(|_| wrong())?;
    if list.len() > MAX_INTERESTS {
        return Err(wrong());
    }
    let mut interests: Vec<String> = Vec::with_capacity(list.len());
    for interest in list {
        let interest = interest.trim().to_lowercase();
        let chars = interest.chars().count();
        if chars == 0 || chars > MAX_INTEREST_CHARS {
            return Err(wrong());
        }
        if !interests.contains(&interest) {
            interests.push(interest);
        }
    }
    Ok(interests)
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
        /// The interests the two share (empty: a random match).
        common_interests: &'a [String],
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
    /// Answer to `block`.
    Blocked,
    /// Answer to `report`.
    Reported,
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
        assert_eq!(
            ClientMessage::decode(r#"{"type":"available"}"#).unwrap(),
            ClientMessage::Available(Wish::default())
        );
        assert_eq!(ClientMessage::decode(r#"{"type":"next","x":1}"#).unwrap(), ClientMessage::Next(Wish::default()));
        assert_eq!(ClientMessage::decode(r#"{"type":"leave"}"#).unwrap(), ClientMessage::Leave);
        assert_eq!(ClientMessage::decode(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping);
        assert_eq!(
            ClientMessage::decode(r#"{"type":"resume","token":"t"}"#).unwrap(),
            ClientMessage::Resume { token: "t".into() }
        );
    }

    #[test]
    fn report_takes_a_reason_and_a_note_within_limits() {
        assert_eq!(ClientMessage::decode(r#"{"type":"block"}"#).unwrap(), ClientMessage::Block);
        assert_eq!(
            ClientMessage::decode(r#"{"type":"report","reason":"spam","note":"links"}"#).unwrap(),
            ClientMessage::Report { reason: Reason::Spam, note: Some("links".into()) }
        );
        let longest = "é".repeat(MAX_REPORT_NOTE_CHARS);
        let text = serde_json::json!({"type":"report","reason":"other","note":longest}).to_string();
        assert!(ClientMessage::decode(&text).is_ok());
        for bad in [
            serde_json::json!({"type":"report"}),
            serde_json::json!({"type":"report","reason":"rude"}),
            serde_json::json!({"type":"report","reason":"spam","note":5}),
            serde_json::json!({"type":"report","reason":"spam","note":"x".repeat(MAX_REPORT_NOTE_CHARS + 1)}),
        ] {
            assert_eq!(ClientMessage::decode(&bad.to_string()).unwrap_err().code, ErrorCode::BadMessage, "{bad}");
        }
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
            common_interests: &["chess".to_owned()],
        });
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["commonInterests"], serde_json::json!(["chess"]));
        assert_eq!(value["type"], "matched");
        assert_eq!(value["roomId"], Uuid::nil().to_string());
        assert_eq!(value["signalingUrl"], "ws://x/ws");
        assert_eq!(value["iceServers"], serde_json::json!([]));
    }

    fn wish(text: &str) -> Result<Wish, ErrorCode> {
        match ClientMessage::decode(text) {
            Ok(ClientMessage::Available(wish) | ClientMessage::Next(wish)) => Ok(wish),
            Ok(other) => panic!("{other:?}"),
            Err(rejected) => Err(rejected.code),
        }
    }

    #[test]
    fn interests_are_trimmed_lower_cased_and_counted_once() {
        let got = wish(r#"{"type":"available","interests":[" Chess ","MUSIC","chess"],"interestWaitSecs":5}"#);
        let want = Wish { interests: Some(vec!["chess".into(), "music".into()]), interest_wait_secs: Some(5) };
        assert_eq!(got, Ok(want));
        assert_eq!(wish(r#"{"type":"next","interests":[]}"#).map(|w| w.interests), Ok(Some(vec![])));
    }

    #[test]
    fn interests_at_their_limits_are_taken() {
        let ten: Vec<String> = (0..MAX_INTERESTS).map(|i| format!("t{i}")).collect();
        let text = serde_json::json!({"type":"available","interests":ten,"interestWaitSecs":MAX_INTEREST_WAIT_SECS});
        assert!(wish(&text.to_string()).is_ok());
        let longest = "é".repeat(MAX_INTEREST_CHARS);
        assert!(wish(&serde_json::json!({"type":"available","interests":[longest]}).to_string()).is_ok());
    }

    #[test]
    fn interests_beyond_their_limits_are_bad_messages() {
        let eleven: Vec<String> = (0..=MAX_INTERESTS).map(|i| format!("t{i}")).collect();
        let too_long = "x".repeat(MAX_INTEREST_CHARS + 1);
        for text in [
            serde_json::json!({"type":"available","interests":eleven}),
            serde_json::json!({"type":"available","interests":[too_long]}),
            serde_json::json!({"type":"available","interests":["  "]}),
            serde_json::json!({"type":"available","interests":[1]}),
            serde_json::json!({"type":"available","interests":"chess"}),
            serde_json::json!({"type":"next","interestWaitSecs":MAX_INTEREST_WAIT_SECS + 1}),
            serde_json::json!({"type":"next","interestWaitSecs":-1}),
            serde_json::json!({"type":"next","interestWaitSecs":2.5}),
        ] {
            assert_eq!(wish(&text.to_string()), Err(ErrorCode::BadMessage), "{text}");
        }
    }
}
