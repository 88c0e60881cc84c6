//! The task that owns the queue: every connection sends it commands over one bounded channel,
//! so pairing two waiting clients is one step that cannot race.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use serde_json::value::RawValue;
use shared::error::Rejected;
use shared::protocol::matchmaker::ServerMessage;
use shared::ticket::Tickets;
use shared::ws::Outbox;
use shared::ErrorCode;
use tokio::sync::{mpsc, oneshot};

use crate::queue::{ClientId, Event, Matchmaking};

/// Commands the hub's channel holds before senders wait.
pub const HUB_CHANNEL_CAPACITY: usize = 4_096;

/// What a connection asks of the hub.
#[derive(Debug)]
pub enum Command {
    /// A socket opened.
    Connect {
        /// Its client id.
        id: ClientId,
        /// Where to send it messages.
        outbox: Outbox,
        /// The signaling URL for this client (depends on the host name it used).
        signaling_url: Arc<str>,
    },
    /// `available`.
    Available(ClientId),
    /// `next`.
    Next(ClientId),
    /// `leave`.
    Leave(ClientId),
    /// The socket is gone.
    Disconnect(ClientId),
    /// `GET /api/stats`: the figures of the whole service.
    Stats(oneshot::Sender<Stats>),
}

/// What `GET /api/stats` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Connected clients.
    pub online: i64,
    /// Clients waiting for a partner.
    pub waiting: i64,
    /// Open rooms (matched pairs).
    pub rooms: i64,
}

/// The figures `/api/stats` and `/metrics` report, kept current by the hub.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Connected clients.
    pub online: Gauge,
    /// Clients in the queue.
    pub waiting: Gauge,
    /// Open rooms.
    pub rooms: Gauge,
    /// Matches made since start.
    pub matches: Counter,
}

/// A handle to the hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: mpsc::Sender<Command>,
}

impl Hub {
    /// A handle that sends to `tx`.
    pub fn new(tx: mpsc::Sender<Command>) -> Self {
        Hub { tx }
    }

    /// Sends a command, waiting if the hub is behind.
    pub async fn send(&self, command: Command) {
        // The hub outlives every connection; a send can only fail during teardown.
        let _ = self.tx.send(command).await;
    }

    /// The current figures.
    pub async fn stats(&self) -> Stats {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }
}

struct Client {
    outbox: Outbox,
    signaling_url: Arc<str>,
}

/// Starts the hub task. It ends when every [`Hub`] handle is gone.
pub fn spawn(tickets: Tickets, ice_servers: Box<RawValue>, requeue_on_partner_leave: bool, figures: Figures) -> Hub {
    let (tx, rx) = mpsc::channel(HUB_CHANNEL_CAPACITY);
    let state = State {
        queue: Matchmaking::new(requeue_on_partner_leave),
        clients: HashMap::new(),
        tickets,
        ice_servers,
        figures,
        events: Vec::new(),
    };
    tokio::spawn(state.run(rx));
    Hub::new(tx)
}

struct State {
    queue: Matchmaking,
    clients: HashMap<ClientId, Client>,
    tickets: Tickets,
    ice_servers: Box<RawValue>,
    figures: Figures,
    /// Reused between commands to avoid an allocation per command.
    events: Vec<Event>,
}

impl State {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            self.apply(command);
            self.figures.online.set(self.clients.len() as i64);
            self.figures.waiting.set(self.queue.waiting() as i64);
            self.figures.rooms.set(self.queue.rooms() as i64);
        }
    }

    fn apply(&mut self, command: Command) {
        let mut events = std::mem::take(&mut self.events);
        match command {
            Command::Connect { id, outbox, signaling_url } => {
                self.clients.insert(id, Client { outbox, signaling_url });
            }
            Command::Available(id) => self.queue.available(id, &mut events),
            Command::Next(id) => self.queue.next(id, &mut events),
            Command::Leave(id) => self.queue.leave(id, &mut events),
            Command::Disconnect(id) => {
                self.clients.remove(&id);
                self.queue.disconnect(id, &mut events);
            }
            Command::Stats(reply) => {
                let _ = reply.send(Stats {
                    online: self.clients.len() as i64,
                    waiting: self.queue.waiting() as i64,
                    rooms: self.queue.rooms() as i64,
                });
            }
        }
        for event in events.drain(..) {
            self.deliver(event);
        }
        self.events = events;
    }

    fn deliver(&self, event: Event) {
        match event {
            Event::Queued(id) => self.send(id, &ServerMessage::Queued),
            Event::Left(id) => self.send(id, &ServerMessage::Left),
            Event::PartnerLeft { to, room } => self.send(to, &ServerMessage::PartnerLeft { room_id: room }),
            Event::AlreadyMatched(id) => {
                if let Some(client) = self.clients.get(&id) {
                    client
                        .outbox
                        .reject(&Rejected::new(ErrorCode::AlreadyMatched, "already matched; send next or leave first"));
                }
            }
            Event::Matched { room, initiator, responder } => {
                self.figures.matches.inc();
                tracing::debug!(%room, %initiator, %responder, "matched");
                self.send_matched(room, initiator, responder, true);
                self.send_matched(room, responder, initiator, false);
            }
        }
    }

    fn send_matched(&self, room: uuid::Uuid, to: ClientId, partner: ClientId, initiator: bool) {
        let Some(client) = self.clients.get(&to) else { return };
        let ticket = self.tickets.issue(room, to);
        client.outbox.send(&ServerMessage::Matched {
            room_id: room,
            partner_id: partner,
            initiator,
            signaling_url: &client.signaling_url,
            ticket: &ticket,
            ice_servers: &self.ice_servers,
        });
    }

    fn send(&self, to: ClientId, message: &ServerMessage<'_>) {
        if let Some(client) = self.clients.get(&to) {
            client.outbox.send(message);
        }
    }
}
