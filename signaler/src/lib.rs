//! The signaler: admits only the ticket holders of a room and relays WebRTC offer, answer and
//! ICE candidates between them, so their browsers can connect peer to peer.
//!
//! Layout:
//! - [`room`]: one room's rules as plain data (members, held messages, replacement).
//! - [`rooms`]: the concurrent map of rooms.
//! - [`session`]: one socket: decode, verify tickets, relay.
#![forbid(unsafe_code)]

pub mod room;
pub mod rooms;
pub mod session;

use std::sync::Arc;

use shared::config::Common;
use shared::lifecycle::Lifecycle;
use shared::metrics::Metrics;
use shared::routes::{handle_rejection, operational};
use shared::server::{Server, SocketRequest, SocketService};
use shared::ticket::Tickets;
use shared::ws::{Outbox, SocketLimits};
use tokio::net::TcpListener;
use warp::Filter;

use crate::rooms::{Figures, Rooms};
use crate::session::PeerSession;

/// Default `PORT` of the signaler.
pub const DEFAULT_PORT: u16 = 8081;

/// Everything the signaler is configured with: only the common settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Settings both services share.
    pub common: Common,
}

impl Config {
    /// Reads the signaler's settings from (name, value) pairs.
    ///
    /// # Errors
    /// [`shared::Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, shared::Error> {
        Ok(Config { common: Common::from_vars(vars)? })
    }

    /// The port to listen on.
    pub fn port(&self) -> u16 {
        self.common.port.unwrap_or(DEFAULT_PORT)
    }
}

/// Serves the signaler on `listener` until `lifecycle` begins shutdown, then waits for its
/// sockets to close (at most `SHUTDOWN_GRACE_SECS`). Returns whether they all closed in time.
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing.
pub async fn serve(config: Config, listener: TcpListener, lifecycle: Lifecycle) -> Result<bool, shared::Error> {
    let secret = config.common.require_ticket_secret()?;
    let tickets = Arc::new(Tickets::new(secret.as_bytes(), config.common.ticket_ttl));
    let figures = Figures::default();
    let mut metrics = Metrics::new("signaler");
    metrics.register("rooms", "Rooms with at least one peer", figures.rooms.clone());
    metrics.register("relayed_messages", "Signals delivered to a peer", figures.relayed.clone());
    let metrics = Arc::new(metrics);
    let service = Signaler { rooms: Arc::new(Rooms::new(figures)), tickets };
    let server = Server {
        service: Arc::new(service),
        routes: operational(lifecycle.clone(), metrics.clone()).recover(handle_rejection),
        origins: config.common.allowed_origins.clone(),
        limits: SocketLimits {
            max_message_bytes: config.common.max_message_bytes,
            ping_interval: config.common.ping_interval,
            outbox_capacity: config.common.outbox_capacity,
        },
        lifecycle: lifecycle.clone(),
        metrics,
    };
    server.run(listener).await;
    Ok(lifecycle.wait(config.common.shutdown_grace).await)
}

/// The socket side of the signaler.
struct Signaler {
    rooms: Arc<Rooms>,
    tickets: Arc<Tickets>,
}

impl SocketService for Signaler {
    type Session = PeerSession;

    async fn open(&self, outbox: Outbox, _request: SocketRequest) -> PeerSession {
        PeerSession::new(outbox, self.rooms.clone(), self.tickets.clone())
    }
}
