//! Where a client's IP comes from: the TCP peer, or behind a trusted proxy (`TRUSTED_PROXIES`)
//! the `X-Forwarded-For` header read from the right; and the key the per-IP count uses.

use std::net::{IpAddr, Ipv6Addr};

use super::DEFAULT_TRUSTED_PROXIES;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
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
    fn an_ipv6_client_is_keyed_by_its_64() {
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("203.0.113.9")), ip("203.0.113.9"));
    }
}
