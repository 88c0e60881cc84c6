//! The matchmaker's settings: the common ones plus its own.

use serde::Deserialize;
use serde_json::value::RawValue;
use shared::config::{config_error, in_range, parse_vars, warn_if_weak, Common};
use shared::limits::Limits;
use shared::Error;

use crate::safety::SafetyConfig;

/// Default `PORT` of the matchmaker.
pub const DEFAULT_PORT: u16 = 8080;
/// Default `SIGNALING_URL`: the signaler's default port on whatever host name the browser used
/// to reach the matchmaker (`{host}` is replaced per connection).
pub const DEFAULT_SIGNALING_URL: &str = "ws://{host}:8081/ws";
/// Default `ICE_SERVERS`: none, which is enough on one machine or one LAN.
pub const DEFAULT_ICE_SERVERS: &str = "[]";
/// Default `REMATCH_COOLDOWN_SECS`: two clients whose match ended are not paired with each other
/// again for this long, even if nobody else waits.
pub const DEFAULT_REMATCH_COOLDOWN_SECS: u64 = 30;
/// Default `INTEREST_WAIT_SECS`: how long a client with interests waits for someone who shares
/// one before anyone will do, when its `available`/`next` does not say.
pub const DEFAULT_INTEREST_WAIT_SECS: u64 = 10;
/// Clock skew allowed on `exp`/`nbf` of client auth tokens, which come from another system.
pub const AUTH_LEEWAY_SECS: u64 = 30;

#[derive(Debug, Default, Deserialize)]
struct Vars {
    requeue_on_partner_leave: Option<bool>,
    rematch_cooldown_secs: Option<u64>,
    interest_wait_secs: Option<u64>,
    signaling_url: Option<String>,
    ice_servers: Option<String>,
    auth_jwt_secret: Option<String>,
}

/// Everything the matchmaker is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Settings both services share.
    pub common: Common,
    /// The abuse limits (message rate, `next` rate, connections per IP and instance): on at
    /// their production defaults unless the variables say otherwise. A caller that protects the
    /// service by other means, or a test that measures something else, sets
    /// [`Limits::unlimited`].
    pub limits: Limits,
    /// `REQUEUE_ON_PARTNER_LEAVE`: queue a client again when its partner leaves.
    pub requeue_on_partner_leave: bool,
    /// `REMATCH_COOLDOWN_SECS`: how long two former partners are not paired again (0: no wait).
    pub rematch_cooldown: std::time::Duration,
    /// `INTEREST_WAIT_SECS`: the interest wait of a client that does not say.
    pub interest_wait: std::time::Duration,
    /// `SIGNALING_URL`: where matched clients open the signaler; `{host}` is replaced by the
    /// host name the client used to reach the matchmaker.
    pub signaling_url: String,
    /// `ICE_SERVERS`: a JSON array of `RTCIceServer` objects, passed to clients as is.
    pub ice_servers: Box<RawValue>,
    /// `AUTH_JWT_SECRET`: when set, `auth` with an HS256 JWT is required before `available`.
    pub auth_jwt_secret: Option<String>,
    /// Blocks, reports, bans and the operator's token.
    pub safety: SafetyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            common: Common::default(),
            limits: Limits::default(),
            requeue_on_partner_leave: true,
            rematch_cooldown: std::time::Duration::from_secs(DEFAULT_REMATCH_COOLDOWN_SECS),
            interest_wait: std::time::Duration::from_secs(DEFAULT_INTEREST_WAIT_SECS),
            signaling_url: DEFAULT_SIGNALING_URL.to_owned(),
            ice_servers: parse_ice_servers(DEFAULT_ICE_SERVERS)
                .unwrap_or_else(|_| unreachable!("the default is valid")),
            auth_jwt_secret: None,
            safety: SafetyConfig::default(),
        }
    }
}

/// Every environment variable the matchmaker reads.
pub fn variables() -> Vec<String> {
    let mut names = shared::config::common_variables();
    names.extend(shared::limits::variables());
    names.extend(shared::config::variables_of::<Vars>());
    names.extend(shared::config::variables_of::<crate::safety::Vars>());
    names
}

