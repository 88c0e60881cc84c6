//! Typed messages between instances, as bytes: postcard (compact, no escaping of the relayed
//! JSON inside). A malformed entry is logged and counted, never silently dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Entries read from Redis that did not decode, since start.
pub static BAD_ENTRIES: AtomicU64 = AtomicU64::new(0);

/// A message as bytes.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Our messages are plain enums and structs: encoding cannot fail.
    postcard::to_allocvec(message).unwrap_or_else(|err| {
        tracing::error!(%err, "failed to encode a message for Redis");
        Vec::new()
    })
}

/// A message from bytes, or `None` (logged and counted in [`BAD_ENTRIES`]).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Option<T> {
    match postcard::from_bytes(bytes) {
        Ok(message) => Some(message),
        Err(err) => {
            BAD_ENTRIES.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%err, what, bytes = bytes.len(), "malformed entry from Redis; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Sample {
        Text { to: u64, text: String },
    }

    #[test]
    fn messages_survive_the_trip_and_garbage_is_counted() {
        let message = Sample::Text { to: 7, text: r#"{"type":"offer","sdp":"v=0\r\n"}"#.into() };
        assert_eq!(decode::<Sample>(&encode(&message), "test"), Some(message));
        let before = BAD_ENTRIES.load(Ordering::Relaxed);
        assert_eq!(decode::<Sample>(&[9, 9, 9], "test"), None);
        assert!(BAD_ENTRIES.load(Ordering::Relaxed) > before);
    }
}
