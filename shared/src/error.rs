//! The contract's error codes, and the crate's error type.

use serde::Serialize;

/// A stable error code from the wire contract, sent as `{"type":"error","code":...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Not JSON, not an object, or a missing or wrongly typed field.
    BadMessage,
    /// A well-formed message whose `type` this service does not know.
    UnknownType,
    /// `available` while already in a match.
    AlreadyMatched,
    /// A relay message before `join`.
    NotJoined,
    /// A missing, tampered, expired or other-room ticket.
    BadTicket,
    /// The room already holds all the peers its ticket allows.
    RoomFull,
    /// Authentication is required or the token was refused.
    Unauthorized,
    /// Too many messages; the message was dropped.
    RateLimited,
    /// A frame over `MAX_MESSAGE_BYTES`; the connection is closed with 1009.
    TooLarge,
    /// A backend the service needs is down.
    Unavailable,
    /// A fault on our side.
    Internal,
    /// `resume` with a token that is unknown, forged, expired, used, or whose client has left.
    ResumeFailed,
    /// Banned from matching for a while (`retryAfterSecs` says how long).
    Banned,
    /// `join` with a room code that names no room.
    NotFound,
    /// `to` names nobody in the room.
    UnknownPeer,
}

impl ErrorCode {
    /// Every code, for metrics that list them all from the start.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadMessage,
        ErrorCode::UnknownType,
        ErrorCode::AlreadyMatched,
        ErrorCode::NotJoined,
        ErrorCode::BadTicket,
        ErrorCode::RoomFull,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::ResumeFailed,
        ErrorCode::Banned,
        ErrorCode::NotFound,
        ErrorCode::UnknownPeer,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::UnknownType => "unknown-type",
            ErrorCode::AlreadyMatched => "already-matched",
            ErrorCode::NotJoined => "not-joined",
            ErrorCode::BadTicket => "bad-ticket",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::ResumeFailed => "resume-failed",
            ErrorCode::Banned => "banned",
            ErrorCode::NotFound => "not-found",
            ErrorCode::UnknownPeer => "unknown-peer",
        }
    }
}

/// An error answered to a client: a code and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Rejected {
    /// The contract's code.
    pub code: ErrorCode,
    /// What went wrong, for a human reading the client's log.
    pub message: String,
    /// For `banned`: how many seconds the ban has left.
    pub retry_after_secs: Option<u64>,
    /// For `rate-limited`: how long until a request would be taken again, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl Rejected {
    /// A rejection with the given code and explanation.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejected { code, message: message.into(), retry_after_secs: None, retry_after_ms: None }
    }

    /// The same, saying when to try again (`rate-limited`).
    #[must_use]
    pub fn retry_after_ms(self, ms: u64) -> Self {
        Rejected { retry_after_ms: Some(ms), ..self }
    }

    /// `banned`, for `secs` more seconds.
    pub fn banned(secs: u64) -> Self {
        Rejected {
            retry_after_secs: Some(secs),
            ..Rejected::new(ErrorCode::Banned, format!("banned from matching after reports; try again in {secs} s"))
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed; the message names the variable.
    #[error("configuration: {0}")]
    Config(String),
    /// Binding or accepting on the listening socket failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}
