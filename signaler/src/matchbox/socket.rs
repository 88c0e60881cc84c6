//! One matchbox socket: it is given an id (`IdAssigned`, before anything else), is in its room
//! from the start, and sends signals to single peers; `KeepAlive` is ignored, and so is what
//! matchbox does not understand (as its own server does).

use std::sync::Arc;

use rules::matchbox::{Address, Event, Request};
use rules::{Conn, PeerId, RoomId};
use shared::ws::{Ending, Outbox, Session};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::deliver::Text;
use crate::locals::{Dialect, Locals};
use crate::rooms::Rooms;

/// A connected matchbox peer.
pub struct MatchboxSession {
    conn: Conn,
    room: RoomId,
    peer: PeerId,
    rooms: Arc<Rooms>,
    locals: Arc<Locals>,
}

impl MatchboxSession {
    /// Gives the socket its id and puts it in the room `address` names.
    pub async fn open(conn: Conn, outbox: Outbox, address: Address, rooms: Arc<Rooms>, locals: Arc<Locals>) -> Self {
        locals.insert(&outbox, Dialect::Matchbox);
        let peer = shared::random::uuid();
        outbox.send_text(Event::IdAssigned(peer).text().into());
        let room = address.room();
        Box::pin(rooms.join(room, address.kind(), conn, peer, rules::Millis::MAX)).await;
        tracing::debug!(%room, %peer, name = %address.name, next = ?address.next, "matchbox peer");
        MatchboxSession { conn, room, peer, rooms, locals }
    }
}

impl Session for MatchboxSession {
    async fn on_text(&mut self, text: &str) {
        match Request::parse(text) {
            Ok(Request::Signal { receiver, data }) => {
                let text = Text(Utf8Bytes::from(Event::Signal { sender: self.peer, data }.text()));
                self.rooms.relay(self.room, self.conn, Some(receiver), text).await;
            }
            Ok(Request::KeepAlive) => {}
            Err(err) => tracing::debug!(%err, "not a matchbox request; ignored"),
        }
    }

    async fn on_close(self, ending: Ending) {
        self.locals.remove(self.conn.socket);
        self.rooms.closed(self.room, self.conn, ending.is_goodbye()).await;
    }

    fn hears_errors(&self) -> bool {
        false
    }
}
