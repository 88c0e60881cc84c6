//! What is being measured, and how a client gets a partner and a channel to it there.
//!
//! - Strangers: `ready` from the matchmaker, `available`, `matched` (room, ticket, signaling
//!   URL), then a signaler socket that joins the room: signals go over that second socket.
//! - Bare relay: connect; the relay pairs sockets in arrival order and says `matched`; signals go
//!   over the same socket, forwarded as they are (no `from`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{self, ClientError, Endpoint, Ws};
use crate::wire::{self, Incoming};

/// Which kind of server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The matchmaker and the signaler.
    Strangers,
    /// The bare relay.
    Bare,
}

impl Kind {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Strangers => "strangers",
            Kind::Bare => "bare",
        }
    }
}

/// A server to load.
#[derive(Debug)]
pub struct Target {
    kind: Kind,
    /// The matchmaker (or its instances, taken in turn), or the bare relay.
    entries: Vec<Endpoint>,
    /// Which entry the next client takes.
    next_entry: AtomicUsize,
    /// `--signaler`: used instead of `matched.signalingUrl`; with two, initiators join on the
    /// first and their partners on the second.
    signaler_override: Vec<Endpoint>,
    /// Signaling URLs already resolved.
    resolved: Mutex<HashMap<String, Endpoint>>,
    allow_remote: bool,
    /// How long one step (a connect, an answer) may take.
    step: Duration,
}

/// A client that has a partner.
#[derive(Debug)]
pub struct Matched {
    /// The matchmaker socket (the only socket, for the bare relay).
    pub ws: Ws,
    /// This client's id.
    pub me: String,
    /// The partner's id.
    pub partner: String,
    /// Whether this side speaks first.
    pub initiator: bool,
    /// The room (empty for the bare relay).
    pub room: String,
    /// The ticket (empty for the bare relay).
    pub ticket: String,
    /// Where to join (empty for the bare relay).
    pub signaling_url: String,
    /// When connecting began.
    pub started: Instant,
    /// When `matched` arrived.
    pub matched_at: Instant,
}

/// A matched client with a channel to its partner.
#[derive(Debug)]
pub struct Peer {
    /// Where signals go: the signaler socket, or the bare relay socket.
    pub channel: Ws,
    /// The matchmaker socket, held open while the peer lives (none for the bare relay).
    pub matchmaker: Option<Ws>,
    /// This client's id.
    pub me: String,
    /// The partner's id.
    pub partner: String,
    /// Whether this side speaks first.
    pub initiator: bool,
    /// When connecting began and when `matched` arrived.
    pub started: Instant,
    /// When `matched` arrived.
    pub matched_at: Instant,
}

impl Peer {
    /// The pair's name both sides agree on: the initiator's id.
    pub fn pair(&self) -> &str {
        if self.initiator {
            &self.me
        } else {
            &self.partner
        }
    }
}

impl Target {
    /// A target whose first hop is `entries` (taken in turn; at least one).
    pub fn new(
        kind: Kind,
        entries: Vec<Endpoint>,
        signaler_override: Vec<Endpoint>,
        allow_remote: bool,
        step: Duration,
    ) -> Self {
        Target {
            kind,
            entries,
            next_entry: AtomicUsize::new(0),
            signaler_override,
            resolved: Mutex::new(HashMap::new()),
            allow_remote,
            step,
        }
    }

    /// Which kind of server.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The matchmaker or the bare relay (the first, when there are several).
    pub fn entry(&self) -> &Endpoint {
        &self.entries[0]
    }

    /// How long one step may take.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// A deadline one step from now.
    pub fn step_deadline(&self) -> Instant {
        Instant::now() + self.step
    }

    /// Whether relayed signals say who sent them.
    pub fn stamps_sender(&self) -> bool {
        self.kind == Kind::Strangers
    }

    /// Connects to the entry and, for the matchmaker, waits for `ready`. Returns the socket and
    /// this client's id (empty for the bare relay, which says it in `matched`).
    ///
    /// # Errors
    /// What the connection or the greeting met.
    pub async fn connect(&self, source: Option<IpAddr>) -> Result<(Ws, String), ClientError> {
        let entry = &self.entries[self.next_entry.fetch_add(1, Ordering::Relaxed) % self.entries.len()];
        let mut ws = tokio::time::timeout(self.step, entry.connect(source))
            .await
            .map_err(|_| ClientError::Timeout("connect"))??;
        if self.kind == Kind::Bare {
            return Ok((ws, String::new()));
        }
        let text = client::recv(&mut ws, self.step_deadline(), "ready").await?;
        match Incoming::parse(&text, "ready")? {
            Incoming::Ready { client_id } => Ok((ws, client_id)),
            other => Err(other.into_error("ready")),
        }
    }

