//! The signaler: admits only the ticket holders of a room and relays WebRTC offer, answer and
//! ICE candidates between them, so their browsers can connect peer to peer. The room rules live
//! in [`rules::rooms`]; this crate is the shell around them.
//!
//! Layout:
//! - [`rooms`]: where rooms' rules run ([`rooms::map`]: the rooms of this instance).
//! - [`backend`]: rooms shared through Redis, for several instances (`REDIS_URL`).
//! - [`session`]: one socket: decode, verify tickets, relay.
//! - [`matchbox`]: matchbox's protocol (`/matchbox/{room}`) over the same rooms.
//! - [`locals`]: this instance's sockets; [`deliver`]: what rooms decided, as wire messages.
#![forbid(unsafe_code)]

pub mod backend;
pub mod deliver;
pub mod locals;
pub mod matchbox;
pub mod rooms;
pub mod session;

use std::sync::Arc;

use rules::rooms::RoomSettings;
use rules::{Conn, HomeId};
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

use crate::deliver::Figures;
use crate::locals::Locals;
use crate::matchbox::socket::MatchboxSession;
use crate::rooms::map::{Alone, RoomMap};
use crate::rooms::{Place, Rooms};
use crate::session::{PeerSession, SignalerSession};

/// Default `PORT` of the signaler.
pub const DEFAULT_PORT: u16 = 8081;

/// Everything the signaler is configured with: the common settings and its limits.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Settings both services share.
    pub common: Common,
    /// The abuse limits (message rate, connections per IP and instance): on at their
    /// production defaults unless the variables say otherwise. A caller that protects the
    /// service by other means, or a test that measures something else, sets
    /// [`Limits::unlimited`].
    pub limits: Limits,
}

/// Every environment variable the signaler reads.
pub fn variables() -> Vec<String> {
    let mut names = shared::config::common_variables();
    names.extend(shared::limits::variables());
    names
}

impl Config {
    /// Reads the signaler's settings, its limits included, from (name, value) pairs.
    ///
    /// # Errors
    /// [`shared::Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, shared::Error> {
        let common = Common::from_vars(vars.clone())?;
        let limits = Limits::from_vars(vars)?;
        Ok(Config { common, limits })
    }

    /// The port to listen on.
    pub fn port(&self) -> u16 {
        self.common.port.unwrap_or(DEFAULT_PORT)
    }

    /// The rooms' settings.
    pub fn room_settings(&self) -> RoomSettings {
        RoomSettings {
            resume_grace: u64::try_from(self.common.resume_grace.as_millis()).unwrap_or(u64::MAX),
            ..RoomSettings::default()
        }
    }
}

/// Milliseconds since the Unix epoch: the time the rules are given.
pub fn now_ms() -> rules::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Serves the signaler on `listener` until `lifecycle` begins shutdown, then waits for its
/// sockets to close (at most `SHUTDOWN_GRACE_SECS`). Returns whether they all closed in time.
/// The abuse limits are `config.limits`: on by default ([`Config::limits`]).
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing, or Redis stays unreachable.
pub async fn serve(config: Config, listener: TcpListener, lifecycle: Lifecycle) -> Result<bool, shared::Error> {
    let secret = config.common.require_ticket_secret()?;
    let tickets = Arc::new(Tickets::new(secret.as_bytes(), config.common.ticket_ttl));
    let home: HomeId = shared::random::uuid();
    let figures = Figures::default();
    let mut metrics = Metrics::new("signaler");
    metrics.register("rooms", "Rooms whose rules run on this instance", figures.rooms.clone());
    metrics.register("relayed_messages", "Signals delivered to a peer", figures.relayed.clone());
    metrics.register("matchbox_polled_peers", "matchbox peers polling over HTTP here", figures.polled.clone());
    let gate = ConnectionGate::new(&config.limits);
    gate.register(&mut metrics);
    let metrics = Arc::new(metrics);
    let locals = Arc::new(Locals::default());
    let settings = config.room_settings();
    let stop_timers = tokio_util::sync::CancellationToken::new();
    let rooms = match &config.common.redis_url {
        Some(url) => {
            let common = &config.common;
            let redis = backend::RedisRooms::start(
                url,
                common.redis_cluster,
                &common.redis_key_prefix,
                home,
                settings,
                locals.clone(),
                figures.clone(),
                &lifecycle,
            )
            .await?;
            Place::Redis(redis)
        }
        None => {
            let map = Arc::new(RoomMap::new(settings, home, locals.clone(), figures.clone(), Box::new(Alone)));
            tokio::spawn(map.clone().run_timers(stop_timers.clone()));
            Place::Memory { map, figures: figures.clone() }
        }
    };
    let rooms = Arc::new(Rooms::new(rooms, home, locals.clone()));
    let polling = matchbox::http::Polling {
        rooms: rooms.clone(),
        locals: locals.clone(),
        home,
        hold: config.common.poll_hold,
        max_body: config.common.max_message_bytes as u64,
        max_peers: config.limits.max_connections,
        figures: figures.clone(),
        lifecycle: lifecycle.clone(),
    };
    tokio::spawn(polling.clone().run_expiry(stop_timers.clone()));
    let service = Signaler { home, rooms: rooms.clone(), locals, tickets };
    let server = Server {
        service: Arc::new(service),
        routes: operational(lifecycle.clone(), metrics.clone())
            .or(matchbox::http::routes(polling))
            .recover(handle_rejection),
        origins: config.common.allowed_origins.clone(),
        limits: SocketLimits::new(&config.common, &config.limits),
        gate,
        lifecycle: lifecycle.clone(),
        metrics,
        polls: Default::default(),
    };
    server.run(listener).await;
    rooms.drain().await;
    let drained = lifecycle.wait(config.common.shutdown_grace).await;
    stop_timers.cancel();
    if let Some(redis) = rooms.redis() {
        redis.stop().await;
    }
    Ok(drained)
}

/// The socket side of the signaler.
struct Signaler {
    home: HomeId,
    rooms: Arc<Rooms>,
    locals: Arc<Locals>,
    tickets: Arc<Tickets>,
}

impl SocketService for Signaler {
    type Session = SignalerSession;

    async fn open(&self, outbox: Outbox, request: SocketRequest) -> SignalerSession {
        let conn = Conn::new(self.home, outbox.id().0);
        match matchbox::socket_address(&http::Method::GET, &request.path, request.query.as_deref()) {
            Some(Ok(address)) => SignalerSession::Matchbox(
                MatchboxSession::open(conn, outbox, address, self.rooms.clone(), self.locals.clone()).await,
            ),
            _ => SignalerSession::Peer(PeerSession::new(
                conn,
                outbox,
                self.rooms.clone(),
                self.locals.clone(),
                self.tickets.clone(),
            )),
        }
    }

    fn socket_path(&self, method: &http::Method, path: &str, query: Option<&str>) -> Option<Result<(), &'static str>> {
        matchbox::socket_address(method, path, query).map(|address| address.map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn limits_are_read_with_the_rest() {
        assert_eq!(Config::from_vars(vars(&[])).unwrap().limits, Limits::default());
        assert_eq!(Config::default().limits, Limits::default());
        let config = Config::from_vars(vars(&[("MAX_CONNECTIONS", "7")])).unwrap();
        assert_eq!(config.limits.max_connections, 7);
        let err = Config::from_vars(vars(&[("MESSAGES_PER_SEC", "0")])).unwrap_err().to_string();
        assert!(err.contains("MESSAGES_PER_SEC"), "{err}");
    }
}
