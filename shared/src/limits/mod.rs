//! Limits that keep one hostile or broken client from hurting everyone else: message rate per
//! socket, `next` presses per minute, connections per client IP and per instance, and the bytes
//! a socket's send queue may hold. Also where a client's IP comes from (`TRUSTED_PROXIES`).
//!
//! The defaults are sized so that an honest browser never meets them: a WebRTC negotiation is an
//! offer or answer and 10-40 ICE candidates in a burst, a person presses Next at most every second
//! or so, and a household or office behind one NAT address holds a handful of sockets.
//!
//! Layout: [`Limits`] (the settings, read from the environment), [`TokenBucket`] and [`Strikes`]
//! (per-socket counting, pure), [`TrustedProxies`] (the client IP), [`ConnectionGate`] (the
//! per-IP and per-instance connection counts).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;

use crate::config::{config_error, in_range, parse_vars};
use crate::error::Error;
use crate::metrics::Metrics;

/// Default `MESSAGES_PER_SEC`: messages a socket may send per second, sustained.
pub const DEFAULT_MESSAGES_PER_SEC: u32 = 20;
/// Default `MESSAGE_BURST`: messages a socket may send at once before the rate applies; more than
/// two full WebRTC negotiations (offer, answer, 40 candidates each).
pub const DEFAULT_MESSAGE_BURST: u32 = 100;
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
/// service instance. Generous, because whole offices and mobile carriers share one address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Default `TRUSTED_PROXIES`: a proxy on the same machine (loopback) may name the client.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128";
/// Default `OUTBOX_MAX_BYTES`: bytes queued for one socket before it counts as too slow.
pub const DEFAULT_OUTBOX_MAX_BYTES: usize = 1024 * 1024;
/// Smallest `OUTBOX_MAX_BYTES`: room for a full hold (64 KiB) delivered at once on `join`, and then some.
pub const MIN_OUTBOX_MAX_BYTES: usize = 256 * 1024;

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

/// How many messages one socket may send: a token bucket, and how many drops end the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRate {
    /// Tokens added per second.
    pub per_sec: u32,
    /// The bucket's size.
    pub burst: u32,
    /// Drops tolerated within [`ABUSE_WINDOW`].
    pub max_dropped: u32,
}

impl MessageRate {
    /// The bucket and strike counter of a new socket.
    pub fn start(&self, now: Instant) -> (TokenBucket, Strikes) {
        (TokenBucket::new(self.burst, f64::from(self.per_sec), now), Strikes::new(self.max_dropped))
    }
}

/// A token bucket: holds up to `capacity` tokens, gains `per_sec` a second, and each admitted
/// event takes one. Time is passed in, so the rules are tested without a clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, per_sec: f64, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        TokenBucket { capacity, per_sec: per_sec.max(0.0), tokens: capacity, last: now }
    }

    /// Takes a token if there is one; returns whether the event is admitted.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts dropped messages in a fixed window that opens at the first drop; tells when a
/// socket has had more than it may.
#[derive(Debug, Clone)]
pub struct Strikes {
    max: u32,
    window_start: Option<Instant>,
    count: u32,
}

impl Strikes {
    /// No strikes yet; `max` drops per [`ABUSE_WINDOW`] are tolerated.
    pub fn new(max: u32) -> Self {
        Strikes { max, window_start: None, count: 0 }
    }

    /// Records one dropped message; returns whether the socket is now over the limit.
    pub fn strike(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < ABUSE_WINDOW => {
                self.count = self.count.saturating_add(1);
            }
            _ => {
                self.window_start = Some(now);
                self.count = 1;
            }
        }
        self.count > self.max
    }
}

