//! The matchmaker: clients say `available`, and it pairs them first-come-first-served, giving
//! each pair a room id and a signed ticket per client for the signaler. The rules themselves
//! live in [`rules::matchmaking`]; this crate is the shell around them.
//!
//! Layout:
//! - [`queue`]: the task that owns the rules, and the way sockets reach it.
//! - [`backend`]: the queue shared by every instance through Redis (`REDIS_URL`).
//! - [`session`]: one socket: decode, check, forward to the queue.
//! - [`locals`]: this instance's sockets; [`delivery`]: what they are told.
//! - [`auth`]: the optional `auth` step; [`reports`]: connection reports and their metrics.
//! - [`routes`], [`assets`]: `/api/stats`, the embedded chat page, and the shared operational routes.
//! - [`config`]: the matchmaker's settings.
#![forbid(unsafe_code)]

pub mod assets;
pub mod auth;
pub mod backend;
pub mod config;
pub mod delivery;
pub mod locals;
pub mod queue;
pub mod reports;
pub mod routes;
pub mod safety;
pub mod session;

use std::sync::Arc;

use rules::matchmaking::{Input, Matchmaking, Settings};
use rules::{Conn, HomeId};
use shared::lifecycle::Lifecycle;
use shared::limits::{ConnectionGate, Limits};
use shared::metrics::Metrics;
use shared::protocol::matchmaker::{ServerMessage, PROTOCOL_VERSION};
use shared::resume::ResumeTokens;
use shared::server::{Server, SocketRequest, SocketService};
use shared::ticket::Tickets;
use shared::ws::{Outbox, SocketLimits};
use tokio::net::TcpListener;

pub use config::Config;

use crate::auth::Auth;
use crate::delivery::{Delivery, Signaling};
use crate::locals::{Local, Locals};
use crate::queue::shell::Shell;
use crate::queue::{Figures, QueueHandle};
use crate::reports::{ReportFigures, Reportable};
use crate::session::{ClientSession, Needs};

/// Serves the matchmaker on `listener` until `lifecycle` begins shutdown, then waits for its
/// sockets to close (at most `SHUTDOWN_GRACE_SECS`). Returns whether they all closed in time.
/// The abuse limits are `config.limits`: on by default ([`Config::limits`]).
///
/// # Errors
/// [`shared::Error::Config`] when `ROOM_TICKET_SECRET` is missing, or Redis stays unreachable.
pub async fn serve(config: Config, listener: TcpListener, lifecycle: Lifecycle) -> Result<bool, shared::Error> {
    let secret = config.common.require_ticket_secret()?;
    let home: HomeId = uuid::Uuid::new_v4();
    let figures = Figures::default();
    let mut metrics = Metrics::new("matchmaker");
    metrics.register("online", "Connected clients", figures.online.clone());
    metrics.register("queue_length", "Clients waiting to be paired", figures.waiting.clone());
    metrics.register("rooms", "Open rooms (matched pairs)", figures.rooms.clone());
    metrics.register("matches", "Pairs made", figures.matches.clone());
    metrics.register("blocks", "Blocks made by this instance's clients", figures.blocks.clone());
    metrics.register("reports", "Reports made by this instance's clients, by reason", figures.reports.clone());
    metrics.register("bans", "Bans made, by reports or by an operator", figures.bans.clone());
    let gate = ConnectionGate::new(&config.limits);
    gate.register(&mut metrics);
    let reports = ReportFigures::register(&mut metrics);
    let metrics = Arc::new(metrics);
    let locals = Arc::new(Locals::default());
    let delivery = Arc::new(Delivery {
        tickets: Tickets::new(secret.as_bytes(), config.common.ticket_ttl),
        resume: ResumeTokens::new(secret.as_bytes()),
        ice_servers: config.ice_servers.clone(),
        turn: config.common.turn.clone(),
        signaling: Signaling::new(home, &config.signaling_url),
    });
    let settings = rules_settings(&config);
    let (queue, commands) = QueueHandle::channel();
    let shell = Shell {
        core: Matchmaking::new(settings, shared::random::ids()),
        home,
        locals: locals.clone(),
        delivery: delivery.clone(),
        figures: figures.clone(),
    };
    let backend = match &config.common.redis_url {
        Some(_) => Some(backend::start(&config, home, shell, queue.clone(), commands, &lifecycle).await?),
        None => {
            tokio::spawn(queue::memory::run(shell, commands));
            None
        }
    };
    let service = Matchmaker {
        home,
        needs: Needs {
            queue: queue.clone(),
            locals,
            delivery,
            auth: Arc::new(Auth::new(config.auth_jwt_secret.as_deref())),
            reports,
        },
        limits: config.limits.clone(),
        resume_grace_secs: config.common.resume_grace.as_secs(),
        features: config.features(),
    };
    let server = Server {
        service: Arc::new(service),
        routes: assets::with_security_headers(
            routes::all(lifecycle.clone(), metrics.clone(), queue.clone(), Arc::new(config.clone())),
            &config,
        ),
        origins: config.common.allowed_origins.clone(),
        limits: SocketLimits::new(&config.common, &config.limits),
        gate,
        lifecycle: lifecycle.clone(),
        metrics,
        polls: Default::default(),
    };
    server.run(listener).await;
    // Clients that are not in a chat move to another instance now; the others at the end.
    queue.apply(rules::matchmaking::Input::Drain { home }).await;
    let drained = lifecycle.wait(config.common.shutdown_grace).await;
    if let Some(backend) = backend {
        backend.stop().await;
    }
    Ok(drained)
}

/// The rules' settings from the configuration.
fn rules_settings(config: &Config) -> Settings {
    Settings {
        requeue_on_partner_leave: config.requeue_on_partner_leave,
        rematch_cooldown: u64::try_from(config.rematch_cooldown.as_millis()).unwrap_or(u64::MAX),
        interest_wait: u64::try_from(config.interest_wait.as_millis()).unwrap_or(u64::MAX),
        resume_grace: u64::try_from(config.common.resume_grace.as_millis()).unwrap_or(u64::MAX),
        safety: config.safety.rules,
        ..Settings::default()
    }
}

/// The socket side of the matchmaker.
struct Matchmaker {
    home: HomeId,
    needs: Needs,
    /// `NEXT_PER_MINUTE` and `NEXT_BURST` for each session.
    limits: Limits,
    resume_grace_secs: u64,
    features: Vec<&'static str>,
}

impl SocketService for Matchmaker {
    type Session = ClientSession;

    async fn open(&self, outbox: Outbox, request: SocketRequest) -> ClientSession {
        let id = shared::random::uuid();
        let conn = Conn::new(self.home, outbox.id().0);
        tracing::debug!(client = %id, "client connected");
        let host = request.host.map(Arc::from);
        let rooms = Arc::new(Reportable::default());
        self.needs.locals.insert(conn.socket, Local { outbox: outbox.clone(), host, rooms: rooms.clone() });
        let resume = self.resume_grace_secs > 0;
        let token = resume.then(|| self.needs.delivery.resume_token(id, 0));
        outbox.send(&ServerMessage::Ready {
            client_id: id,
            protocol: PROTOCOL_VERSION,
            features: &self.features,
            resume_token: token.as_deref(),
            resume_grace_secs: resume.then_some(self.resume_grace_secs),
        });
        let address = request.address.map(|ip| ip.to_string());
        self.needs.queue.apply(Input::Connect { conn, client: id, address }).await;
        ClientSession::new(conn, id, outbox, rooms, &self.needs, &self.limits)
    }
}
