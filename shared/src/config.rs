//! Settings both services read from the environment, checked once at start-up.
//!
//! Every limit and default lives here as a named constant; the README's configuration table
//! lists them. A bad value stops start-up with a message that names the variable.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::Error;
use crate::origin::AllowedOrigins;
use crate::turn::Turn;

/// Default `HOST`: every interface, as a container expects.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Default `TICKET_TTL_SECS`.
pub const DEFAULT_TICKET_TTL_SECS: u64 = 60;
/// Default `MAX_MESSAGE_BYTES`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_536;
/// Default `SHUTDOWN_GRACE_SECS`.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
/// Default `PING_INTERVAL_SECS`: WebSocket pings; a socket silent for two intervals is dropped.
pub const DEFAULT_PING_INTERVAL_SECS: u64 = 30;
/// Default `OUTBOX_CAPACITY`: messages queued for one socket before it counts as too slow. Well
/// above a partner's full burst (`MESSAGE_BURST`), relayed at once to a client on a slow link; an
/// empty queue holds no buffer, so this is a bound, not a cost.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1024;
/// Default `REDIS_KEY_PREFIX`: what every key this service writes in Redis starts with.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "strangers";
/// Default `RESUME_GRACE_SECS`: how long a client whose socket dropped keeps its place, its
/// match or its seat, waiting for it to resume on a new socket.
pub const DEFAULT_RESUME_GRACE_SECS: u64 = 20;
/// Default `POLL_HOLD_SECS`: how long a long poll (long-polling transport or matchbox's HTTP
/// rooms) is held when nothing waits for it, below the usual 30-60 s idle timeouts of proxies; a
/// poller silent for twice as long has left.
pub const DEFAULT_POLL_HOLD_SECS: u64 = 25;
/// Shortest secret that does not draw a start-up warning: 32 bytes, HMAC-SHA256's key strength.
pub const MIN_SECRET_BYTES: usize = 32;

/// The raw variables, as envy reads them.
#[derive(Debug, Default, Deserialize)]
struct CommonVars {
    host: Option<String>,
    port: Option<u16>,
    allowed_origin: Option<String>,
    room_ticket_secret: Option<String>,
    ticket_ttl_secs: Option<u64>,
    max_message_bytes: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    ping_interval_secs: Option<u64>,
    outbox_capacity: Option<usize>,
    redis_url: Option<String>,
    redis_cluster: Option<bool>,
    redis_key_prefix: Option<String>,
    resume_grace_secs: Option<u64>,
    poll_hold_secs: Option<u64>,
}

/// Settings every service has.
#[derive(Debug, Clone)]
pub struct Common {
    /// `HOST`: the address to listen on.
    pub host: IpAddr,
    /// `PORT`: `None` means the service's own default.
    pub port: Option<u16>,
    /// `ALLOWED_ORIGIN`: origins allowed to open sockets; empty allows any.
    pub allowed_origins: AllowedOrigins,
    /// `ROOM_TICKET_SECRET`: the HMAC key for room tickets. A service run alone requires it.
    pub ticket_secret: Option<String>,
    /// `TICKET_TTL_SECS`: how long a ticket admits its holder to the room.
    pub ticket_ttl: Duration,
    /// `MAX_MESSAGE_BYTES`: the largest frame accepted; larger ones close the socket with 1009.
    pub max_message_bytes: usize,
    /// `SHUTDOWN_GRACE_SECS`: how long shutdown may take before the process exits anyway.
    pub shutdown_grace: Duration,
    /// `PING_INTERVAL_SECS`: keepalive interval.
    pub ping_interval: Duration,
    /// `OUTBOX_CAPACITY`: per-socket send queue, in messages.
    pub outbox_capacity: usize,
    /// `REDIS_URL`: when set, queue and rooms live in this Redis, shared by every instance
    /// (with `REDIS_CLUSTER`, a comma-separated list of cluster nodes).
    pub redis_url: Option<String>,
    /// `REDIS_CLUSTER`: `REDIS_URL` names nodes of a Redis Cluster.
    pub redis_cluster: bool,
    /// `REDIS_KEY_PREFIX`: what every key starts with, so deployments can share a Redis.
    pub redis_key_prefix: String,
    /// `RESUME_GRACE_SECS`: how long a dropped client may come back; zero turns resume off.
    pub resume_grace: Duration,
    /// `TURN_SECRET`, `TURN_URLS`, `TURN_TTL_SECS`: TURN credentials for clients (feature
    /// `turn`); `None` when not configured.
    pub turn: Option<Turn>,
    /// `POLL_HOLD_SECS`: how long a long poll is held when nothing waits; a poller that has not
    /// polled for twice as long has left.
    pub poll_hold: Duration,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            host: IpAddr::from([0, 0, 0, 0]),
            port: None,
            allowed_origins: AllowedOrigins::default(),
            ticket_secret: None,
            ticket_ttl: Duration::from_secs(DEFAULT_TICKET_TTL_SECS),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            ping_interval: Duration::from_secs(DEFAULT_PING_INTERVAL_SECS),
            outbox_capacity: DEFAULT_OUTBOX_CAPACITY,
            redis_url: None,
            redis_cluster: false,
            redis_key_prefix: DEFAULT_REDIS_KEY_PREFIX.to_owned(),
            resume_grace: Duration::from_secs(DEFAULT_RESUME_GRACE_SECS),
            turn: None,
            poll_hold: Duration::from_secs(DEFAULT_POLL_HOLD_SECS),
        }
    }
}

