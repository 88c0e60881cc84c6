//! Limits that keep one hostile or broken client from hurting everyone else: message rate per
//! socket, `next` presses per minute, connections per client IP and per instance, and the bytes
//! a socket's send queue may hold. Also where a client's IP comes from (`TRUSTED_PROXIES`).
//!
//! The defaults are sized so that an honest client never meets them, as the contract (1.1) asks:
//! a page on a machine with many interfaces and a TURN server gathers dozens of ICE candidates at
//! once, a person presses Next at most every second or so, and a campus or a carrier-grade NAT
//! puts hundreds of users behind one address.
//!
//! Layout: here [`Limits`] (the settings, read from the environment) and their defaults;
//! `rates` ([`TokenBucket`] and [`Strikes`]: per-socket counting, pure); `address`
//! ([`TrustedProxies`]: the client IP); `gate` ([`ConnectionGate`]: the per-IP and per-instance
//! connection counts). Their public items are re-exported here.

mod address;
mod gate;
mod rates;

use std::time::{Duration, Instant};

use serde::Deserialize;

pub use address::{ip_key, TrustedProxies};
pub use gate::{ConnectionGate, ConnectionSlot, Refusal};
pub use rates::{MessageRate, Strikes, TokenBucket};

use crate::config::{config_error, in_range, parse_vars};
use crate::error::Error;

/// Default `MESSAGES_PER_SEC`: messages a socket may send per second, sustained.
pub const DEFAULT_MESSAGES_PER_SEC: u32 = 20;
/// Default `MESSAGE_BURST`: messages a socket may send at once before the rate applies: the
/// contract's minimum, room for a page that sends a couple of hundred ICE candidates back to back.
pub const DEFAULT_MESSAGE_BURST: u32 = 256;
/// Default `MAX_DROPPED_MESSAGES`: rate-limited messages tolerated within [`ABUSE_WINDOW`]; one
/// more closes the socket with 1008.
pub const DEFAULT_MAX_DROPPED_MESSAGES: u32 = 50;
/// The window in which dropped messages are counted towards closing the socket.
pub const ABUSE_WINDOW: Duration = Duration::from_secs(10);
/// Default `NEXT_PER_MINUTE`: `next` and `available` requests per minute per matchmaker socket,
/// sustained: one a second, about as fast as a person can look at a stranger and move on.
pub const DEFAULT_NEXT_PER_MINUTE: u32 = 60;
/// Default `NEXT_BURST`: `next`/`available` requests a matchmaker socket may send at once. Small,
/// because each press that ends a match sends its partner three messages (`partner-left`,
/// `queued`, `matched`): a large burst would flood the partner's send queue.
pub const DEFAULT_NEXT_BURST: u32 = 10;
/// Default `MAX_CONNECTIONS`: open sockets per service instance.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default `MAX_CONNECTIONS_PER_IP`: open sockets per client IP (an IPv6 client: per /64) and
/// service instance: the contract's minimum, because campuses and mobile carriers put hundreds of
/// users behind one address. A connection whose client cannot be told (a trusted proxy that
/// names nobody) counts against no address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// The `Retry-After` (seconds) of an upgrade refused by a connection limit.
pub const CONNECTION_RETRY_AFTER_SECS: u64 = 5;
/// Default `TRUSTED_PROXIES`: a proxy on the same machine (loopback) may name the client.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128";
/// Default `OUTBOX_MAX_BYTES`: bytes queued for one socket before it counts as too slow.
pub const DEFAULT_OUTBOX_MAX_BYTES: usize = 1024 * 1024;
/// Smallest `OUTBOX_MAX_BYTES`: room for a full hold (64 KiB) delivered at once on `join`, and then some.
pub const MIN_OUTBOX_MAX_BYTES: usize = 256 * 1024;

/// Every variable the limits read (each service reads all of them).
pub fn variables() -> Vec<String> {
    crate::config::variables_of::<LimitVars>()
}

/// The raw variables, as envy reads them.
#[derive(Debug, Default, Deserialize)]
struct LimitVars {
    messages_per_sec: Option<u32>,
    message_burst: Option<u32>,
    max_dropped_messages: Option<u32>,
    next_per_minute: Option<u32>,
    next_burst: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    trusted_proxies: Option<String>,
    outbox_max_bytes: Option<usize>,
}

