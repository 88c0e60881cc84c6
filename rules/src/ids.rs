//! Who is who: clients, rooms, peers, the instances that hold sockets, and the sockets.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A matchmaker client: the `clientId` of `ready` (a UUID v4).
pub type ClientId = Uuid;
/// A room: a UUID v4, 122 random bits.
pub type RoomId = Uuid;
/// A peer in a room: the client id its ticket names, or a fresh UUID in a room joined by code.
pub type PeerId = Uuid;
/// An instance of a service (one process), which holds some of the sockets.
pub type HomeId = Uuid;

/// One socket: the instance that holds it and its number there. A client that reconnects
/// (resume, a reloaded page) comes back on another `Conn`; rules tell the two apart by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conn {
    /// The instance holding the socket.
    pub home: HomeId,
    /// The socket's number on that instance.
    pub socket: u64,
}

impl Conn {
    /// The socket `socket` of instance `home`.
    pub fn new(home: HomeId, socket: u64) -> Self {
        Conn { home, socket }
    }
}

/// Where the cores get new room ids: ChaCha20, seeded by the shell from the operating
/// system's randomness (or with a fixed seed in tests, so that a run can be replayed).
#[derive(Debug, Clone)]
pub struct Ids(ChaCha20Rng);

impl Ids {
    /// A source seeded with `seed`; give it 32 bytes of real randomness in production.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Ids(ChaCha20Rng::from_seed(seed))
    }

    /// A fresh UUID v4 (122 random bits).
    pub fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.0.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// `n` random digits, for codes people type.
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| {
                // Rejection sampling keeps every digit equally likely.
                loop {
                    let byte = (self.0.next_u32() & 0xff) as u8;
                    if byte < 250 {
                        return char::from(b'0' + byte % 10);
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_differ() {
        let mut ids = Ids::from_seed([7; 32]);
        let (a, b) = (ids.uuid(), ids.uuid());
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, b);
    }

    #[test]
    fn the_same_seed_gives_the_same_ids() {
        let (mut x, mut y) = (Ids::from_seed([1; 32]), Ids::from_seed([1; 32]));
        assert_eq!(x.uuid(), y.uuid());
    }

    #[test]
    fn digits_are_digits_of_the_asked_length() {
        let code = Ids::from_seed([3; 32]).digits(6);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
    }
}
