//! One signaler socket: join with a ticket, then relay signals to the other peers.

use std::sync::Arc;

use rules::rooms::Kind;
use rules::{Conn, PeerId, RoomId};
use shared::error::Rejected;
use shared::protocol::signaler::{ClientMessage, ServerMessage};
use shared::protocol::CommonMessage;
use shared::ticket::Tickets;
use shared::ws::{Ending, Outbox, Session};
use shared::ErrorCode;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::deliver::Text;
use crate::locals::{Dialect, Locals};
use crate::rooms::Rooms;

/// A connected peer.
pub struct PeerSession {
    conn: Conn,
    outbox: Outbox,
    rooms: Arc<Rooms>,
    locals: Arc<Locals>,
    tickets: Arc<Tickets>,
    /// The room and identity this connection joined as.
    joined: Option<(RoomId, PeerId)>,
    /// The joined peer's id as relayed signals carry it in `from`.
    sender: String,
}

impl PeerSession {
    /// A session that has not joined yet.
    pub fn new(conn: Conn, outbox: Outbox, rooms: Arc<Rooms>, locals: Arc<Locals>, tickets: Arc<Tickets>) -> Self {
        locals.insert(&outbox, Dialect::Strangers);
        PeerSession { conn, outbox, rooms, locals, tickets, joined: None, sender: String::new() }
    }

    async fn join(&mut self, room_id: &str, ticket: Option<&str>) -> Result<(), Rejected> {
        let ticket = ticket.ok_or_else(|| Rejected::new(ErrorCode::BadTicket, "join needs a `ticket` (a string)"))?;
        let admission = self.tickets.verify_any_age(ticket, room_id)?;
        let identity = (admission.room, admission.peer);
        if let Some((room, _)) = self.joined.filter(|current| *current != identity) {
            // One room per connection: joining another leaves the current one.
            self.rooms.leave(room, self.conn).await;
            self.joined = None;
        }
        let admits_until = admission.expires_at.saturating_mul(1_000);
        self.rooms.join(admission.room, Kind::Matched, self.conn, admission.peer, admits_until).await;
        tracing::debug!(room = %admission.room, peer = %admission.peer, "join");
        self.joined = Some(identity);
        self.sender = admission.peer.to_string();
        Ok(())
    }

    async fn relay(&mut self, envelope: shared::protocol::Envelope<'_>) -> Result<(), Rejected> {
        let Some((room, _)) = self.joined else {
            return Err(Rejected::new(ErrorCode::NotJoined, "send join with your ticket first"));
        };
        let to = match envelope.optional_string("to")? {
            None => None,
            Some(to) => Some(uuid::Uuid::parse_str(&to).map_err(|_| {
                Rejected::new(ErrorCode::UnknownPeer, "`to` names nobody in this room; nothing relayed")
            })?),
        };
        let text = Text(Utf8Bytes::from(envelope.with_from(&self.sender)));
        self.rooms.relay(room, self.conn, to, text).await;
        Ok(())
    }
}

impl Session for PeerSession {
    async fn on_text(&mut self, text: &str) {
        let result = match ClientMessage::decode(text) {
            Err(rejected) => Err(rejected),
            // Boxed: joining and leaving are rare, and their state would otherwise take room in
            // every socket's task for as long as the socket lives.
            Ok(ClientMessage::Join { room_id, ticket }) => Box::pin(self.join(&room_id, ticket.as_deref())).await,
            Ok(ClientMessage::Signal(envelope)) => self.relay(envelope).await,
            Ok(ClientMessage::Leave) => {
                if let Some((room, _)) = self.joined.take() {
                    Box::pin(self.rooms.leave(room, self.conn)).await;
                }
                self.outbox.send(&ServerMessage::Left);
                Ok(())
            }
            Ok(ClientMessage::Ping) => {
                self.outbox.send(&CommonMessage::Pong);
                Ok(())
            }
        };
        if let Err(rejected) = result {
            self.outbox.reject(&rejected);
        }
    }

    async fn on_close(self, ending: Ending) {
        self.locals.remove(self.conn.socket);
        if let Some((room, _)) = self.joined {
            self.rooms.closed(room, self.conn, ending.is_goodbye()).await;
        }
    }
}

/// A socket of either protocol the signaler speaks.
pub enum SignalerSession {
    /// `/ws`.
    Peer(PeerSession),
    /// `/matchbox/{room}`.
    Matchbox(crate::matchbox::socket::MatchboxSession),
}

impl Session for SignalerSession {
    async fn on_text(&mut self, text: &str) {
        match self {
            SignalerSession::Peer(session) => session.on_text(text).await,
            SignalerSession::Matchbox(session) => session.on_text(text).await,
        }
    }

    async fn on_close(self, ending: Ending) {
        match self {
            SignalerSession::Peer(session) => session.on_close(ending).await,
            SignalerSession::Matchbox(session) => session.on_close(ending).await,
        }
    }

    fn hears_errors(&self) -> bool {
        match self {
            SignalerSession::Peer(session) => session.hears_errors(),
            SignalerSession::Matchbox(session) => session.hears_errors(),
        }
    }
}
