//! The connection counts of an instance: open sockets in total and per client IP, and the
//! refusal of upgrades beyond `MAX_CONNECTIONS` and `MAX_CONNECTIONS_PER_IP`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::address::{ip_key, TrustedProxies};
use super::Limits;
use crate::metrics::Metrics;

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
    /// is dropped. A client that is itself a trusted proxy (one that named nobody in
    /// `X-Forwarded-For`) cannot be told apart from the others behind it, so it counts against
    /// the instance's limit only.
    ///
    /// # Errors
    /// Which limit refused it.
    pub fn admit(&self, client: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let key = self.address_key(client);
        let mut counts = self.0.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let refusal = if counts.total >= self.0.max_total {
            Some(Refusal::InstanceFull)
        } else if key.is_some_and(|key| counts.per_ip.get(&key).copied().unwrap_or(0) >= self.0.max_per_ip) {
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
        if let Some(key) = key {
            *counts.per_ip.entry(key).or_insert(0) += 1;
        }
        Ok(ConnectionSlot { gate: self.0.clone(), key })
    }

    /// What `client` counts as for per-address rules: its address (an IPv6 one by its /64),
    /// or `None` for a trusted proxy that named nobody behind it.
    pub fn address_key(&self, client: IpAddr) -> Option<IpAddr> {
        (!self.0.trusted_proxies.contains(client)).then(|| ip_key(client))
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
    /// The address it counts against, if any.
    key: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        let Some(key) = self.key else { return };
        if let Some(n) = counts.per_ip.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(max_total: usize, max_per_ip: usize) -> Limits {
        Limits { max_connections: max_total, max_connections_per_ip: max_per_ip, ..Limits::default() }
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
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

    #[test]
    fn a_trusted_proxy_that_names_no_client_counts_against_the_instance_only() {
        let gate = ConnectionGate::new(&limits(3, 1));
        let proxy = ip("127.0.0.1");
        let slots: Vec<_> = (0..3).map(|_| gate.admit(proxy).unwrap()).collect();
        assert_eq!(gate.open(proxy), (3, 0));
        assert_eq!(gate.admit(proxy).unwrap_err(), Refusal::InstanceFull);
        drop(slots);
        assert_eq!(gate.open(proxy), (0, 0));
    }
}
