//! Where rooms' rules run: all in this process, or on Redis in the instance that owns each
//! room. Chosen at start-up; sessions see one interface.
//!
//! The Redis calls are boxed: their futures are large, and an unboxed one would make every
//! socket's task that large, in memory, for as long as the socket lives.

pub mod map;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rules::rooms::{Input, Kind, Output, Refusal};
use rules::{Conn, HomeId, Millis, PeerId, RoomId};

use self::map::{Found, RoomMap};
use crate::backend::RedisRooms;
use crate::deliver::{deliver, Figures, Text};
use crate::locals::Locals;

/// Where the rooms' rules run.
pub enum Place {
    /// Every room in this process.
    Memory {
        /// The rooms.
        map: Arc<RoomMap>,
        /// `/metrics`.
        figures: Figures,
    },
    /// Rooms shared through Redis.
    Redis(Arc<RedisRooms>),
}

/// The rooms, as sessions use them.
pub struct Rooms {
    place: Place,
    home: HomeId,
    /// This instance's sockets.
    locals: Arc<Locals>,
    /// Shutdown has begun: this instance drains (see [`Rooms::drain`]).
    draining: AtomicBool,
}

impl Rooms {
    /// The rooms of instance `home`, run as `place` says.
    pub fn new(place: Place, home: HomeId, locals: Arc<Locals>) -> Self {
        Rooms { place, home, locals, draining: AtomicBool::new(false) }
    }

    /// The Redis side, when the rooms are shared.
    pub fn redis(&self) -> Option<&Arc<RedisRooms>> {
        match &self.place {
            Place::Redis(rooms) => Some(rooms),
            Place::Memory { .. } => None,
        }
    }

    /// `join` a room (created as `kind` if it does not exist yet) as `peer`, admitted until
    /// `admits_until`.
    pub async fn join(&self, room: RoomId, kind: Kind, conn: Conn, peer: PeerId, admits_until: Millis) {
        let input = Input::Join { conn, peer, admits_until };
        match &self.place {
            Place::Memory { map, .. } => {
                map.apply(room, Some(kind), crate::now_ms(), input);
            }
            Place::Redis(rooms) => Box::pin(rooms.join(room, kind, conn, peer, admits_until, input)).await,
        }
        if self.draining.load(Ordering::Acquire) {
            // A join that raced the drain: the room hears of it too.
            self.apply(room, conn, Input::Drain { home: self.home }).await;
        }
    }

    /// Relays a signal from `conn`, to `to` or to every other peer.
    pub async fn relay(&self, room: RoomId, conn: Conn, to: Option<PeerId>, text: Text) {
        let input = Input::Relay { conn, to, text };
        match &self.place {
            Place::Memory { map, figures } => {
                if map.apply(room, None, crate::now_ms(), input) == Found::Nothing {
                    deliver(&self.locals, figures, Output::Refuse { to: conn, refusal: Refusal::NotJoined });
                }
            }
            Place::Redis(rooms) => Box::pin(rooms.apply(room, conn, input)).await,
        }
    }

    /// `leave`.
    pub async fn leave(&self, room: RoomId, conn: Conn) {
        self.apply(room, conn, Input::Leave { conn }).await;
    }

    /// The socket ended; `clean` if the client closed it.
    pub async fn closed(&self, room: RoomId, conn: Conn, clean: bool) {
        self.apply(room, conn, Input::Closed { conn, clean }).await;
    }

    /// Shutdown has begun: every socket of this instance that is not in a chat is closed with
    /// 1012 (a socket in no room here, at once; a peer alone in its room, by the room's rules,
    /// now or when it comes to be alone), so that it takes its seat back through another
    /// instance. Peers in a chat stay until the end of the grace period.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        let drain = Input::Drain { home: self.home };
        let in_rooms: HashSet<u64> = match &self.place {
            Place::Memory { map, .. } => {
                let sockets = map.sockets_on(self.home);
                map.apply_all(crate::now_ms(), drain);
                sockets
            }
            Place::Redis(rooms) => Box::pin(rooms.drain(drain)).await,
        };
        for (socket, outbox) in self.locals.sockets() {
            if !in_rooms.contains(&socket) {
                let (code, reason) = shared::ws::drain_close(rules::Closing::Restart);
                outbox.close(code, reason);
            }
        }
    }

    async fn apply(&self, room: RoomId, conn: Conn, input: Input<Text>) {
        match &self.place {
            Place::Memory { map, .. } => {
                map.apply(room, None, crate::now_ms(), input);
            }
            Place::Redis(rooms) => Box::pin(rooms.apply(room, conn, input)).await,
        }
    }
}