/// A network, as `TRUSTED_PROXIES` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let net = canonical(addr.trim().parse().ok()?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse().ok().filter(|p| *p <= max)?,
        };
        Some(Cidr { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` header is believed. Empty: the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Loopback only: a proxy on the same machine.
    pub fn loopback() -> Self {
        TrustedProxies::parse(DEFAULT_TRUSTED_PROXIES).unwrap_or_default()
    }

    /// Parses a comma-separated list of addresses and CIDRs (`10.0.0.0/8, 2001:db8::/32`), or
    /// `none` to trust no proxy.
    ///
    /// # Errors
    /// A message naming the entry that is not an address or a CIDR.
    pub fn parse(list: &str) -> Result<Self, String> {
        if list.trim().eq_ignore_ascii_case("none") {
            return Ok(TrustedProxies::default());
        }
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let cidr = Cidr::parse(entry).ok_or_else(|| {
                format!("`{entry}` is not an IP address or CIDR (e.g. 10.0.0.0/8, ::1/128), nor `none`")
            })?;
            networks.push(cidr);
        }
        Ok(TrustedProxies(networks))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client behind a connection from `peer` that carries these `X-Forwarded-For` header
    /// values (in the order received). Only a trusted peer's header is read, from the right: each
    /// trusted proxy appended the address it saw, so the first address from the right that is
    /// not a trusted proxy is the client. Entries left of it were written by the client and
    /// are never believed.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let values: Vec<&str> = forwarded_for.into_iter().collect();
        for hop in values.iter().rev().flat_map(|value| value.rsplit(',')) {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let bracketed = hop.strip_prefix('[').and_then(|rest| rest.split_once(']')).map(|(ip, _)| ip)?;
    bracketed.parse().ok().map(canonical)
}

/// An IPv4 address written as IPv6 (`::ffff:1.2.3.4`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// What the per-IP count is keyed by: the address, or for IPv6 its /64, since one client
/// commonly holds a whole /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `MAX_CONNECTIONS` sockets are open (HTTP 503).
    InstanceFull,
    /// `MAX_CONNECTIONS_PER_IP` sockets from this client are open (HTTP 429).
    IpFull,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::InstanceFull => "instance-full",
            Refusal::IpFull => "ip-full",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct GateInner {
    max_total: usize,
    max_per_ip: usize,
    trusted_proxies: TrustedProxies,
    counts: Mutex<Counts>,
    refused: Family<ReasonLabel, Counter>,
}

/// Counts the open sockets of an instance, in total and per client IP, and refuses new ones
/// beyond the limits. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectionGate(Arc<GateInner>);

impl ConnectionGate {
    /// A gate with these limits and nothing open.
    pub fn new(limits: &Limits) -> Self {
        let refused = Family::default();
        for reason in [Refusal::InstanceFull, Refusal::IpFull] {
            drop(refused.get_or_create(&ReasonLabel { reason: reason.label() }));
        }
        ConnectionGate(Arc::new(GateInner {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            trusted_proxies: limits.trusted_proxies.clone(),
            counts: Mutex::new(Counts::default()),
            refused,
        }))
    }

    /// Adds the `connections_refused` counter (by reason) to a service's metrics.
    pub fn register(&self, metrics: &mut Metrics) {
        metrics.register(
            "connections_refused",
            "WebSocket upgrades refused by a limit, by reason",
            self.0.refused.clone(),
        );
    }

    /// The client IP of a connection from `peer` with these `X-Forwarded-For` values.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        self.0.trusted_proxies.client_ip(peer, forwarded_for)
    }

    /// Whether the TCP peer is a trusted proxy (whose `X-Forwarded-*` headers are believed).
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.trusted_proxies.contains(peer)
    }

    /// Takes a place for a socket from `client`; the place is given back when the returned slot
    /// is dropped.
    ///
    /// # Errors
    /// Which limit refused it.
    pub fn admit(&self, client: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let key = ip_key(client);
        let mut counts = self.0.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let refusal = if counts.total >= self.0.max_total {
            Some(Refusal::InstanceFull)
        } else if counts.per_ip.get(&key).copied().unwrap_or(0) >= self.0.max_per_ip {
            Some(Refusal::IpFull)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(counts);
            self.0.refused.get_or_create(&ReasonLabel { reason: refusal.label() }).inc();
            return Err(refusal);
        }
        counts.total += 1;
        *counts.per_ip.entry(key).or_insert(0) += 1;
        Ok(ConnectionSlot { gate: self.0.clone(), key })
    }

    /// Open sockets: in total, and from this client.
    pub fn open(&self, client: IpAddr) -> (usize, usize) {
        let counts = self.0.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (counts.total, counts.per_ip.get(&ip_key(client)).copied().unwrap_or(0))
    }

    /// How many client IPs have a socket open (the size of the per-IP table).
    pub fn clients(&self) -> usize {
        self.0.counts.lock().unwrap_or_else(PoisonError::into_inner).per_ip.len()
    }
}

/// One socket's place in a [`ConnectionGate`]; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    gate: Arc<GateInner>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(max_total: usize, max_per_ip: usize) -> Limits {
        Limits { max_connections: max_total, max_connections_per_ip: max_per_ip, ..Limits::default() }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let limits = Limits::from_vars(vars(&[("MESSAGE_BURST", " ")])).unwrap();
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.message_burst, 100);
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

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 2.0, start);
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        // Half a second later one token (2 per second) is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
        // A long pause refills to the burst, never beyond.
        let much_later = later + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take(much_later)));
        assert!(!bucket.take(much_later));
    }

    #[test]
    fn a_bucket_ignores_time_going_backwards() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 1.0, start);
        assert!(bucket.take(start));
        assert!(!bucket.take(start - Duration::from_secs(5)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        assert!(bucket.take(start + Duration::from_secs(1)));
    }

    #[test]
    fn strikes_close_only_above_the_maximum_within_the_window() {
        let start = Instant::now();
        let mut strikes = Strikes::new(2);
        assert!(!strikes.strike(start));
        assert!(!strikes.strike(start));
        assert!(strikes.strike(start + Duration::from_secs(9)));
        let mut strikes = Strikes::new(2);
        assert!(!strikes.strike(start));
        assert!(!strikes.strike(start));
        // A new window starts after ABUSE_WINDOW.
        assert!(!strikes.strike(start + ABUSE_WINDOW));
        assert!(!strikes.strike(start + ABUSE_WINDOW));
        assert!(strikes.strike(start + ABUSE_WINDOW));
        assert!(Strikes::new(0).strike(start));
    }

    #[test]
    fn forwarded_for_is_read_only_from_a_trusted_peer() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(proxies.client_ip(ip("192.0.2.7"), ["198.51.100.1"]), ip("192.0.2.7"));
        assert_eq!(proxies.client_ip(ip("10.1.2.3"), ["198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(proxies.client_ip(ip("10.1.2.3"), []), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_skipping_trusted_hops() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 2001:db8::/32").unwrap();
        // The client wrote the leftmost entry itself: it is never believed.
        let spoofed = ["1.1.1.1, 198.51.100.9, 10.0.0.2", "10.0.0.3"];
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), spoofed), ip("198.51.100.9"));
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["[2001:db9::1]:443"]), ip("2001:db9::1"));
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["203.0.113.5:1234"]), ip("203.0.113.5"));
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["::ffff:203.0.113.5"]), ip("203.0.113.5"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["198.51.100.9, garbage"]), ip("10.0.0.4"));
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["198.51.100.9, garbage, 10.0.0.8"]), ip("10.0.0.8"));
        // Only proxies all the way: the leftmost proxy is as far as we can see.
        assert_eq!(proxies.client_ip(ip("10.0.0.4"), ["10.0.0.9"]), ip("10.0.0.9"));
    }

    #[test]
    fn cidrs_match_their_prefix_only() {
        let proxies = TrustedProxies::parse("192.168.1.0/24, 2001:db8::/126, 0.0.0.0/0").unwrap();
        assert!(proxies.contains(ip("8.8.8.8")));
        let proxies = TrustedProxies::parse("192.168.1.0/24, 2001:db8::/126").unwrap();
        assert!(proxies.contains(ip("192.168.1.255")));
        assert!(!proxies.contains(ip("192.168.2.1")));
        assert!(proxies.contains(ip("2001:db8::3")));
        assert!(!proxies.contains(ip("2001:db8::4")));
        assert!(proxies.contains(ip("::ffff:192.168.1.1")));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("203.0.113.9")), ip("203.0.113.9"));
        let gate = ConnectionGate::new(&limits(10, 1));
        let _first = gate.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(gate.admit(ip("2001:db8:1:2::2")).unwrap_err(), Refusal::IpFull);
        assert!(gate.admit(ip("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn the_gate_admits_up_to_the_per_ip_limit_and_frees_places() {
        let gate = ConnectionGate::new(&limits(100, 2));
        let a = ip("203.0.113.1");
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::IpFull);
        assert!(gate.admit(ip("203.0.113.2")).is_ok(), "another client is not affected");
        drop(first);
        assert!(gate.admit(a).is_ok());
    }

    #[test]
    fn the_gate_admits_up_to_the_instance_limit() {
        let gate = ConnectionGate::new(&limits(2, 100));
        let slots: Vec<_> = (1..=2).map(|i| gate.admit(IpAddr::from([203, 0, 113, i])).unwrap()).collect();
        assert_eq!(gate.admit(ip("203.0.113.9")).unwrap_err(), Refusal::InstanceFull);
        drop(slots);
        assert_eq!(gate.open(ip("203.0.113.1")), (0, 0));
        assert_eq!(gate.clients(), 0, "the per-IP table forgets clients with no socket");
    }
}