impl Common {
    /// Reads and checks the common variables from `vars` (name, value pairs).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Error> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let turn = Turn::from_vars(vars.clone())?;
        let raw: CommonVars = parse_vars(vars)?;
        let host_text = raw.host.unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let host =
            host_text.parse().map_err(|_| config_error("HOST", format!("`{host_text}` is not an IP address")))?;
        let allowed_origins = AllowedOrigins::parse(raw.allowed_origin.as_deref().unwrap_or(""))
            .map_err(|msg| config_error("ALLOWED_ORIGIN", msg))?;
        if let Some(secret) = &raw.room_ticket_secret {
            warn_if_weak("ROOM_TICKET_SECRET", secret);
        }
        let redis_cluster = raw.redis_cluster.unwrap_or(false);
        if let Some(url) = &raw.redis_url {
            crate::redis::link::check_url(url, redis_cluster)?;
        }
        let redis_key_prefix = raw.redis_key_prefix.unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned());
        if redis_key_prefix.len() > 64
            || !redis_key_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(config_error(
                "REDIS_KEY_PREFIX",
                format!("`{redis_key_prefix}` must be up to 64 letters, digits, `-`, `_`, `.` or `:`"),
            ));
        }
        Ok(Common {
            host,
            port: raw.port,
            allowed_origins,
            ticket_secret: raw.room_ticket_secret,
            ticket_ttl: secs("TICKET_TTL_SECS", raw.ticket_ttl_secs, DEFAULT_TICKET_TTL_SECS, 1..=86_400)?,
            max_message_bytes: in_range(
                "MAX_MESSAGE_BYTES",
                raw.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
                1_024..=16 * 1024 * 1024,
            )?,
            shutdown_grace: secs(
                "SHUTDOWN_GRACE_SECS",
                raw.shutdown_grace_secs,
                DEFAULT_SHUTDOWN_GRACE_SECS,
                0..=3_600,
            )?,
            ping_interval: secs("PING_INTERVAL_SECS", raw.ping_interval_secs, DEFAULT_PING_INTERVAL_SECS, 1..=3_600)?,
            outbox_capacity: in_range(
                "OUTBOX_CAPACITY",
                raw.outbox_capacity.unwrap_or(DEFAULT_OUTBOX_CAPACITY),
                // Room for the held messages a joining peer receives at once, and then some.
                80..=65_536,
            )?,
            redis_url: raw.redis_url,
            redis_cluster,
            redis_key_prefix,
            resume_grace: secs("RESUME_GRACE_SECS", raw.resume_grace_secs, DEFAULT_RESUME_GRACE_SECS, 0..=3_600)?,
            turn,
            poll_hold: secs("POLL_HOLD_SECS", raw.poll_hold_secs, DEFAULT_POLL_HOLD_SECS, 1..=120)?,
        })
    }

    /// The ticket secret, or the error a service run alone gives without one.
    ///
    /// # Errors
    /// [`Error::Config`] naming `ROOM_TICKET_SECRET`.
    pub fn require_ticket_secret(&self) -> Result<&str, Error> {
        self.ticket_secret.as_deref().ok_or_else(|| {
            config_error(
                "ROOM_TICKET_SECRET",
                format!(
                    "is required: set the same random secret of at least {MIN_SECRET_BYTES} bytes on the matchmaker and the signaler"
                ),
            )
        })
    }
}

/// The environment variables a settings struct reads: its field names, upper-cased, as serde
/// (and so envy) sees them. Lets tests and docs check the list against the code.
pub fn variables_of<T: DeserializeOwned>() -> Vec<String> {
    use serde::de::{self, Visitor};
    struct Probe(&'static [&'static str]);
    impl<'de> de::Deserializer<'de> for &mut Probe {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only structs are probed"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0.iter().map(|field| field.to_ascii_uppercase()).collect()
}

