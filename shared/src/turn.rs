//! Time-limited TURN credentials (feature `turn`): the TURN REST API scheme that coturn checks
//! with `use-auth-secret`. The username is `<expiry unix time>:<id>`, the credential the base64
//! of HMAC-SHA1(secret, username); the TURN server, which knows the secret, checks both and
//! refuses the pair once the expiry has passed. Nothing is stored, so any instance issues them.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::{config_error, in_range, parse_vars, warn_if_weak};
use crate::error::Error;

/// Default `TURN_TTL_SECS`: how long issued TURN credentials are valid (four hours, longer than
/// nearly every chat, as the TURN REST API draft suggests).
pub const DEFAULT_TURN_TTL_SECS: u64 = 14_400;
/// Longest `TURN_TTL_SECS` accepted: one week.
pub const MAX_TURN_TTL_SECS: u64 = 7 * 86_400;

#[derive(Debug, Default, Deserialize)]
struct TurnVars {
    turn_secret: Option<String>,
    turn_urls: Option<String>,
    turn_ttl_secs: Option<u64>,
}

/// Every environment variable the TURN settings read.
pub fn variables() -> Vec<String> {
    crate::config::variables_of::<TurnVars>()
}

/// The TURN settings: `TURN_SECRET`, `TURN_URLS`, `TURN_TTL_SECS`.
#[derive(Clone)]
pub struct Turn {
    /// The secret that signs (the first of `TURN_SECRET`); the others are for the TURN server
    /// only, which accepts all of them while a secret is rotated.
    signing: String,
    urls: Vec<String>,
    ttl: Duration,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn").field("urls", &self.urls).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// One `RTCIceServer` entry with a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnServer {
    /// `TURN_URLS`.
    pub urls: Vec<String>,
    /// `<expiry unix time>:<id>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

impl Turn {
    /// Reads the TURN settings. Both `TURN_SECRET` and `TURN_URLS` set: `Some`; neither: `None`
    /// (the feature is off); one without the other is an error.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Option<Self>, Error> {
        let raw: TurnVars = parse_vars(vars)?;
        let ttl =
            in_range("TURN_TTL_SECS", raw.turn_ttl_secs.unwrap_or(DEFAULT_TURN_TTL_SECS), 60..=MAX_TURN_TTL_SECS)?;
        let (secrets, urls) = match (raw.turn_secret, raw.turn_urls) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(config_error("TURN_URLS", "is required when TURN_SECRET is set")),
            (None, Some(_)) => return Err(config_error("TURN_SECRET", "is required when TURN_URLS is set")),
            (Some(secrets), Some(urls)) => (secrets, urls),
        };
        let secrets = list(&secrets);
        if secrets.is_empty() {
            return Err(config_error("TURN_SECRET", "must list at least one secret"));
        }
        warn_if_weak("TURN_SECRET", secrets[0]);
        let urls: Vec<String> = list(&urls).into_iter().map(str::to_owned).collect();
        if urls.is_empty() {
            return Err(config_error("TURN_URLS", "must list at least one turn: or turns: URL"));
        }
        if let Some(bad) = urls.iter().find(|url| !(url.starts_with("turn:") || url.starts_with("turns:"))) {
            return Err(config_error("TURN_URLS", format!("`{bad}` must start with turn: or turns:")));
        }
        Ok(Some(Turn { signing: secrets[0].to_owned(), urls, ttl: Duration::from_secs(ttl) }))
    }

    /// Credentials for `id` (a clientId or peerId), valid until `now_unix + TURN_TTL_SECS`.
    pub fn issue(&self, id: &str, now_unix: u64) -> TurnServer {
        let username = format!("{}:{id}", now_unix.saturating_add(self.ttl.as_secs()));
        let credential = credential(&self.signing, &username);
        TurnServer { urls: self.urls.clone(), username, credential }
    }

    /// `ICE_SERVERS` (a JSON array) with credentials for `id` appended, issued now.
    pub fn ice_servers(&self, configured: &RawValue, id: &str) -> Box<RawValue> {
        append(configured, &self.issue(id, unix_now()))
    }
}

