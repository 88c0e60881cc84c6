//! Every room of this instance, in one concurrent map (the in-memory backend). Each operation is one critical section
//! on the room's shard; nothing awaits while holding it.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use shared::error::Rejected;
use shared::ticket::{unix_now, Admission};
use shared::ws::{ConnId, Outbox};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::room::{Joined, PeerId, Room, RoomId};

/// The figures `/metrics` reports about rooms.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Rooms with at least one peer.
    pub rooms: Gauge,
    /// Signals delivered to a peer.
    pub relayed: Counter,
}

/// The rooms of this instance.
#[derive(Default)]
pub struct MemoryRooms {
    map: DashMap<RoomId, Room<Outbox>>,
    figures: Figures,
}

impl MemoryRooms {
    /// No rooms yet.
    pub fn new(figures: Figures) -> Self {
        MemoryRooms { map: DashMap::new(), figures }
    }

    /// Admits the holder of a verified ticket.
    ///
    /// # Errors
    /// `room-full` from [`Room::join`].
    pub fn join(&self, admission: Admission, outbox: Outbox) -> Result<Joined, Rejected> {
        let mut room =
            self.map.entry(admission.room).or_insert_with(|| Room::new(admission.room, admission.expires_at));
        let result = room.join(admission.peer, outbox, admission.expires_at);
        let empty = room.is_empty();
        drop(room);
        if empty {
            self.map.remove_if(&admission.room, |_, room| room.is_empty());
        }
        self.figures.rooms.set(self.map.len() as i64);
        result
    }

    /// Relays a signal from a joined peer.
    ///
    /// # Errors
    /// `not-joined` or `rate-limited` from [`Room::relay`].
    pub fn relay(&self, room: RoomId, peer: PeerId, conn: ConnId, text: Utf8Bytes) -> Result<(), Rejected> {
        let Some(mut room) = self.map.get_mut(&room) else {
            return Err(Rejected::new(shared::ErrorCode::NotJoined, "not in a room; send join first"));
        };
        let delivered = room.relay(peer, conn, text, unix_now())?;
        self.figures.relayed.inc_by(delivered as u64);
        Ok(())
    }

    /// Removes a peer's connection from its room; forgets the room when it is empty.
    pub fn leave(&self, room: RoomId, peer: PeerId, conn: ConnId) {
        if let Entry::Occupied(mut entry) = self.map.entry(room) {
            entry.get_mut().leave(peer, conn);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
        self.figures.rooms.set(self.map.len() as i64);
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
