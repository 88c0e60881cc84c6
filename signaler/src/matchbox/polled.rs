//! Peers that poll over HTTP (`/matchbox/poll/…`) rather than hold a socket: each has a seat in
//! a room like a socket's (its `Conn` numbered apart from the sockets'), and a mailbox that the
//! rooms' outputs go into. Mailboxes live on the instance that answered the peer's first poll.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use rules::matchbox::{notice_event, Mailboxes};
use rules::rooms::Output;
use rules::{Conn, HomeId, Millis, PeerId, RoomId};
use tokio::sync::Notify;

use crate::deliver::Text;

/// Polled peers' socket numbers start here, far above any socket's.
const FIRST_POLLED_SOCKET: u64 = 1 << 62;

/// Where a polled peer sits, and what wakes its waiting poll.
#[derive(Debug, Clone)]
pub struct Seat {
    /// Its room.
    pub room: RoomId,
    /// Its place in the room.
    pub conn: Conn,
    /// Rung when an event arrives.
    pub wake: Arc<Notify>,
}

/// This instance's polled peers.
#[derive(Debug)]
pub struct Polled {
    mailboxes: Mutex<Mailboxes>,
    seats: DashMap<PeerId, Seat>,
    by_socket: DashMap<u64, PeerId>,
    next: AtomicU64,
}

impl Default for Polled {
    fn default() -> Self {
        Polled {
            mailboxes: Mutex::new(Mailboxes::new()),
            seats: DashMap::new(),
            by_socket: DashMap::new(),
            next: AtomicU64::new(FIRST_POLLED_SOCKET),
        }
    }
}

impl Polled {
    fn mailboxes(&self) -> std::sync::MutexGuard<'_, Mailboxes> {
        self.mailboxes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A first poll at `now`: `peer` gets a seat in `room` on instance `home`, and a mailbox
    /// that starts with `first`.
    pub fn open(&self, peer: PeerId, room: RoomId, home: HomeId, first: String, now: Millis) -> Seat {
        let conn = Conn::new(home, self.next.fetch_add(1, Ordering::Relaxed));
        let seat = Seat { room, conn, wake: Arc::new(Notify::new()) };
        {
            let mut mailboxes = self.mailboxes();
            mailboxes.open(peer, now);
            mailboxes.push(peer, first);
        }
        self.by_socket.insert(conn.socket, peer);
        self.seats.insert(peer, seat.clone());
        seat
    }

    /// The seat of `peer`, if it polls here.
    pub fn seat(&self, peer: PeerId) -> Option<Seat> {
        self.seats.get(&peer).map(|s| s.clone())
    }

    /// A poll arrived: what the last answer carried is gone. `false` for an unknown peer.
    pub fn poll(&self, peer: PeerId, now: Millis) -> bool {
        self.mailboxes().poll(peer, now)
    }

    /// What waits for `peer` (kept until its next poll).
    pub fn take(&self, peer: PeerId) -> Vec<String> {
        self.mailboxes().take(peer)
    }

    /// Whether `socket` is a polled peer's.
    pub fn has(&self, socket: u64) -> bool {
        self.by_socket.contains_key(&socket)
    }

    /// A room's output for a polled peer, in matchbox's words, into its mailbox. Whether it was
    /// a relayed signal that was kept.
    pub fn deliver(&self, output: Output<Text>) -> bool {
        let Some(peer) = self.by_socket.get(&output.to().socket).map(|p| *p) else { return false };
        let relay = matches!(output, Output::Relay { .. });
        let event = match output {
            Output::Relay { text, .. } => text.0.as_str().to_owned(),
            Output::Notice { notice, .. } => match notice_event(&notice) {
                Some(event) => event.text(),
                None => return false,
            },
            Output::Refuse { .. } | Output::Replace { .. } | Output::Close { .. } => return false,
        };
        let pushed = self.mailboxes().push(peer, event);
        if let Some(seat) = self.seats.get(&peer) {
            seat.wake.notify_one();
        }
        pushed && relay
    }

    /// The peers that have not polled for `idle` by `now`: they have left (and are forgotten).
    pub fn expire(&self, now: Millis, idle: Millis) -> Vec<Seat> {
        let gone = self.mailboxes().expire(now, idle);
        gone.into_iter()
            .filter_map(|peer| self.seats.remove(&peer).map(|(_, seat)| seat))
            .inspect(|seat| {
                self.by_socket.remove(&seat.conn.socket);
            })
            .collect()
    }

    /// How many peers poll here.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether nobody polls here.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }
}