/// The TURN REST API credential of `username`: base64(HMAC-SHA1(secret, username)).
pub fn credential(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `list` (a JSON array, as `ICE_SERVERS` is checked to be) with `entry` as its last element.
fn append(list: &RawValue, entry: &TurnServer) -> Box<RawValue> {
    let entry = serde_json::to_string(entry).unwrap_or_else(|_| unreachable!("strings always serialise"));
    let head = list.get().trim().trim_end_matches(']').trim_end();
    let separator = if head.ends_with('[') { "" } else { "," };
    RawValue::from_string(format!("{head}{separator}{entry}]"))
        .unwrap_or_else(|_| unreachable!("a JSON array with one more element is JSON"))
}

fn list(text: &str) -> Vec<&str> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn turn(pairs: &[(&str, &str)]) -> Turn {
        Turn::from_vars(vars(pairs)).unwrap().unwrap()
    }

    #[test]
    fn the_credential_is_the_turn_rest_api_example() {
        assert_eq!(credential("north", "12334939:mbzrxpgjys"), "Iq7YXkRon8YXJfdN1Ke9EZOw1UE=");
    }

    #[test]
    fn credentials_expire_after_the_ttl_and_name_the_client() {
        let turn =
            turn(&[("TURN_SECRET", "north"), ("TURN_URLS", "turn:t.example.com:3478"), ("TURN_TTL_SECS", "600")]);
        let issued = turn.issue("mbzrxpgjys", 12_334_339);
        assert_eq!(issued.username, "12334939:mbzrxpgjys");
        assert_eq!(issued.credential, "Iq7YXkRon8YXJfdN1Ke9EZOw1UE=");
        assert_eq!(issued.urls, ["turn:t.example.com:3478"]);
        assert_eq!(turn.issue("a", 1_000).username, "1600:a");
        let default = turn_default();
        assert_eq!(default.issue("a", 0).username, format!("{DEFAULT_TURN_TTL_SECS}:a"));
    }

    fn turn_default() -> Turn {
        turn(&[("TURN_SECRET", "s"), ("TURN_URLS", "turn:x")])
    }

    #[test]
    fn the_first_secret_signs_while_secrets_rotate() {
        let rotating = turn(&[("TURN_SECRET", "new, old"), ("TURN_URLS", "turn:x")]);
        let issued = rotating.issue("c", 100);
        assert_eq!(issued.credential, credential("new", &issued.username));
        assert_ne!(issued.credential, credential("old", &issued.username));
    }

    #[test]
    fn credentials_follow_the_configured_ice_servers() {
        let turn = turn(&[("TURN_SECRET", "s"), ("TURN_URLS", "turn:a:3478?transport=udp,turns:b:5349")]);
        let entry = turn.issue("c", 5);
        for configured in ["[]", r#"[{"urls":"stun:s"}]"#] {
            let raw = RawValue::from_string(configured.to_owned()).unwrap();
            let list: serde_json::Value = serde_json::from_str(append(&raw, &entry).get()).unwrap();
            let list = list.as_array().unwrap();
            let last = list.last().unwrap();
            assert_eq!(last["urls"], serde_json::json!(["turn:a:3478?transport=udp", "turns:b:5349"]));
            assert_eq!(last["username"], entry.username.as_str());
            if configured != "[]" {
                assert_eq!(list[0]["urls"], "stun:s");
            }
        }
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let err = |pairs: &[(&str, &str)]| Turn::from_vars(vars(pairs)).unwrap_err().to_string();
        assert!(err(&[("TURN_SECRET", "s")]).contains("TURN_URLS"));
        assert!(err(&[("TURN_URLS", "turn:x")]).contains("TURN_SECRET"));
        assert!(err(&[("TURN_SECRET", " , "), ("TURN_URLS", "turn:x")]).contains("TURN_SECRET"));
        assert!(err(&[("TURN_SECRET", "s"), ("TURN_URLS", "stun:x")]).contains("TURN_URLS"));
        assert!(err(&[("TURN_SECRET", "s"), ("TURN_URLS", ",")]).contains("TURN_URLS"));
        assert!(
            err(&[("TURN_SECRET", "s"), ("TURN_URLS", "turn:x"), ("TURN_TTL_SECS", "10")]).contains("TURN_TTL_SECS")
        );
        assert!(err(&[("TURN_TTL_SECS", "soon")]).contains("TURN_TTL_SECS"));
        assert!(Turn::from_vars(vars(&[])).unwrap().is_none());
    }
}
