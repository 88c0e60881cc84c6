//! One signaler socket: join with a ticket, then relay signals to the partner.

use std::sync::Arc;

use shared::error::Rejected;
use shared::protocol::signaler::{ClientMessage, ServerMessage};
use shared::protocol::CommonMessage;
use shared::ticket::Tickets;
use shared::ws::{Outbox, Session};
use shared::ErrorCode;

use crate::backend::Backend;
use crate::room::{PeerId, RoomId};

/// A connected peer.
pub struct PeerSession {
    outbox: Outbox,
    rooms: Arc<Backend>,
    tickets: Arc<Tickets>,
    /// The room and identity this connection joined as.
    joined: Option<(RoomId, PeerId)>,
    /// The joined peer's id as relayed signals carry it in `from`.
    sender: String,
}

impl PeerSession {
    /// A session that has not joined yet.
    pub fn new(outbox: Outbox, rooms: Arc<Backend>, tickets: Arc<Tickets>) -> Self {
        rooms.opened(&outbox);
        PeerSession { outbox, rooms, tickets, joined: None, sender: String::new() }
    }

    async fn join(&mut self, room_id: &str, ticket: &str) -> Result<(), Rejected> {
        let admission = self.tickets.verify(ticket, room_id)?;
        let identity = (admission.room, admission.peer);
        if let Some((room, peer)) = self.joined.filter(|current| *current != identity) {
            // One room per connection: joining another leaves the current one.
            self.rooms.leave(room, peer, self.outbox.id()).await;
            self.joined = None;
        }
        self.rooms.join(admission, &self.outbox).await?;
        tracing::debug!(room = %admission.room, peer = %admission.peer, "joined");
        self.joined = Some(identity);
        self.sender = admission.peer.to_string();
        Ok(())
    }

    async fn leave(&mut self) {
        if let Some((room, peer)) = self.joined.take() {
            self.rooms.leave(room, peer, self.outbox.id()).await;
        }
    }
}

impl Session for PeerSession {
    async fn on_text(&mut self, text: &str) {
        let result = match ClientMessage::decode(text) {
            Err(rejected) => Err(rejected),
            Ok(ClientMessage::Join { room_id, ticket }) => self.join(&room_id, &ticket).await,
            Ok(ClientMessage::Signal(envelope)) => match self.joined {
                None => Err(Rejected::new(ErrorCode::NotJoined, "send join with your ticket first")),
                Some((room, peer)) => {
                    let relayed = envelope.with_from(&self.sender);
                    self.rooms.relay(room, peer, self.outbox.id(), relayed).await
                }
            },
            Ok(ClientMessage::Leave) => {
                self.leave().await;
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

    async fn on_close(mut self) {
        self.leave().await;
        self.rooms.closed(self.outbox.id());
    }
}
