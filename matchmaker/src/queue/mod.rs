//! Where a socket's requests go: to the one task that owns the rules ([`rules::matchmaking`]).
//! Every socket sends it [`Input`]s over one bounded channel, so a pairing is one step that
//! cannot race. In memory that task owns the queue for good ([`memory`]); on Redis one
//! instance at a time owns it and the others forward to it (see [`crate::backend`]).
//!
//! Layout: [`shell`] (the rules with this instance's sockets around them, the same in both
//! builds), [`memory`] (the in-memory owner).

pub mod memory;
pub mod shell;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rules::matchmaking::safety::{Ban, Report};
use rules::matchmaking::Input;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Requests the channel holds before senders wait.
pub const QUEUE_CHANNEL_CAPACITY: usize = 4_096;
/// Requests taken from the channel in one step at most (one commit on Redis).
pub const MAX_BATCH: usize = 512;

/// What a socket (or a route) asks of the queue.
#[derive(Debug)]
pub enum Command {
    /// A request or a socket event, for the rules.
    Apply(Input),
    /// `GET /api/stats`.
    Stats(oneshot::Sender<Stats>),
    /// An operator reads reports or bans.
    Admin(AdminQuery, oneshot::Sender<AdminAnswer>),
}

/// What an operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminQuery {
    /// Reports, newest first: `limit` after skipping `offset`.
    Reports {
        /// How many to skip.
        offset: usize,
        /// How many at most.
        limit: usize,
    },
    /// The bans in force.
    Bans,
}

/// The answer to an [`AdminQuery`]; `Unavailable` when the store did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAnswer {
    /// A page of reports, and how many there are.
    Reports(Vec<Report>, usize),
    /// The bans in force, newest first.
    Bans(Vec<Ban>),
    /// The store did not answer.
    Unavailable,
}

impl AdminAnswer {
    /// The answer to `query` from the rules themselves.
    pub fn from_rules(core: &rules::matchmaking::Matchmaking, query: AdminQuery) -> Self {
        match query {
            AdminQuery::Reports { offset, limit } => {
                let (reports, total) = core.safety().reports(offset, limit);
                AdminAnswer::Reports(reports, total)
            }
            AdminQuery::Bans => AdminAnswer::Bans(core.safety().bans(now_ms())),
        }
    }
}

/// What `GET /api/stats` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Clients connected.
    pub online: i64,
    /// Clients waiting for a partner.
    pub waiting: i64,
    /// Open rooms (matched pairs).
    pub rooms: i64,
}

impl From<rules::matchmaking::Stats> for Stats {
    fn from(stats: rules::matchmaking::Stats) -> Self {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        Stats { online: n(stats.online), waiting: n(stats.waiting), rooms: n(stats.rooms) }
    }
}

/// The figures `/metrics` reports, kept current by whoever owns the queue.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Connected clients.
    pub online: Gauge,
    /// Clients in the queue.
    pub waiting: Gauge,
    /// Open rooms.
    pub rooms: Gauge,
    /// Matches announced to this instance's clients (counted once, on the initiator's side).
    pub matches: Counter,
    /// `block`s this instance's clients made.
    pub blocks: Counter,
    /// `report`s this instance's clients made, by reason.
    pub reports: Family<ReasonLabel, Counter>,
    /// Bans made (by reports, or by an operator), counted by the owner of the queue.
    pub bans: Counter,
}

/// The `reason` label of the report counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ReasonLabel {
    /// The report's reason.
    pub reason: &'static str,
}

impl Figures {
    /// Shows `stats`.
    pub fn show(&self, stats: Stats) {
        self.online.set(stats.online);
        self.waiting.set(stats.waiting);
        self.rooms.set(stats.rooms);
    }
}

/// The way to the queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<Command>,
}

impl QueueHandle {
    /// A handle and the receiver the owning task reads.
    pub fn channel() -> (QueueHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(QUEUE_CHANNEL_CAPACITY);
        (QueueHandle { tx }, rx)
    }

    /// Hands the rules an input, waiting if the queue is behind.
    pub async fn apply(&self, input: Input) {
        // The queue task outlives every socket; a send fails only during teardown.
        let _ = self.tx.send(Command::Apply(input)).await;
    }

    /// A page of reports and how many there are; `None` when the store did not answer.
    pub async fn admin_reports(&self, query: AdminQuery) -> Option<(Vec<Report>, usize)> {
        match self.admin(query).await {
            AdminAnswer::Reports(reports, total) => Some((reports, total)),
            _ => None,
        }
    }

    /// The bans in force; `None` when the store did not answer.
    pub async fn admin_bans(&self) -> Option<Vec<Ban>> {
        match self.admin(AdminQuery::Bans).await {
            AdminAnswer::Bans(bans) => Some(bans),
            _ => None,
        }
    }

    async fn admin(&self, query: AdminQuery) -> AdminAnswer {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Admin(query, tx)).await;
        rx.await.unwrap_or(AdminAnswer::Unavailable)
    }

    /// The figures of the whole service.
    pub async fn stats(&self) -> Stats {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Stats(tx)).await;
        rx.await.unwrap_or_default()
    }
}

/// Milliseconds since the Unix epoch: the time the rules are given.
pub fn now_ms() -> rules::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
