//! Where rooms' rules run: all in this process, or on Redis in the instance that owns each
//! room. Chosen at start-up; sessions see one interface.
//!
//! The Redis calls are boxed: their futures are large, and an unboxed one would make every
//! socket's task that large, in memory, for as long as the socket lives.

pub mod map;

use std::sync::Arc;

use rules::rooms::{Input, Kind, Output, Refusal};
use rules::{Conn, Millis, PeerId, RoomId};

use self::map::{Found, RoomMap};
use crate::backend::RedisRooms;
use crate::deliver::{deliver, Figures, Text};
use crate::locals::Locals;

/// The rooms, as sessions use them.
pub enum Rooms {
    /// Every room in this process.
    Memory {
        /// The rooms.
        map: Arc<RoomMap>,
        /// This instance's sockets (for refusals about rooms that do not exist).
        locals: Arc<Locals>,
        /// `/metrics`.
        figures: Figures,
    },
    /// Rooms shared through Redis.
    Redis(Arc<RedisRooms>),
}

impl Rooms {
    /// `join` a matched room, as the ticket's holder, admitted until `admits_until`.
    pub async fn join(&self, room: RoomId, conn: Conn, peer: PeerId, admits_until: Millis) {
        let input = Input::Join { conn, peer, admits_until };
        match self {
            Rooms::Memory { map, .. } => {
                map.apply(room, Some(Kind::Matched), crate::now_ms(), input);
            }
            Rooms::Redis(rooms) => Box::pin(rooms.join(room, conn, peer, admits_until, input)).await,
        }
    }

    /// Relays a signal from `conn`, to `to` or to every other peer.
    pub async fn relay(&self, room: RoomId, conn: Conn, to: Option<PeerId>, text: Text) {
        let input = Input::Relay { conn, to, text };
        match self {
            Rooms::Memory { map, locals, figures } => {
                if map.apply(room, None, crate::now_ms(), input) == Found::Nothing {
                    deliver(locals, figures, Output::Refuse { to: conn, refusal: Refusal::NotJoined });
                }
            }
            Rooms::Redis(rooms) => Box::pin(rooms.apply(room, conn, input)).await,
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

    async fn apply(&self, room: RoomId, conn: Conn, input: Input<Text>) {
        match self {
            Rooms::Memory { map, .. } => {
                map.apply(room, None, crate::now_ms(), input);
            }
            Rooms::Redis(rooms) => Box::pin(rooms.apply(room, conn, input)).await,
        }
    }
}
