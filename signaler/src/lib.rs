//! The signaler: admits only the ticket holders of a room and relays WebRTC offer, answer and
//! ICE candidates between them, so their browsers can connect peer to peer.
//!
//! Layout:
//! - [`room`]: one room's rules as plain data (members, held messages, replacement).
//! - [`rooms`]: the concurrent map of rooms (in memory).
//! - [`cluster`]: rooms shared through Redis, for several instances (`REDIS_URL`).
//! - [`backend`]: the one interface sessions use, over either.
//! - [`session`]: one socket: decode, verify tickets, relay.
#![forbid(unsafe_code)]

pub mod backend;
pub mod cluster;
pub mod room;
pub mod rooms;
pub mod session;

use std::sync::Arc;

use shared::config::Common;
use shared::lifecycle::Lifecycle;
use shared::limits::{ConnectionGate, Limits};
use shared::metrics::Metrics;
use shared::routes::{handle_rejection, operational};
use shared::server::{Server, SocketRequest, SocketService};
use shared::ticket::Tickets;
use shared::ws::{Outbox, SocketLimits};
use tokio::net::TcpListener;
use warp::Filter;

use crate::backend::Backend;
use crate::rooms::{Figures, MemoryRooms};
use crate::session::PeerSession;

/// Default `PORT` of the signaler.
pub const DEFAULT_PORT: u16 = 8081;

/// Everything the signaler is configured with: only the common settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Settings both services share.
    pub common: Common,
}

/// Every environment variable the signaler reads.
pub fn variables() -> Vec<String> {
    shared::config::common_variables()
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
/// No abuse limits apply ([`Limits::unlimited`]); the binaries use [`serve_with_limits`].
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing.
pub async fn serve(config: Config, listener: TcpListener, lifecycle: Lifecycle) -> Result<bool, shared::Error> {
    serve_with_limits(config, Limits::unlimited(), listener, lifecycle).await
}

/// [`serve`] with abuse limits: message rate, connections per IP and instance.
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing.
pub async fn serve_with_limits(
    config: Config,
    limits: Limits,
    listener: TcpListener,
    lifecycle: Lifecycle,
) -> Result<bool, shared::Error> {
    let secret = config.common.require_ticket_secret()?;
    let tickets = Arc::new(Tickets::new(secret.as_bytes(), config.common.ticket_ttl));
    let figures = Figures::default();
    let mut metrics = Metrics::new("signaler");
    metrics.register("rooms", "Rooms with at least one peer", figures.rooms.clone());
    metrics.register("relayed_messages", "Signals delivered to a peer", figures.relayed.clone());
    let gate = ConnectionGate::new(&limits);
    gate.register(&mut metrics);
    let metrics = Arc::new(metrics);
    let link = match &config.common.redis_url {
        Some(url) => Some(shared::redis::RedisLink::connect(url, cluster::NAMESPACE).await?),
        None => None,
    };
    let rooms = match &link {
        Some(link) => Backend::Cluster(cluster::ClusterRooms::start(link.clone(), &lifecycle, figures)),
        None => Backend::Memory(MemoryRooms::new(figures)),
    };
    let service = Signaler { rooms: Arc::new(rooms), tickets };
    let server = Server {
        service: Arc::new(service),
        routes: operational(lifecycle.clone(), metrics.clone()).recover(handle_rejection),
        origins: config.common.allowed_origins.clone(),
        limits: SocketLimits::new(&config.common, &limits),
        gate,
        lifecycle: lifecycle.clone(),
        metrics,
    };
    server.run(listener).await;
    let drained = lifecycle.wait(config.common.shutdown_grace).await;
    if let Some(link) = link {
        link.unregister().await;
    }
    Ok(drained)
}

/// The socket side of the signaler.
struct Signaler {
    rooms: Arc<Backend>,
    tickets: Arc<Tickets>,
}

impl SocketService for Signaler {
    type Session = PeerSession;

    async fn open(&self, outbox: Outbox, _request: SocketRequest) -> PeerSession {
        PeerSession::new(outbox, self.rooms.clone(), self.tickets.clone())
    }
}
