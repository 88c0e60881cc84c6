//! The matchmaker: clients say `available`, and it pairs them first-come-first-served, giving
//! each pair a room id and a signed ticket per client for the signaler.
//!
//! Layout:
//! - [`queue`]: the pairing rules as plain data (FIFO queue, pairs, next/leave/requeue).
//! - [`hub`]: the task that owns the queue and sends the resulting messages (in memory).
//! - [`cluster`]: the same commands on a queue shared through Redis (`REDIS_URL`).
//! - [`session`]: one socket: decode, check auth, forward to the hub.
//! - [`auth`]: the optional `auth` step.
//! - [`routes`], [`assets`]: `/api/stats`, the embedded chat page, and the shared operational routes.
//! - [`config`]: the matchmaker's settings.
#![forbid(unsafe_code)]

pub mod assets;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod hub;
pub mod queue;
pub mod routes;
pub mod session;

use std::sync::Arc;

use shared::lifecycle::Lifecycle;
use shared::limits::{ConnectionGate, Limits};
use shared::metrics::Metrics;
use shared::server::{Server, SocketRequest, SocketService};
use shared::ticket::Tickets;
use shared::ws::{Outbox, SocketLimits};
use tokio::net::TcpListener;

pub use config::Config;

use crate::auth::Auth;
use crate::hub::{Command, Figures, Hub};
use crate::session::ClientSession;
use shared::protocol::matchmaker::ServerMessage;

/// Serves the matchmaker on `listener` until `lifecycle` begins shutdown, then waits for its
/// sockets to close (at most `SHUTDOWN_GRACE_SECS`). Returns whether they all closed in time.
/// No abuse limits apply ([`Limits::unlimited`]); the binaries use [`serve_with_limits`].
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing.
pub async fn serve(config: Config, listener: TcpListener, lifecycle: Lifecycle) -> Result<bool, shared::Error> {
    serve_with_limits(config, Limits::unlimited(), listener, lifecycle).await
}

/// [`serve`] with abuse limits: message rate, `next` rate, connections per IP and instance.
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
    let tickets = Tickets::new(secret.as_bytes(), config.common.ticket_ttl);
    let figures = Figures::default();
    let mut metrics = Metrics::new("matchmaker");
    metrics.register("online", "Connected clients", figures.online.clone());
    metrics.register("queue_length", "Clients waiting to be paired", figures.waiting.clone());
    metrics.register("rooms", "Open rooms (matched pairs)", figures.rooms.clone());
    metrics.register("matches", "Pairs made", figures.matches.clone());
    let gate = ConnectionGate::new(&limits);
    gate.register(&mut metrics);
    let metrics = Arc::new(metrics);
    let (ice, requeue) = (config.ice_servers.clone(), config.requeue_on_partner_leave);
    let link = match &config.common.redis_url {
        Some(url) => Some(shared::redis::RedisLink::connect(url, cluster::NAMESPACE).await?),
        None => None,
    };
    let hub = match &link {
        Some(link) => cluster::spawn(link.clone(), &lifecycle, tickets, ice, requeue, figures.clone()),
        None => hub::spawn(tickets, ice, requeue, figures.clone()),
    };
    let service = Matchmaker {
        hub: hub.clone(),
        auth: Arc::new(Auth::new(config.auth_jwt_secret.as_deref())),
        config: config.clone(),
        limits: limits.clone(),
    };
    let server = Server {
        service: Arc::new(service),
        routes: assets::with_security_headers(routes::all(lifecycle.clone(), metrics.clone(), hub.clone()), &config),
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

/// The socket side of the matchmaker.
struct Matchmaker {
    hub: Hub,
    auth: Arc<Auth>,
    config: Config,
    /// `NEXT_PER_MINUTE` and `NEXT_BURST` for each session.
    limits: Limits,
}

impl SocketService for Matchmaker {
    type Session = ClientSession;

    async fn open(&self, outbox: Outbox, request: SocketRequest) -> ClientSession {
        let id = uuid::Uuid::new_v4();
        tracing::debug!(client = %id, "client connected");
        let signaling_url = self.config.signaling_url_for(request.host.as_deref()).into();
        outbox.send(&ServerMessage::Ready { client_id: id });
        self.hub.send(Command::Connect { id, outbox: outbox.clone(), signaling_url }).await;
        ClientSession::new(id, outbox, self.hub.clone(), self.auth.clone(), &self.limits)
    }
}