/// Every variable the common settings read, plus `RUST_LOG` (read by the log filter).
pub fn common_variables() -> Vec<String> {
    let mut names = variables_of::<CommonVars>();
    names.extend(crate::turn::variables());
    names.push("RUST_LOG".to_owned());
    names
}

/// Deserialises variables with envy, turning its errors into one that names the variable.
///
/// # Errors
/// [`Error::Config`] with envy's explanation (which names the variable).
pub fn parse_vars<T: DeserializeOwned>(vars: impl IntoIterator<Item = (String, String)>) -> Result<T, Error> {
    // An empty value means "use the default", as it does in most deployment tools.
    let vars = vars.into_iter().filter(|(_, value)| !value.trim().is_empty());
    envy::from_iter(vars).map_err(|err| Error::Config(err.to_string()))
}

/// An error about one variable.
pub fn config_error(variable: &str, message: impl std::fmt::Display) -> Error {
    Error::Config(format!("{variable}: {message}"))
}

/// Checks that a value lies in its allowed range.
///
/// # Errors
/// [`Error::Config`] naming the variable and the range.
pub fn in_range<T: PartialOrd + std::fmt::Display>(
    variable: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<T, Error> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(config_error(variable, format!("{value} is out of range ({}..={})", range.start(), range.end())))
    }
}

fn secs(variable: &str, value: Option<u64>, default: u64, range: RangeInclusive<u64>) -> Result<Duration, Error> {
    in_range(variable, value.unwrap_or(default), range).map(Duration::from_secs)
}

/// Logs a warning for an HMAC secret too short to be strong. (Blank values never get here:
/// they count as unset.)
pub fn warn_if_weak(variable: &str, secret: &str) {
    if secret.len() < MIN_SECRET_BYTES {
        tracing::warn!(
            variable,
            bytes = secret.len(),
            "secret is shorter than {MIN_SECRET_BYTES} bytes; use a long random value in production"
        );
    }
}

/// The process environment as (name, value) pairs, skipping values that are not UTF-8.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        Common::from_vars(vars(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let common = Common::from_vars(vars(&[])).unwrap();
        assert_eq!(common.ticket_ttl, Duration::from_secs(60));
        assert_eq!(common.max_message_bytes, 65_536);
        assert_eq!(common.shutdown_grace, Duration::from_secs(10));
        assert!(common.allowed_origins.allows_any());
        assert!(common.require_ticket_secret().is_err());
    }

    #[test]
    fn empty_values_mean_default() {
        let common = Common::from_vars(vars(&[("PORT", ""), ("TICKET_TTL_SECS", " ")])).unwrap();
        assert_eq!(common.port, None);
        assert_eq!(common.ticket_ttl, Duration::from_secs(60));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert!(error(&[("PORT", "eighty")]).contains("PORT"));
        assert!(error(&[("PORT", "70000")]).contains("PORT"));
        assert!(error(&[("MAX_MESSAGE_BYTES", "12")]).contains("MAX_MESSAGE_BYTES"));
        assert!(error(&[("TICKET_TTL_SECS", "0")]).contains("TICKET_TTL_SECS"));
        assert!(error(&[("SHUTDOWN_GRACE_SECS", "-1")]).contains("SHUTDOWN_GRACE_SECS"));
        assert!(error(&[("ALLOWED_ORIGIN", "example.com")]).contains("ALLOWED_ORIGIN"));
        assert!(error(&[("HOST", "everywhere")]).contains("HOST"));
        assert!(error(&[("REDIS_URL", "postgres://127.0.0.1")]).contains("REDIS_URL"));
        assert!(error(&[("REDIS_KEY_PREFIX", "a{b}")]).contains("REDIS_KEY_PREFIX"));
        assert!(error(&[("REDIS_CLUSTER", "maybe")]).contains("REDIS_CLUSTER"));
        assert!(error(&[("RESUME_GRACE_SECS", "3601")]).contains("RESUME_GRACE_SECS"));
    }

    #[test]
    fn the_variable_list_comes_from_the_settings_struct() {
        let names = common_variables();
        for name in ["PORT", "HOST", "ROOM_TICKET_SECRET", "REDIS_URL", "MAX_MESSAGE_BYTES", "RUST_LOG"] {
            assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn a_missing_secret_is_named() {
        let common = Common::from_vars(vars(&[])).unwrap();
        assert!(common.require_ticket_secret().unwrap_err().to_string().contains("ROOM_TICKET_SECRET"));
    }
}
