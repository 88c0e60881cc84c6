//! `connection-report` (contract 1.1, "Connection outcome telemetry"): what a client tells the
//! matchmaker about the WebRTC connection of a room it was matched into.

use uuid::Uuid;

use super::{bad_message, Envelope};
use crate::error::Rejected;

/// Longest `connectMs` accepted: ten minutes; a page gives up long before.
pub const MAX_CONNECT_MS: u64 = 600_000;

/// How the connection of one match ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The data channel opened.
    Connected,
    /// The peer connection failed.
    Failed,
    /// The page gave up waiting.
    Timeout,
}

impl Outcome {
    /// Every outcome, for metrics that show each from the start.
    pub const ALL: [Outcome; 3] = [Outcome::Connected, Outcome::Failed, Outcome::Timeout];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
        }
    }
}

/// The type of the local ICE candidate of the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// A local address.
    Host,
    /// Server reflexive (seen through STUN).
    Srflx,
    /// Peer reflexive.
    Prflx,
    /// Relayed by a TURN server.
    Relay,
}

impl CandidateType {
    /// Every type, for metrics that show each from the start.
    pub const ALL: [CandidateType; 4] =
        [CandidateType::Host, CandidateType::Srflx, CandidateType::Prflx, CandidateType::Relay];

    /// Its name on the wire (as WebRTC statistics name it).
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

/// A `connection-report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The room of the match reported on.
    pub room_id: Uuid,
    /// How it went.
    pub outcome: Outcome,
    /// From `matched` to the data channel open (or to the failure), in milliseconds.
    pub connect_ms: Option<u64>,
    /// The local candidate of the selected pair; required when connected.
    pub candidate_type: Option<CandidateType>,
}

impl ConnectionReport {
    /// Reads the fields of a `connection-report`. `roomId` must be a string (a room this client
    /// was not matched into is the caller's to ignore); `outcome` one of the three; `connectMs`
    /// a whole number up to [`MAX_CONNECT_MS`]; `candidateType` one of the four. A connected
    /// report needs `connectMs` and `candidateType`; the others may leave them out.
    ///
    /// # Errors
    /// `bad-message` naming the field.
    pub fn decode(env: &Envelope<'_>) -> Result<Option<Self>, Rejected> {
        let room = env.string("roomId")?;
        let outcome = match env.string("outcome")?.as_str() {
            "connected" => Outcome::Connected,
            "failed" => Outcome::Failed,
            "timeout" => Outcome::Timeout,
            _ => return Err(bad_message("`outcome` must be connected, failed or timeout")),
        };
        let connect_ms = match env.raw("connectMs") {
            None => None,
            Some(raw) => match serde_json::from_str::<u64>(raw.get()) {
                Ok(ms) if ms <= MAX_CONNECT_MS => Some(ms),
                _ => return Err(bad_message(format!("`connectMs` must be a whole number from 0 to {MAX_CONNECT_MS}"))),
            },
        };
        let candidate_type = match env.optional_string("candidateType")?.as_deref() {
            None => None,
            Some("host") => Some(CandidateType::Host),
            Some("srflx") => Some(CandidateType::Srflx),
            Some("prflx") => Some(CandidateType::Prflx),
            Some("relay") => Some(CandidateType::Relay),
            Some(_) => return Err(bad_message("`candidateType` must be host, srflx, prflx or relay")),
        };
        if outcome == Outcome::Connected && (connect_ms.is_none() || candidate_type.is_none()) {
            return Err(bad_message("a connected report needs `connectMs` and `candidateType`"));
        }
        // Room ids are UUIDs; any other string names no room anybody was matched into.
        Ok(Uuid::try_parse(&room).ok().map(|room_id| ConnectionReport { room_id, outcome, connect_ms, candidate_type }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const ROOM: &str = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";

    fn decode(text: &str) -> Result<Option<ConnectionReport>, Rejected> {
        ConnectionReport::decode(&Envelope::parse(text).unwrap())
    }

    #[test]
    fn a_connected_report_carries_its_time_and_candidate_type() {
        let text = format!(
            r#"{{"type":"connection-report","roomId":"{ROOM}","outcome":"connected","connectMs":412,"candidateType":"relay"}}"#
        );
        let report = decode(&text).unwrap().unwrap();
        assert_eq!(report.room_id.to_string(), ROOM);
        assert_eq!(
            (report.outcome, report.connect_ms, report.candidate_type),
            (Outcome::Connected, Some(412), Some(CandidateType::Relay))
        );
    }

    #[test]
    fn a_failure_may_leave_out_the_time_and_the_candidate() {
        let text = format!(r#"{{"type":"connection-report","roomId":"{ROOM}","outcome":"timeout"}}"#);
        assert_eq!(decode(&text).unwrap().unwrap().outcome, Outcome::Timeout);
    }

    #[test]
    fn a_room_id_that_is_no_room_id_is_no_room_the_client_was_matched_into() {
        let text = r#"{"type":"connection-report","roomId":"lobby","outcome":"failed"}"#;
        assert_eq!(decode(text).unwrap(), None);
    }

    #[test]
    fn bad_fields_are_bad_messages() {
        for fields in [
            r#""outcome":"failed""#,
            r#""roomId":7,"outcome":"failed""#,
            r#""roomId":"R","outcome":"great""#,
            r#""roomId":"R""#,
            r#""roomId":"R","outcome":"failed","connectMs":-1"#,
            r#""roomId":"R","outcome":"failed","connectMs":1.5"#,
            r#""roomId":"R","outcome":"failed","connectMs":600001"#,
            r#""roomId":"R","outcome":"failed","connectMs":"9""#,
            r#""roomId":"R","outcome":"failed","candidateType":"turn""#,
            r#""roomId":"R","outcome":"connected","connectMs":5"#,
            r#""roomId":"R","outcome":"connected","candidateType":"host""#,
        ] {
            let text = format!(r#"{{"type":"connection-report",{}}}"#, fields.replace('R', ROOM));
            assert_eq!(decode(&text).unwrap_err().code, ErrorCode::BadMessage, "{text}");
        }
    }
}