impl Config {
    /// Reads the matchmaker's settings, its limits included, from (name, value) pairs.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, Error> {
        let common = Common::from_vars(vars.clone())?;
        let limits = Limits::from_vars(vars.clone())?;
        let safety = SafetyConfig::from_vars(vars.clone())?;
        let raw: Vars = parse_vars(vars)?;
        let signaling_url = raw.signaling_url.unwrap_or_else(|| DEFAULT_SIGNALING_URL.to_owned());
        if !(signaling_url.starts_with("ws://") || signaling_url.starts_with("wss://")) {
            return Err(config_error("SIGNALING_URL", format!("`{signaling_url}` must start with ws:// or wss://")));
        }
        let ice_servers = parse_ice_servers(raw.ice_servers.as_deref().unwrap_or(DEFAULT_ICE_SERVERS))
            .map_err(|msg| config_error("ICE_SERVERS", msg))?;
        if let Some(secret) = &raw.auth_jwt_secret {
            warn_if_weak("AUTH_JWT_SECRET", secret);
        }
        let cooldown = raw.rematch_cooldown_secs.unwrap_or(DEFAULT_REMATCH_COOLDOWN_SECS);
        let rematch_cooldown = std::time::Duration::from_secs(in_range("REMATCH_COOLDOWN_SECS", cooldown, 0..=86_400)?);
        let wait = raw.interest_wait_secs.unwrap_or(DEFAULT_INTEREST_WAIT_SECS);
        let max_wait = shared::protocol::matchmaker::MAX_INTEREST_WAIT_SECS;
        let interest_wait = std::time::Duration::from_secs(in_range("INTEREST_WAIT_SECS", wait, 0..=max_wait)?);
        Ok(Config {
            common,
            limits,
            interest_wait,
            requeue_on_partner_leave: raw.requeue_on_partner_leave.unwrap_or(true),
            rematch_cooldown,
            signaling_url,
            ice_servers,
            auth_jwt_secret: raw.auth_jwt_secret,
            safety,
        })
    }

    /// The optional features of the contract this deployment has switched on, as `ready` and
    /// `/api/config` list them.
    pub fn features(&self) -> Vec<&'static str> {
        let mut features = Vec::new();
        if !self.common.resume_grace.is_zero() {
            features.push("resume");
        }
        features.extend(["interests", "block", "report"]);
        if self.common.turn.is_some() {
            features.push("turn");
        }
        features.push("poll");
        features
    }

    /// `GET /api/config` for a page reached at `host`.
    pub fn api_config(&self, host: Option<&str>) -> shared::protocol::matchmaker::ApiConfig {
        let (common, limits) = (&self.common, &self.limits);
        shared::protocol::matchmaker::ApiConfig {
            protocol: shared::protocol::matchmaker::PROTOCOL_VERSION,
            features: self.features(),
            signaling_url: self.signaling_url_for(host),
            limits: shared::protocol::matchmaker::ClientLimits {
                max_message_bytes: common.max_message_bytes,
                messages_per_sec: limits.messages_per_sec,
                message_burst: limits.message_burst,
                next_per_minute: limits.next_per_minute,
                next_burst: limits.next_burst,
                max_connections_per_ip: limits.max_connections_per_ip,
                resume_grace_secs: common.resume_grace.as_secs(),
                ping_interval_secs: common.ping_interval.as_secs(),
                ticket_ttl_secs: common.ticket_ttl.as_secs(),
            },
        }
    }

    /// The port to listen on.
    pub fn port(&self) -> u16 {
        self.common.port.unwrap_or(DEFAULT_PORT)
    }

    /// The signaling URL for a client that reached us as `host` (a `Host` header value).
    pub fn signaling_url_for(&self, host: Option<&str>) -> String {
        render_signaling_url(&self.signaling_url, host)
    }
}

