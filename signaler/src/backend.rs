//! Where rooms live: in this process, or in Redis shared by every instance (`REDIS_URL`).
//! Chosen at start-up; the sessions see one interface.
//!
//! The Redis calls are boxed: their futures are large, and an unboxed one would make every
//! socket's task that large, in memory, for as long as the socket lives.

use shared::error::Rejected;
use shared::ticket::Admission;
use shared::ws::{ConnId, Outbox};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::cluster::ClusterRooms;
use crate::room::{Joined, PeerId, RoomId};
use crate::rooms::MemoryRooms;

/// The room store of this instance.
pub enum Backend {
    /// One process holds every room.
    Memory(MemoryRooms),
    /// Rooms shared through Redis.
    Cluster(ClusterRooms),
}

impl Backend {
    /// A socket opened.
    pub fn opened(&self, outbox: &Outbox) {
        if let Backend::Cluster(rooms) = self {
            rooms.opened(outbox);
        }
    }

    /// A socket closed (after it left its room).
    pub fn closed(&self, conn: ConnId) {
        if let Backend::Cluster(rooms) = self {
            rooms.closed(conn);
        }
    }

    /// Admits the holder of a verified ticket.
    ///
    /// # Errors
    /// `room-full`, or `unavailable` when the shared backend is down.
    pub async fn join(&self, admission: Admission, outbox: &Outbox) -> Result<Joined, Rejected> {
        match self {
            Backend::Memory(rooms) => rooms.join(admission, outbox.clone()),
            Backend::Cluster(rooms) => Box::pin(rooms.join(admission, outbox)).await,
        }
    }

    /// Relays a signal from a joined peer (or holds it for the partner).
    ///
    /// # Errors
    /// `not-joined`, `rate-limited`, or `unavailable` when the shared backend is down.
    pub async fn relay(&self, room: RoomId, peer: PeerId, conn: ConnId, text: String) -> Result<(), Rejected> {
        match self {
            Backend::Memory(rooms) => rooms.relay(room, peer, conn, Utf8Bytes::from(text)),
            Backend::Cluster(rooms) => Box::pin(rooms.relay(room, peer, conn, &text)).await,
        }
    }

    /// Takes a peer's connection out of its room.
    pub async fn leave(&self, room: RoomId, peer: PeerId, conn: ConnId) {
        match self {
            Backend::Memory(rooms) => rooms.leave(room, peer, conn),
            Backend::Cluster(rooms) => Box::pin(rooms.leave(room, peer, conn)).await,
        }
    }
}