/// The abuse limits of a service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `MESSAGES_PER_SEC`: the sustained message rate of one socket.
    pub messages_per_sec: u32,
    /// `MESSAGE_BURST`: messages one socket may send at once (the token bucket's size).
    pub message_burst: u32,
    /// `MAX_DROPPED_MESSAGES`: rate-limited messages tolerated within [`ABUSE_WINDOW`].
    pub max_dropped_messages: u32,
    /// `NEXT_PER_MINUTE`: `next`/`available` requests per minute on one matchmaker socket.
    pub next_per_minute: u32,
    /// `NEXT_BURST`: `next`/`available` requests one matchmaker socket may send at once.
    pub next_burst: u32,
    /// `MAX_CONNECTIONS`: open sockets on this instance; an upgrade beyond gets HTTP 503.
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_IP`: open sockets per client IP; an upgrade beyond gets HTTP 429.
    pub max_connections_per_ip: usize,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// `OUTBOX_MAX_BYTES`: bytes queued for one socket before it counts as too slow.
    pub outbox_max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            messages_per_sec: DEFAULT_MESSAGES_PER_SEC,
            message_burst: DEFAULT_MESSAGE_BURST,
            max_dropped_messages: DEFAULT_MAX_DROPPED_MESSAGES,
            next_per_minute: DEFAULT_NEXT_PER_MINUTE,
            next_burst: DEFAULT_NEXT_BURST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            trusted_proxies: TrustedProxies::loopback(),
            outbox_max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
        }
    }
}

impl Limits {
    /// Limits that no client reaches: for embedding a service where another layer protects it,
    /// and for tests that measure something else. Never the binaries' choice.
    pub fn unlimited() -> Self {
        Limits {
            messages_per_sec: u32::MAX,
            message_burst: u32::MAX,
            max_dropped_messages: u32::MAX,
            next_per_minute: u32::MAX,
            next_burst: u32::MAX,
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
            trusted_proxies: TrustedProxies::default(),
            outbox_max_bytes: usize::MAX,
        }
    }

    /// Reads and checks the limit variables from `vars` (name, value pairs); unset or empty
    /// variables take their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Error> {
        let raw: LimitVars = parse_vars(vars)?;
        let trusted_proxies = match raw.trusted_proxies.as_deref() {
            None => TrustedProxies::loopback(),
            Some(list) => TrustedProxies::parse(list).map_err(|msg| config_error("TRUSTED_PROXIES", msg))?,
        };
        Ok(Limits {
            messages_per_sec: in_range(
                "MESSAGES_PER_SEC",
                raw.messages_per_sec.unwrap_or(DEFAULT_MESSAGES_PER_SEC),
                1..=100_000,
            )?,
            message_burst: in_range(
                "MESSAGE_BURST",
                raw.message_burst.unwrap_or(DEFAULT_MESSAGE_BURST),
                1..=1_000_000,
            )?,
            max_dropped_messages: in_range(
                "MAX_DROPPED_MESSAGES",
                raw.max_dropped_messages.unwrap_or(DEFAULT_MAX_DROPPED_MESSAGES),
                0..=1_000_000,
            )?,
            next_per_minute: in_range(
                "NEXT_PER_MINUTE",
                raw.next_per_minute.unwrap_or(DEFAULT_NEXT_PER_MINUTE),
                1..=60_000,
            )?,
            next_burst: in_range("NEXT_BURST", raw.next_burst.unwrap_or(DEFAULT_NEXT_BURST), 1..=10_000)?,
            max_connections: in_range(
                "MAX_CONNECTIONS",
                raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
                1..=10_000_000,
            )?,
            max_connections_per_ip: in_range(
                "MAX_CONNECTIONS_PER_IP",
                raw.max_connections_per_ip.unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_IP),
                1..=10_000_000,
            )?,
            trusted_proxies,
            outbox_max_bytes: in_range(
                "OUTBOX_MAX_BYTES",
                raw.outbox_max_bytes.unwrap_or(DEFAULT_OUTBOX_MAX_BYTES),
                MIN_OUTBOX_MAX_BYTES..=1024 * 1024 * 1024,
            )?,
        })
    }

    /// The message rate of one socket, as the socket driver applies it.
    pub fn message_rate(&self) -> MessageRate {
        MessageRate {
            per_sec: self.messages_per_sec,
            burst: self.message_burst,
            max_dropped: self.max_dropped_messages,
        }
    }

    /// A fresh bucket for one matchmaker socket's `next` presses.
    pub fn next_bucket(&self, now: Instant) -> TokenBucket {
        TokenBucket::new(self.next_burst, f64::from(self.next_per_minute) / 60.0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ip(text: &str) -> std::net::IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_limit_variable_is_listed_and_each_listed_one_is_read() {
        let names = variables();
        assert_eq!(names.len(), 9, "{names:?}");
        for name in &names {
            // A bad value of a listed variable must be refused naming it: so it is read.
            let bad = if name == "TRUSTED_PROXIES" { "not-an-address" } else { "-1" };
            let err = Limits::from_vars(vars(&[(name, bad)])).unwrap_err().to_string();
            assert!(err.contains(name.as_str()), "{name}: {err}");
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let limits = Limits::from_vars(vars(&[("MESSAGE_BURST", " ")])).unwrap();
        assert_eq!(limits, Limits::default());
        assert_eq!((limits.message_burst, limits.max_connections_per_ip), (256, 256));
        assert!(limits.trusted_proxies.contains(ip("127.0.0.1")));
        assert!(limits.trusted_proxies.contains(ip("::1")));
        assert!(!limits.trusted_proxies.contains(ip("10.0.0.1")));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error = |pairs: &[(&str, &str)]| Limits::from_vars(vars(pairs)).unwrap_err().to_string();
        for (variable, value) in [
            ("MESSAGES_PER_SEC", "0"),
            ("MESSAGES_PER_SEC", "fast"),
            ("MESSAGE_BURST", "0"),
            ("MAX_DROPPED_MESSAGES", "-1"),
            ("NEXT_PER_MINUTE", "0"),
            ("NEXT_BURST", "0"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS_PER_IP", "0"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRUSTED_PROXIES", "proxy.example.com"),
            ("OUTBOX_MAX_BYTES", "1024"),
        ] {
            assert!(error(&[(variable, value)]).contains(variable), "{variable}={value}");
        }
    }

    #[test]
    fn trusted_proxies_none_trusts_nobody() {
        let limits = Limits::from_vars(vars(&[("TRUSTED_PROXIES", "none")])).unwrap();
        assert!(!limits.trusted_proxies.contains(ip("127.0.0.1")));
        assert_eq!(limits.trusted_proxies.to_string(), "none");
    }
}
