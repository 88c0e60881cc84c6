//! How many sockets this process may open, and which local address each one comes from.

use std::net::{IpAddr, Ipv4Addr};

/// Descriptors kept for the runtime, stdio, `/proc` reads and the odd check client.
pub const RESERVED_FDS: u64 = 256;
/// Connections per local source address. Binding before connecting reserves the port for that
/// address whatever the destination, and about half of the 28k ephemeral ports go to binds, so
/// stay well below that.
pub const PER_SOURCE_ADDRESS: usize = 10_000;
/// Source addresses start at 127.0.0.2, leaving 127.0.0.1 to unbound clients.
const FIRST_SOURCE_OCTET: usize = 2;
/// The last usable host octet.
const LAST_SOURCE_OCTET: usize = 254;

/// Raises the soft open-file limit to the hard limit; returns the soft limit in force.
pub fn raise_file_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1_024)
}

/// Sockets this process can open after [`RESERVED_FDS`].
pub fn socket_budget(file_limit: u64) -> usize {
    usize::try_from(file_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX)
}

/// The loopback source address of the `index`-th socket when connections are spread, or `None`
/// past 127.0.0.254.
pub fn source_address(index: usize) -> Option<IpAddr> {
    let octet = FIRST_SOURCE_OCTET + index / PER_SOURCE_ADDRESS;
    (octet <= LAST_SOURCE_OCTET).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet as u8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_sockets_over_loopback_addresses() {
        assert_eq!(source_address(0), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(source_address(PER_SOURCE_ADDRESS - 1), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(source_address(PER_SOURCE_ADDRESS), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))));
        assert_eq!(source_address(PER_SOURCE_ADDRESS * 300), None);
    }

    #[test]
    fn the_limit_is_raised_to_something_usable() {
        assert!(raise_file_limit() >= 1_024);
        assert_eq!(socket_budget(100), 0);
    }
}
