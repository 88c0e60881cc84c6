//! The wire contract: one JSON object per text frame, tagged by `type`.
//!
//! Incoming frames are parsed once into an [`Envelope`] (field names mapped to their raw JSON
//! text, nothing deeper parsed), then turned into each service's typed `ClientMessage`. Outgoing
//! messages are typed serde enums. Relayed signaling payloads stay raw: the server never parses
//! SDP or ICE candidates, it only checks their JSON type.

pub mod matchmaker;
pub mod report;
pub mod signaler;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ErrorCode, Rejected};

/// A parsed frame: its `type` and every field as raw JSON.
#[derive(Debug)]
pub struct Envelope<'a> {
    kind: Cow<'a, str>,
    fields: BTreeMap<Key<'a>, &'a RawValue>,
}

/// A field name, borrowed from the frame unless it had escapes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Envelope<'a> {
    /// Parses a text frame: it must be a JSON object with a string `type`.
    ///
    /// # Errors
    /// `bad-message` for anything else.
    pub fn parse(text: &'a str) -> Result<Self, Rejected> {
        if !text.trim_start().starts_with('{') {
            return Err(bad_message("a message must be a JSON object"));
        }
        let fields: BTreeMap<Key<'a>, &'a RawValue> =
            serde_json::from_str(text).map_err(|err| bad_message(format!("not valid JSON: {err}")))?;
        let kind = match fields.get(&Key(Cow::Borrowed("type"))) {
            None => return Err(bad_message("missing field `type`")),
            Some(raw) => Cow::<str>::deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
                .map_err(|_| bad_message("field `type` must be a string"))?,
        };
        Ok(Envelope { kind, fields })
    }

    /// The message's `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The raw JSON of a field, if present.
    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.get(&Key(Cow::Borrowed(name))).copied()
    }

    /// A required string field.
    ///
    /// # Errors
    /// `bad-message` naming the field when it is missing or not a string.
    pub fn string(&self, name: &str) -> Result<String, Rejected> {
        let raw = self.raw(name).ok_or_else(|| bad_message(format!("missing field `{name}`")))?;
        serde_json::from_str::<String>(raw.get()).map_err(|_| bad_message(format!("field `{name}` must be a string")))
    }

    /// An optional string field: `None` when absent.
    ///
    /// # Errors
    /// `bad-message` naming the field when it is present but not a string.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, Rejected> {
        match self.raw(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map(Some)
                .map_err(|_| bad_message(format!("field `{name}` must be a string"))),
        }
    }

    /// Checks that a required field is present and of the given JSON kind.
    ///
    /// # Errors
    /// `bad-message` naming the field and what it should be.
    pub fn require(&self, name: &str, kind: JsonKind) -> Result<(), Rejected> {
        let raw = self.raw(name).ok_or_else(|| bad_message(format!("missing field `{name}`")))?;
        if kind.matches(raw) {
            Ok(())
        } else {
            Err(bad_message(format!("field `{name}` must be {}", kind.describe())))
        }
    }

    /// Re-encodes the whole object with `from` set to `sender`, overwriting any `from` the client
    /// sent. Field values are copied as raw text, not re-serialised.
    pub fn with_from(&self, sender: &str) -> String {
        let size: usize = self.fields.iter().map(|(k, v)| k.0.len() + v.get().len() + 4).sum();
        let mut out = String::with_capacity(size + sender.len() + 12);
        out.push('{');
        for (key, value) in &self.fields {
            if key.0 == "from" {
                continue;
            }
            push_json_string(&mut out, &key.0);
            out.push(':');
            out.push_str(value.get());
            out.push(',');
        }
        out.push_str("\"from\":");
        push_json_string(&mut out, sender);
        out.push('}');
        out
    }
}

/// The JSON kinds a relayed field may be required to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// A JSON string.
    String,
    /// A JSON object or `null`.
    ObjectOrNull,
}

impl JsonKind {
    fn matches(self, raw: &RawValue) -> bool {
        // serde_json keeps raw values exactly as written, minus surrounding whitespace, so the
        // first byte tells the JSON type.
        let text = raw.get();
        match self {
            JsonKind::String => text.starts_with('"'),
            JsonKind::ObjectOrNull => text.starts_with('{') || text == "null",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            JsonKind::String => "a string",
            JsonKind::ObjectOrNull => "an object or null",
        }
    }
}