    /// Asks the matchmaker for a partner (nothing to ask the bare relay).
    ///
    /// # Errors
    /// A socket error.
    pub async fn ask(&self, ws: &mut Ws, message: &'static str) -> Result<(), ClientError> {
        if self.kind == Kind::Strangers {
            client::send(ws, message).await?;
        }
        Ok(())
    }

    /// Waits for `matched` until `deadline`, skipping `queued` (and, when `skip_ended`, news of
    /// earlier partners that left). `started` is when this client began looking.
    ///
    /// # Errors
    /// Timeout, a closed socket, or a message that does not belong here.
    pub async fn wait_matched(
        &self,
        mut ws: Ws,
        me: String,
        started: Instant,
        deadline: Instant,
        skip_ended: bool,
    ) -> Result<Matched, ClientError> {
        loop {
            let text = client::recv(&mut ws, deadline, "matched").await?;
            match Incoming::parse(&text, "matched")? {
                Incoming::Queued => {}
                Incoming::PartnerLeft { .. } | Incoming::Left | Incoming::Error { .. } if skip_ended => {}
                Incoming::Matched { room_id, partner_id, initiator, signaling_url, ticket, client_id } => {
                    let me = if me.is_empty() { client_id } else { me };
                    return Ok(Matched {
                        ws,
                        me,
                        partner: partner_id,
                        initiator,
                        room: room_id,
                        ticket,
                        signaling_url,
                        started,
                        matched_at: Instant::now(),
                    });
                }
                other => return Err(other.into_error("matched")),
            }
        }
    }

    /// Connects, becomes available and waits for a partner.
    ///
    /// # Errors
    /// What any step met.
    pub async fn match_one(&self, source: Option<IpAddr>, deadline: Instant) -> Result<Matched, ClientError> {
        let started = Instant::now();
        let (mut ws, me) = self.connect(source).await?;
        self.ask(&mut ws, wire::AVAILABLE).await?;
        self.wait_matched(ws, me, started, deadline, false).await
    }

    /// Opens the signaler socket of a match and joins its room; `None` for the bare relay,
    /// whose socket is already the channel.
    ///
    /// # Errors
    /// What connecting or joining met (`bad-ticket` included).
    pub async fn join(&self, matched: &Matched, source: Option<IpAddr>) -> Result<Option<Ws>, ClientError> {
        if self.kind == Kind::Bare {
            return Ok(None);
        }
        let endpoint = match self.signaler_override.as_slice() {
            [first, second, ..] => if matched.initiator { first } else { second }.clone(),
            _ => self.signaler(&matched.signaling_url).await?,
        };
        let mut ws = tokio::time::timeout(self.step, endpoint.connect(source))
            .await
            .map_err(|_| ClientError::Timeout("connect"))??;
        client::send(&mut ws, wire::join(&matched.room, &matched.ticket)).await?;
        let deadline = self.step_deadline();
        loop {
            let text = client::recv(&mut ws, deadline, "joined").await?;
            match Incoming::parse(&text, "joined")? {
                Incoming::Joined { peer_id } if peer_id == matched.me => return Ok(Some(ws)),
                Incoming::Joined { peer_id } => {
                    return Err(ClientError::Integrity(format!("joined as {peer_id}, expected {}", matched.me)))
                }
                Incoming::PeerJoined => {}
                other => return Err(other.into_error("joined")),
            }
        }
    }

    /// A matched client with its channel: [`Target::match_one`] then [`Target::join`].
    ///
    /// # Errors
    /// What any step met.
    pub async fn peer(&self, source: Option<IpAddr>, deadline: Instant) -> Result<Peer, ClientError> {
        let matched = self.match_one(source, deadline).await?;
        let channel = self.join(&matched, source).await?;
        Ok(match channel {
            Some(channel) => Peer {
                channel,
                matchmaker: Some(matched.ws),
                me: matched.me,
                partner: matched.partner,
                initiator: matched.initiator,
                started: matched.started,
                matched_at: matched.matched_at,
            },
            None => Peer {
                channel: matched.ws,
                matchmaker: None,
                me: matched.me,
                partner: matched.partner,
                initiator: matched.initiator,
                started: matched.started,
                matched_at: matched.matched_at,
            },
        })
    }

    /// The signaler to use for `url`: `--signaler` when given, else `url` resolved once.
    ///
    /// # Errors
    /// [`ClientError::Url`].
    pub async fn signaler(&self, url: &str) -> Result<Endpoint, ClientError> {
        if let Some(endpoint) = self.signaler_override.first() {
            return Ok(endpoint.clone());
        }
        if let Some(endpoint) = self.resolved.lock().ok().and_then(|map| map.get(url).cloned()) {
            return Ok(endpoint);
        }
        let endpoint = Endpoint::resolve(url, self.allow_remote).await?;
        if let Ok(mut map) = self.resolved.lock() {
            map.insert(url.to_owned(), endpoint.clone());
        }
        Ok(endpoint)
    }
}