/// A `SIGNALING_URL` template for a client that reached the matchmaker as `host` (a `Host`
/// header value): `{host}` becomes its host name.
pub fn render_signaling_url(template: &str, host: Option<&str>) -> String {
    if !template.contains("{host}") {
        return template.to_owned();
    }
    template.replace("{host}", host.map(host_name).unwrap_or("localhost"))
}

/// The host part of a `Host` header (`example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Checks that `ICE_SERVERS` is an array of `RTCIceServer`s: objects with `urls` (a string or an
/// array of strings) and optional string `username` and `credential`.
fn parse_ice_servers(text: &str) -> Result<Box<RawValue>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| format!("not valid JSON: {err}"))?;
    let servers = value.as_array().ok_or("must be a JSON array of RTCIceServer objects")?;
    for (i, server) in servers.iter().enumerate() {
        let object = server.as_object().ok_or(format!("entry {i} must be an object"))?;
        let urls_ok = match object.get("urls") {
            Some(serde_json::Value::String(url)) => is_ice_url(url),
            Some(serde_json::Value::Array(urls)) => {
                !urls.is_empty() && urls.iter().all(|u| u.as_str().is_some_and(is_ice_url))
            }
            _ => false,
        };
        if !urls_ok {
            return Err(format!("entry {i} needs `urls`: a stun:, turn: or turns: URL or a list of them"));
        }
        for key in ["username", "credential"] {
            if object.get(key).is_some_and(|v| !v.is_string()) {
                return Err(format!("entry {i}: `{key}` must be a string"));
            }
        }
    }
    RawValue::from_string(value.to_string()).map_err(|err| err.to_string())
}

fn is_ice_url(url: &str) -> bool {
    ["stun:", "stuns:", "turn:", "turns:"].iter().any(|scheme| url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(config.port(), 8080);
        assert!(config.requeue_on_partner_leave);
        assert_eq!(config.ice_servers.get(), "[]");
        assert_eq!(config.signaling_url_for(Some("127.0.0.1:8080")), "ws://127.0.0.1:8081/ws");
        assert_eq!(config.signaling_url_for(Some("[::1]:8080")), "ws://[::1]:8081/ws");
        assert_eq!(config.signaling_url_for(None), "ws://localhost:8081/ws");
    }

    #[test]
    fn ice_servers_are_checked() {
        let ok = r#"[{"urls":"stun:stun.example.com:3478"},{"urls":["turn:t.example.com"],"username":"u","credential":"c"}]"#;
        assert!(Config::from_vars(vars(&[("ICE_SERVERS", ok)])).is_ok());
        for bad in [
            "{}",
            "[1]",
            r#"[{"url":"stun:x"}]"#,
            r#"[{"urls":"http://x"}]"#,
            r#"[{"urls":"stun:x","username":1}]"#,
            "[",
            r#"[{"urls":[]}]"#,
        ] {
            let err = Config::from_vars(vars(&[("ICE_SERVERS", bad)])).unwrap_err().to_string();
            assert!(err.contains("ICE_SERVERS"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = |pairs| Config::from_vars(vars(pairs)).unwrap_err().to_string();
        assert!(err(&[("REQUEUE_ON_PARTNER_LEAVE", "maybe")]).contains("REQUEUE_ON_PARTNER_LEAVE"));
        assert!(err(&[("REMATCH_COOLDOWN_SECS", "soon")]).contains("REMATCH_COOLDOWN_SECS"));
        assert!(err(&[("REMATCH_COOLDOWN_SECS", "86401")]).contains("REMATCH_COOLDOWN_SECS"));
        assert!(err(&[("SIGNALING_URL", "http://x")]).contains("SIGNALING_URL"));
        assert!(err(&[("NEXT_BURST", "0")]).contains("NEXT_BURST"));
    }

    #[test]
    fn limits_are_read_with_the_rest() {
        assert_eq!(Config::from_vars(vars(&[])).unwrap().limits, Limits::default());
        assert_eq!(Config::default().limits, Limits::default());
        let config = Config::from_vars(vars(&[("MAX_CONNECTIONS_PER_IP", "3")])).unwrap();
        assert_eq!(config.limits.max_connections_per_ip, 3);
    }
}