/// Appends `value` as a JSON string. Field names and ids need no escaping as a rule, so they
/// are copied as they are; anything else goes through serde_json.
fn push_json_string(out: &mut String, value: &str) {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        // Serialising a &str into JSON cannot fail.
        out.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
}

/// A `bad-message` rejection.
pub fn bad_message(message: impl Into<String>) -> Rejected {
    Rejected::new(ErrorCode::BadMessage, message)
}

/// An `unknown-type` rejection for the given type.
pub fn unknown_type(kind: &str) -> Rejected {
    let shown: String = kind.chars().take(64).collect();
    Rejected::new(ErrorCode::UnknownType, format!("unknown message type `{shown}`"))
}

/// Messages both services send.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CommonMessage<'a> {
    /// A request was refused; the connection stays open unless the contract says otherwise.
    Error {
        /// The stable code.
        code: ErrorCode,
        /// Human explanation.
        message: &'a str,
        /// For `banned`: seconds left.
        #[serde(rename = "retryAfterSecs", skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
        /// For `rate-limited`: milliseconds until a request is taken again.
        #[serde(rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `{"type":"ping"}`.
    Pong,
}

impl<'a> From<&'a Rejected> for CommonMessage<'a> {
    fn from(rejected: &'a Rejected) -> Self {
        CommonMessage::Error {
            code: rejected.code,
            message: &rejected.message,
            retry_after_secs: rejected.retry_after_secs,
            retry_after_ms: rejected.retry_after_ms,
        }
    }
}

/// Serialises an outgoing message to its JSON text.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Our outgoing types are plain structs with string keys; serialising them cannot fail.
    serde_json::to_string(message).unwrap_or_else(|err| {
        tracing::error!(%err, "failed to encode an outgoing message");
        String::from(r#"{"type":"error","code":"internal","message":"encoding failed"}"#)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_non_objects_and_missing_type() {
        for text in ["", "nope", "[1]", "42", "\"s\"", "{", "{\"a\":1}", "{\"type\":3}"] {
            let err = Envelope::parse(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadMessage, "{text}");
        }
    }

    #[test]
    fn parse_reads_type_and_fields() {
        let env = Envelope::parse(r#" {"type":"offer","sdp":"v=0","extra":[1,2]} "#).unwrap();
        assert_eq!(env.kind(), "offer");
        assert_eq!(env.string("sdp").unwrap(), "v=0");
        assert!(env.require("sdp", JsonKind::String).is_ok());
        assert_eq!(env.string("extra").unwrap_err().code, ErrorCode::BadMessage);
    }

    #[test]
    fn with_from_overwrites_client_from_and_keeps_other_fields() {
        let env = Envelope::parse(r#"{"type":"ice","from":"spoof","candidate":{"c":"x\"y"},"z\u0041":null}"#).unwrap();
        let out: serde_json::Value = serde_json::from_str(&env.with_from("me")).unwrap();
        assert_eq!(out, serde_json::json!({"type":"ice","from":"me","candidate":{"c":"x\"y"},"zA":null}));
    }

    #[test]
    fn with_from_escapes_what_json_needs_escaped() {
        let env = Envelope::parse(r#"{"type":"ice","candidate":null,"a\"b":1,"c\\d":2,"e\u0001":3}"#).unwrap();
        let out: serde_json::Value = serde_json::from_str(&env.with_from("x\"y")).unwrap();
        assert_eq!(out, serde_json::json!({"type":"ice","candidate":null,"a\"b":1,"c\\d":2,"e\u{1}":3,"from":"x\"y"}));
    }

    #[test]
    fn object_or_null_accepts_both_and_nothing_else() {
        for (text, ok) in [("{}", true), ("null", true), ("\"x\"", false), ("[]", false), ("1", false)] {
            let frame = format!(r#"{{"type":"ice","candidate":{text}}}"#);
            let env = Envelope::parse(&frame).unwrap();
            assert_eq!(env.require("candidate", JsonKind::ObjectOrNull).is_ok(), ok, "{text}");
        }
    }
}
