//! The matchmaker's rules: who waits, who is paired with whom, what a dropped socket keeps.
//!
//! A shell feeds [`Matchmaking::apply`] one [`Input`] at a time with the time, and
//! [`Matchmaking::tick`] when [`Matchmaking::next_deadline`] falls due; after each it drains
//! [`Matchmaking::outputs`]: what to tell which socket, which presence to confirm, which socket
//! to close. Clients are known by their socket ([`Conn`]) at the edge; a resumed client keeps
//! its id on a new socket.
//!
//! The rules, in the order the contract gives them:
//! - FIFO: of the clients that may be paired, the one that has waited longest is paired first;
//!   nobody is paired with itself or in two rooms; the one that waited longer makes the offer.
//! - No ghost matches: a pair is announced only after the instances holding both sockets
//!   confirm both are still there ([`Output::Confirm`]); if one is not, the other goes back to
//!   its place at the head of the queue and never hears of it.
//! - `next` ends a match, the partner hears `partner-left`; both are queued again (the partner
//!   only with `requeue_on_partner_leave`). `leave` leaves queue and match; the socket stays.
//! - Interests: a client with interests is paired only with someone who shares one, until it
//!   has waited its interest wait; after that, or without interests, with anyone who would take
//!   it. FIFO holds within what both sides allow. `matched` names the interests they share.
//! - No instant rematch: two clients whose match ended are not paired with each other again
//!   for `rematch_cooldown`, even if nobody else waits; they wait, and are paired when it ends.
//! - Block and report: `block` ends the match as `next` does (or, right after a match ended,
//!   refers to that last partner) and the two are never paired again while either exists; two
//!   authenticated users stay apart for the block time. `report` is a block plus a report kept
//!   for operators; enough different reporters within the window ban the reported (see
//!   [`safety`]). A banned client's match ends, it leaves the queue, and its `available`,
//!   `next` and `resume` are refused until the ban ends.
//! - A socket that ends without a close frame leaves its client away for the grace window:
//!   it keeps its place (but is not paired) or its match (the partner hears `partner-away`).
//!   A resume on a new socket brings it back; when the window ends it has left.
//! - A clean close, or any close with no grace window, is a `leave` at once.
//! - Drain: when an instance shuts down on purpose, its clients that are not in a chat are
//!   closed with 1012 ([`Closing::Restart`]) at once, so that they resume on another instance
//!   and keep their place; they are not paired meanwhile. A chatting client stays until its
//!   chat ends: then it is closed too, with 1001 if it ended the chat with `leave`, else 1012.

mod client;
mod queue;
pub mod safety;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use self::client::{Client, LastMatch, Standing};
use self::queue::Queue;
use self::safety::{Ban, Identity, Reason, Report, Safety, SafetySettings, UserPair};
use crate::closing::Closing;
use crate::ids::{ClientId, Conn, HomeId, Ids, RoomId};
use crate::time::Millis;
use crate::timers::Timers;

/// Clients one client keeps as blocked, at most (the oldest block goes first).
pub const MAX_BLOCKED_PER_CLIENT: usize = 256;

/// How the rules are tuned: the operator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `REQUEUE_ON_PARTNER_LEAVE`: a client whose partner left is queued again by itself.
    pub requeue_on_partner_leave: bool,
    /// `RESUME_GRACE_SECS` in ms: how long a dropped client stays away before it has left; 0
    /// turns resume off (a drop is a leave).
    pub resume_grace: Millis,
    /// How long an instance may take to confirm a socket before it counts as gone.
    pub confirm_timeout: Millis,
    /// `REMATCH_COOLDOWN_SECS` in ms: two clients whose match ended are not paired with each
    /// other again for this long; 0 lets them be paired again at once.
    pub rematch_cooldown: Millis,
    /// `INTEREST_WAIT_SECS` in ms: how long a client with interests waits for someone who shares
    /// one, when it does not say.
    pub interest_wait: Millis,
    /// Blocks, reports and bans.
    pub safety: SafetySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            requeue_on_partner_leave: true,
            resume_grace: 20_000,
            confirm_timeout: 3_000,
            rematch_cooldown: 30_000,
            interest_wait: 10_000,
            safety: SafetySettings::default(),
        }
    }
}

/// What a socket asks, or what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A socket opened: its client (the id `ready` named) exists from now on, idle.
    Connect {
        /// The socket.
        conn: Conn,
        /// The id the shell gave it.
        client: ClientId,
        /// Its address key, when the shell knows it.
        address: Option<String>,
    },
    /// `auth` succeeded on the socket: its client is this user.
    Identify {
        /// The socket.
        conn: Conn,
        /// The user id.
        user: String,
    },
    /// `block`.
    Block {
        /// The socket.
        conn: Conn,
    },
    /// `report`.
    Report {
        /// The socket.
        conn: Conn,
        /// Why.
        reason: Reason,
        /// What the reporter wrote.
        note: Option<String>,
    },
    /// An operator bans someone.
    Ban {
        /// The ban.
        ban: Ban,
    },
    /// An operator lifts a ban.
    Unban {
        /// The ban's id.
        id: uuid::Uuid,
    },
    /// `available`.
    Available {
        /// The socket.
        conn: Conn,
    },
    /// The `interests` (and `interestWaitSecs`) an `available` or `next` carried; applied just
    /// before it, and kept until the next one that carries them.
    Interests {
        /// The socket.
        conn: Conn,
        /// Lower-cased, without duplicates (empty: anything); `None`: as they were.
        interests: Option<Vec<String>>,
        /// How long to wait for someone who shares one; `None` with new interests: the
        /// operator's default, else as it was.
        wait: Option<Millis>,
    },
    /// `next`.
    Next {
        /// The socket.
        conn: Conn,
    },
    /// `leave`.
    Leave {
        /// The socket.
        conn: Conn,
    },
    /// The socket ended. `clean`: the client closed it (1000/1001), so it has left; otherwise
    /// (a drop, a ping timeout) it is away for the grace window.
    Closed {
        /// The socket.
        conn: Conn,
        /// Whether the client said goodbye.
        clean: bool,
    },
    /// `resume` with a token whose signature the shell checked: `client` at `generation`.
    Resume {
        /// The new socket.
        conn: Conn,
        /// The client the token names.
        client: ClientId,
        /// The token's generation.
        generation: u32,
    },
    /// The answer to an [`Output::Confirm`].
    Presence {
        /// The socket asked about.
        conn: Conn,
        /// The check it answers.
        check: u64,
        /// Whether the socket is still open.
        present: bool,
    },
    /// An instance is gone (it died or shut down): its sockets are gone without a goodbye.
    HomeGone {
        /// The instance.
        home: HomeId,
    },
    /// An instance is shutting down on purpose: its clients move elsewhere (see the drain rule).
    Drain {
        /// The instance.
        home: HomeId,
    },
}

/// What a client is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// It waits in the queue; `waiting` clients wait in all.
    Queued {
        /// How many wait.
        waiting: usize,
    },
    /// It has a partner.
    Matched {
        /// The room.
        room: RoomId,
        /// The partner.
        partner: ClientId,
        /// Whether it makes the offer.
        initiator: bool,
        /// Whose instance's signaler both partners use.
        via: HomeId,
        /// The interests the two share (empty: a random match).
        common: Vec<String>,
    },
    /// The partner ended the match, or left for good.
    PartnerLeft {
        /// The room that ended.
        room: RoomId,
    },
    /// The partner's socket dropped; it may come back within the grace window.
    PartnerAway {
        /// The room.
        room: RoomId,
    },
    /// The partner came back.
    PartnerBack {
        /// The room.
        room: RoomId,
    },
    /// Answer to `leave`.
    Left,
    /// Answer to `block`.
    Blocked,
    /// Answer to `report`.
    Reported {
        /// Why it reported (for the shell's counts).
        reason: Reason,
    },
    /// The socket is now this client, at this standing; its next token has `generation`.
    Resumed {
        /// The client the socket now is.
        client: ClientId,
        /// Where it stands.
        state: ResumedState,
        /// The generation of its next resume token.
        generation: u32,
    },
    /// A request was refused; nothing changed.
    Refused(Refusal),
}

/// Where a resumed client stands, as `resumed` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResumedState {
    /// Not looking.
    Idle,
    /// In the queue.
    Queued,
    /// In a match (a `matched` follows).
    Matched,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// `available` while matched.
    AlreadyMatched,
    /// `resume` with a token that is unknown, used, or whose client has left.
    ResumeFailed,
    /// `block` or `report` with no current or last partner.
    NoPartner,
    /// The client is banned from matching for this many more seconds (rounded up). Also said
    /// unasked when a ban falls on a client.
    Banned {
        /// Seconds left.
        retry_after_secs: u64,
    },
}

/// What the shell is to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// Tell the client on `to` about `event`.
    Send {
        /// The socket.
        to: Conn,
        /// The client it is (after a resume, the resumed one).
        client: ClientId,
        /// What to tell.
        event: Event,
    },
    /// Ask the instance holding `to` whether the socket is still open, and answer with
    /// [`Input::Presence`] (or not at all if the instance is gone: the check times out).
    Confirm {
        /// The socket.
        to: Conn,
        /// The check to answer.
        check: u64,
    },
    /// Close `to` with code 4000: the client resumed on another socket.
    Replace {
        /// The old socket.
        to: Conn,
    },
    /// Close `to`, a socket of a draining instance, as `code` says.
    Close {
        /// The socket.
        to: Conn,
        /// How.
        code: Closing,
    },
}

impl Output {
    /// The socket it is about.
    pub fn to(&self) -> Conn {
        match self {
            Output::Send { to, .. }
            | Output::Confirm { to, .. }
            | Output::Replace { to }
            | Output::Close { to, .. } => *to,
        }
    }
}

/// Counts for `/api/stats` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clients with a socket open.
    pub online: usize,
    /// Clients waiting (present or away).
    pub waiting: usize,
    /// Open matches.
    pub rooms: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The client's grace window may be over.
    Away(ClientId),
    /// The client's presence check may have gone unanswered.
    Check(ClientId, u64),
    /// A rematch cooldown of the client's may be over: it may be pairable now.
    Cooldown(ClientId),
    /// The client's interest wait may be over: anyone may do now.
    InterestWait(ClientId),
    /// A ban may be over.
    BanEnds,
    /// A block between two users may be over: their waiting clients may be pairable now.
    UserBlockEnds(UserPair),
}

/// The queue, the matches, and every client.
#[derive(Debug)]
pub struct Matchmaking {
    settings: Settings,
    clients: HashMap<ClientId, Client>,
    by_conn: HashMap<Conn, ClientId>,
    queue: Queue,
    timers: Timers<Timer>,
    ids: Ids,
    safety: Safety,
    next_seq: u64,
    next_check: u64,
    waiting: usize,
    rooms: usize,
    out: Vec<Output>,
    /// Clients that may have become pairable during this step: paired at its end, oldest
    /// first, so that what happens at one instant is settled in arrival order.
    unsettled: Vec<ClientId>,
    /// Clients whose record changed since the last [`Matchmaking::take_changes`], when tracked.
    changed: Option<Vec<ClientId>>,
    /// Instances draining. (Kept by the owner of the queue alone: an owner that takes over
    /// meanwhile does not know of them, and their chatting clients then stay until their
    /// instance closes them with 1001.)
    draining: Vec<HomeId>,
    /// Clients of draining instances to close at the end of the step, and how.
    closing: Vec<(ClientId, Closing)>,
}

impl Matchmaking {
    /// Nobody yet. `ids` makes the room ids.
    pub fn new(settings: Settings, mut ids: Ids) -> Self {
        // Checks are numbered from a random start, so that a late answer to a check of an
        // earlier owner of the queue cannot pass for the answer to one of ours.
        let next_check = ids.uuid().as_u64_pair().0 >> 2;
        Matchmaking {
            settings,
            clients: HashMap::new(),
            by_conn: HashMap::new(),
            queue: Queue::default(),
            timers: Timers::default(),
            ids,
            safety: Safety::new(settings.safety).tracking(),
            next_seq: 1,
            next_check,
            waiting: 0,
            rooms: 0,
            out: Vec::new(),
            unsettled: Vec::new(),
            changed: None,
            draining: Vec::new(),
            closing: Vec::new(),
        }
    }

    /// The settings the rules run with.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Records which clients change, for a shell that keeps the records elsewhere.
    pub fn track_changes(mut self) -> Self {
        self.changed = Some(Vec::new());
        self
    }

    /// Rebuilds the state from the records another owner kept, at `now`: waiting clients keep
    /// their order, matches whose two records agree stay matched, a match being confirmed goes
    /// back to the queue, and a record that names a partner who does not name it back ends its
    /// match (`partner-left`, as if the partner had left).
    pub fn restore(
        settings: Settings,
        ids: Ids,
        now: Millis,
        records: impl IntoIterator<Item = (ClientId, Client)>,
        safety: safety::Records,
    ) -> Self {
        let mut mm = Matchmaking::new(settings, ids);
        mm.safety = Safety::restore(settings.safety, safety).tracking();
        mm.arm_ban_end();
        let blocks: Vec<(UserPair, Millis)> = mm.safety.user_blocks().map(|(p, u)| (p.clone(), u)).collect();
        for (pair, until) in blocks {
            mm.timers.at(until, Timer::UserBlockEnds(pair));
        }
        mm.clients = records.into_iter().collect();
        for client in mm.clients.values_mut() {
            if let Standing::Confirming { seq, since, .. } = client.standing {
                client.standing = Standing::Waiting { seq, since };
            }
            if let Some(seq) = client.seq() {
                mm.next_seq = mm.next_seq.max(seq + 1);
            }
        }
        let mut broken = Vec::new();
        let mut matched = 0;
        for (id, client) in &mm.clients {
            for (_, until) in &client.met {
                mm.timers.at(*until, Timer::Cooldown(*id));
            }
            if let (false, Standing::Waiting { since, .. }) = (client.interests.is_empty(), client.standing) {
                mm.timers.at(since.saturating_add(client.interest_wait), Timer::InterestWait(*id));
            }
            if client.present {
                mm.by_conn.insert(client.conn, *id);
            } else {
                let since = client.away_since.unwrap_or(now);
                mm.timers.at(since.saturating_add(mm.settings.resume_grace), Timer::Away(*id));
            }
            match client.standing {
                Standing::Waiting { seq, .. } => {
                    mm.waiting += 1;
                    if client.present {
                        mm.queue.insert(seq, *id);
                    }
                }
                Standing::Matched { partner, room, .. } => {
                    let agrees = mm.clients.get(&partner).is_some_and(|p| {
                        matches!(p.standing, Standing::Matched { partner: back, room: r, .. } if back == *id && r == room)
                    });
                    if agrees {
                        matched += 1;
                    } else {
                        broken.push((*id, room));
                    }
                }
                _ => {}
            }
        }
        mm.rooms = matched / 2;
        for (id, room) in broken {
            mm.set_standing(id, Standing::Idle);
            mm.send(id, Event::PartnerLeft { room });
            mm.after_partner_left(id, now);
        }
        for (_, id) in mm.queue.iter().collect::<Vec<_>>() {
            mm.settle(id);
        }
        mm.settle_all(now);
        mm
    }

    /// Applies one input at `now`. What to do about it is in [`Matchmaking::outputs`].
    pub fn apply(&mut self, now: Millis, input: Input) {
        self.apply_one(now, input);
        self.settle_all(now);
        self.close_drained();
    }

    fn apply_one(&mut self, now: Millis, input: Input) {
        match input {
            Input::Connect { conn, client, address } => self.connect(conn, client, address),
            Input::Identify { conn, user } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    if let Some(client) = self.clients.get_mut(&id) {
                        client.identity.user = Some(user);
                    }
                    self.touch(id);
                    self.enforce_bans(now);
                }
            }
            Input::Block { conn } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    self.block(id, None, now);
                }
            }
            Input::Report { conn, reason, note } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    self.block(id, Some((reason, note)), now);
                }
            }
            Input::Ban { ban } => {
                self.safety.add_ban(ban);
                self.arm_ban_end();
                self.enforce_bans(now);
            }
            Input::Unban { id } => {
                self.safety.lift(id);
            }
            Input::Available { conn } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    if !self.refuse_if_banned(id, now) {
                        self.available(id, now);
                    }
                }
            }
            Input::Interests { conn, interests, wait } => {
                let default_wait = self.settings.interest_wait;
                if let Some(client) = self.by_conn.get(&conn).and_then(|id| self.clients.get_mut(id)) {
                    if let Some(interests) = interests {
                        client.interests = interests;
                        client.interest_wait = wait.unwrap_or(default_wait);
                    } else if let Some(wait) = wait {
                        client.interest_wait = wait;
                    }
                }
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    self.touch(id);
                    self.arm_interest_wait(id);
                    self.settle(id);
                }
            }
            Input::Next { conn } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    if !self.refuse_if_banned(id, now) {
                        self.next(id, now);
                    }
                }
            }
            Input::Leave { conn } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    self.leave(id, now);
                    self.send(id, Event::Left);
                    if self.is_draining(conn.home) {
                        self.closing.push((id, Closing::GoingAway));
                    }
                }
            }
            Input::Closed { conn, clean } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    if clean || self.settings.resume_grace == 0 {
                        self.remove(id, now);
                    } else {
                        self.go_away(id, now);
                    }
                }
            }
            Input::Resume { conn, client, generation } => self.resume(conn, client, generation, now),
            Input::Presence { conn, check, present } => {
                if let Some(id) = self.by_conn.get(&conn).copied() {
                    self.presence(id, check, present, now);
                }
            }
            Input::HomeGone { home } => {
                let gone: Vec<ClientId> =
                    self.clients.iter().filter(|(_, c)| c.present && c.conn.home == home).map(|(id, _)| *id).collect();
                for id in gone {
                    if self.settings.resume_grace == 0 {
                        self.remove(id, now);
                    } else {
                        self.go_away(id, now);
                    }
                }
                self.draining.retain(|h| *h != home);
            }
            Input::Drain { home } => {
                if !self.is_draining(home) {
                    self.draining.push(home);
                }
                let idle = self.clients.iter().filter(|(_, c)| {
                    c.present && c.conn.home == home && !matches!(c.standing, Standing::Matched { .. })
                });
                let restart: Vec<(ClientId, Closing)> = idle.map(|(id, _)| (*id, Closing::Restart)).collect();
                self.closing.extend(restart);
            }
        }
    }

    /// Acts on every deadline due by `now`.
    pub fn tick(&mut self, now: Millis) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Away(id) => {
                    let over = self.clients.get(&id).is_some_and(|c| {
                        !c.present && c.away_since.is_some_and(|s| s.saturating_add(self.settings.resume_grace) <= now)
                    });
                    if over {
                        self.remove(id, now);
                    }
                }
                Timer::InterestWait(id) => self.settle(id),
                Timer::BanEnds => {
                    self.safety.expire(now);
                    self.arm_ban_end();
                }
                Timer::UserBlockEnds(pair) => {
                    if self.safety.end_user_block(&pair, now) {
                        let users = [Some(&pair.0), Some(&pair.1)];
                        let waiting: Vec<ClientId> = self
                            .clients
                            .iter()
                            .filter(|(_, c)| c.seq().is_some() && users.contains(&c.identity.user.as_ref()))
                            .map(|(id, _)| *id)
                            .collect();
                        for id in waiting {
                            self.settle(id);
                        }
                    }
                }
                Timer::Cooldown(id) => {
                    if let Some(client) = self.clients.get_mut(&id) {
                        client.met.retain(|(_, until)| *until > now);
                        self.touch(id);
                        self.settle(id);
                    }
                }
                Timer::Check(id, check) => {
                    let unanswered = self.clients.get(&id).is_some_and(
                        |c| matches!(c.standing, Standing::Confirming { check: k, confirmed: false, .. } if k == check),
                    );
                    if unanswered {
                        self.presence(id, check, false, now);
                    }
                }
            }
        }
        self.settle_all(now);
        self.close_drained();
    }

    /// When [`Matchmaking::tick`] should next be called.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next()
    }

    /// What the last inputs and ticks decided, in order.
    pub fn outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    /// The clients whose records changed since the last call, each with its record now (`None`:
    /// forgotten). Empty unless [`Matchmaking::track_changes`] was asked for.
    pub fn take_changes(&mut self) -> Vec<(ClientId, Option<Client>)> {
        let Some(changed) = self.changed.as_mut() else { return Vec::new() };
        let mut ids = std::mem::take(changed);
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| (id, self.clients.get(&id).cloned())).collect()
    }

    /// The counts of the moment.
    pub fn stats(&self) -> Stats {
        Stats { online: self.by_conn.len(), waiting: self.waiting, rooms: self.rooms }
    }

    /// The reports and bans, for operators.
    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    /// The changes to the reports, bans and blocks between users since the last call. They are
    /// always recorded (they are rare): a shell takes them after every step, to store them or
    /// count them.
    pub fn take_safety_changes(&mut self) -> Vec<safety::Change> {
        self.safety.take_changes()
    }

    /// A client's record.
    pub fn client(&self, id: ClientId) -> Option<&Client> {
        self.clients.get(&id)
    }

    /// Whether `a` and `b` may be paired with each other at `now` (both known, not the same, not
    /// in a rematch cooldown), for checks.
    pub fn may_pair(&self, a: ClientId, b: ClientId, now: Millis) -> bool {
        let (Some(x), Some(y)) = (self.clients.get(&a), self.clients.get(&b)) else { return false };
        a != b && x.may_meet(b, now) && !self.users_apart(x, y, now) && x.takes(y, now) && y.takes(x, now)
    }

    /// The client a socket is.
    pub fn client_on(&self, conn: Conn) -> Option<ClientId> {
        self.by_conn.get(&conn).copied()
    }

    /// Every client, for checks and snapshots.
    pub fn clients(&self) -> impl Iterator<Item = (&ClientId, &Client)> {
        self.clients.iter()
    }

    // ---- the rules -------------------------------------------------------------------------

    fn connect(&mut self, conn: Conn, id: ClientId, address: Option<String>) {
        if self.clients.contains_key(&id) || self.by_conn.contains_key(&conn) {
            return; // a repeated connect changes nothing
        }
        self.clients.insert(id, Client::new(conn, Identity { address, user: None }));
        self.by_conn.insert(conn, id);
        self.touch(id);
    }

    fn available(&mut self, id: ClientId, now: Millis) {
        match self.clients.get(&id).map(|c| &c.standing) {
            Some(Standing::Matched { .. }) => self.send(id, Event::Refused(Refusal::AlreadyMatched)),
            // It does not know of a match being confirmed: to it, it still waits.
            Some(Standing::Waiting { .. } | Standing::Confirming { .. }) => self.send_queued(id),
            Some(Standing::Idle) => self.enqueue(id, now),
            None => {}
        }
    }

    fn next(&mut self, id: ClientId, now: Millis) {
        match self.clients.get(&id).map(|c| c.standing) {
            Some(Standing::Matched { .. }) => {
                let partner = self.end_match(id, now);
                self.enqueue(id, now);
                if let Some(partner) = partner {
                    self.after_partner_left(partner, now);
                }
            }
            Some(_) => self.available(id, now),
            None => {}
        }
    }

    /// Out of the queue and any match; the client stays, idle.
    fn leave(&mut self, id: ClientId, now: Millis) {
        let Some(standing) = self.clients.get(&id).map(|c| c.standing) else { return };
        match standing {
            Standing::Idle => {}
            Standing::Waiting { seq, .. } => {
                self.queue.remove(seq);
                self.waiting -= 1;
                self.set_standing(id, Standing::Idle);
            }
            Standing::Confirming { .. } => {
                self.cancel_confirming(id, false);
                self.waiting -= 1;
                self.set_standing(id, Standing::Idle);
            }
            Standing::Matched { .. } => {
                if let Some(partner) = self.end_match(id, now) {
                    self.after_partner_left(partner, now);
                }
            }
        }
    }

    /// Gone for good: leaves, and is forgotten.
    fn remove(&mut self, id: ClientId, now: Millis) {
        self.leave(id, now);
        if let Some(client) = self.clients.remove(&id) {
            if self.by_conn.get(&client.conn) == Some(&id) {
                self.by_conn.remove(&client.conn);
            }
            self.touch(id);
            for other in client.blocked {
                if let Some(c) = self.clients.get_mut(&other) {
                    c.blocked.retain(|b| *b != id);
                    self.touch(other);
                }
            }
        }
    }

    /// The socket dropped without a goodbye: away for the grace window.
    fn go_away(&mut self, id: ClientId, now: Millis) {
        let Some(client) = self.clients.get_mut(&id) else { return };
        if !client.present {
            return;
        }
        client.present = false;
        client.away_since = Some(now);
        let (conn, standing) = (client.conn, client.standing);
        self.by_conn.remove(&conn);
        self.timers.at(now.saturating_add(self.settings.resume_grace), Timer::Away(id));
        self.touch(id);
        match standing {
            Standing::Waiting { seq, .. } => self.queue.remove(seq),
            Standing::Confirming { .. } => self.cancel_confirming(id, false),
            Standing::Matched { partner, room, .. } => self.send(partner, Event::PartnerAway { room }),
            Standing::Idle => {}
        }
    }

    fn resume(&mut self, conn: Conn, id: ClientId, generation: u32, now: Millis) {
        let valid = self.clients.get(&id).is_some_and(|c| c.generation == generation && c.conn != conn);
        let Some(fresh) = self.by_conn.get(&conn).copied() else { return };
        if !valid {
            self.send(fresh, Event::Refused(Refusal::ResumeFailed));
            return;
        }
        let banned =
            [fresh, id].iter().filter_map(|c| self.clients.get(c)).find_map(|c| self.ban_left(&c.identity, now));
        if let Some(retry_after_secs) = banned {
            self.send(fresh, Event::Refused(Refusal::Banned { retry_after_secs }));
            return;
        }
        // The socket is the resumed client from now on; the client its `ready` named is forgotten.
        self.remove(fresh, now);
        let Some(client) = self.clients.get_mut(&id) else { return };
        let old = client.conn;
        let was_present = client.present;
        client.conn = conn;
        client.present = true;
        client.away_since = None;
        client.generation = client.generation.wrapping_add(1);
        let generation = client.generation;
        if was_present {
            self.by_conn.remove(&old);
            self.out.push(Output::Replace { to: old });
        }
        self.by_conn.insert(conn, id);
        self.touch(id);
        if let Some(Standing::Confirming { .. }) = self.clients.get(&id).map(|c| &c.standing) {
            // Its old socket was being confirmed; start over from its place.
            self.cancel_confirming(id, true);
        }
        let standing = self.clients.get(&id).map(|c| c.standing);
        match standing {
            Some(Standing::Waiting { seq, .. }) => {
                self.send(id, Event::Resumed { client: id, state: ResumedState::Queued, generation });
                self.queue.insert(seq, id);
                self.settle(id);
            }
            Some(Standing::Matched { room, partner, initiator, via }) => {
                self.send(id, Event::Resumed { client: id, state: ResumedState::Matched, generation });
                let common = self.common_interests(id, partner);
                self.send(id, Event::Matched { room, partner, initiator, via, common });
                let partner_present = self.clients.get(&partner).is_some_and(|p| p.present);
                if partner_present {
                    if !was_present {
                        self.send(partner, Event::PartnerBack { room });
                    }
                } else {
                    self.send(id, Event::PartnerAway { room });
                }
            }
            _ => self.send(id, Event::Resumed { client: id, state: ResumedState::Idle, generation }),
        }
    }

    fn presence(&mut self, id: ClientId, check: u64, present: bool, now: Millis) {
        let Some(Standing::Confirming { check: k, confirmed: false, partner, .. }) = self.standing(id) else { return };
        if k != check {
            return;
        }
        if !present {
            // Its socket is gone, and its close is on the way: it is away meanwhile.
            self.go_away(id, now);
            return;
        }
        if let Some(Standing::Confirming { confirmed, .. }) = self.clients.get_mut(&id).map(|c| &mut c.standing) {
            *confirmed = true;
        }
        self.touch(id);
        let partner_confirmed = matches!(self.standing(partner), Some(Standing::Confirming { check: k, confirmed: true, .. }) if k == check);
        if !partner_confirmed {
            return;
        }
        for (me, other) in [(id, partner), (partner, id)] {
            if let Some(Standing::Confirming { room, initiator, via, .. }) = self.standing(me) {
                self.set_standing(me, Standing::Matched { room, partner: other, initiator, via });
            }
        }
        self.waiting -= 2;
        self.rooms += 1;
        // The initiator hears first.
        let first_is_me = matches!(self.standing(id), Some(Standing::Matched { initiator: true, .. }));
        let order = if first_is_me { [id, partner] } else { [partner, id] };
        for me in order {
            if let Some(Standing::Matched { room, partner, initiator, via }) = self.standing(me) {
                let common = self.common_interests(me, partner);
                self.send(me, Event::Matched { room, partner, initiator, via, common });
            }
        }
    }

    /// A match being confirmed falls through: both go back to their places, and whoever is
    /// present may be paired again at once (the partner never hears of the failed match).
    /// `id` itself goes back into the queue only if `requeue_self`.
    fn cancel_confirming(&mut self, id: ClientId, requeue_self: bool) {
        let Some(partner) = self.clients.get(&id).and_then(Client::partner) else { return };
        let mut back = Vec::new();
        for me in [id, partner] {
            let Some(client) = self.clients.get(&me) else { continue };
            if let Standing::Confirming { seq, since, .. } = client.standing {
                let present = client.present;
                self.set_standing(me, Standing::Waiting { seq, since });
                if present && (me != id || requeue_self) {
                    self.queue.insert(seq, me);
                    back.push((seq, me));
                }
            }
        }
        back.sort_unstable();
        for (_, me) in back {
            self.settle(me);
        }
    }

    /// Into the queue at the back (or where it was, if it is already waiting); pairs it if it can.
    fn enqueue(&mut self, id: ClientId, now: Millis) {
        let Some(client) = self.clients.get(&id) else { return };
        if client.seq().is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let present = client.present;
            self.set_standing(id, Standing::Waiting { seq, since: now });
            self.waiting += 1;
            if present {
                self.queue.insert(seq, id);
            }
        }
        self.send_queued(id);
        self.settle(id);
    }

    fn after_partner_left(&mut self, partner: ClientId, now: Millis) {
        if self.settings.requeue_on_partner_leave {
            self.enqueue(partner, now);
        }
    }

    /// Ends `id`'s match, if any: tells the partner, returns who it was. Both are idle after.
    fn end_match(&mut self, id: ClientId, now: Millis) -> Option<ClientId> {
        let Some(Standing::Matched { partner, room, .. }) = self.clients.get(&id).map(|c| c.standing) else {
            return None;
        };
        self.set_standing(id, Standing::Idle);
        if self.clients.contains_key(&partner) {
            self.set_standing(partner, Standing::Idle);
        }
        if self.settings.rematch_cooldown > 0 {
            let until = now.saturating_add(self.settings.rematch_cooldown);
            for (me, other) in [(id, partner), (partner, id)] {
                if let Some(client) = self.clients.get_mut(&me) {
                    client.met.retain(|(_, until)| *until > now);
                    client.met.push((other, until));
                    self.timers.at(until, Timer::Cooldown(me));
                }
            }
        }
        for (me, other) in [(id, partner), (partner, id)] {
            let identity = self.clients.get(&other).map(|c| c.identity.clone()).unwrap_or_default();
            if let Some(client) = self.clients.get_mut(&me) {
                client.last = Some(LastMatch { partner: other, room, identity });
            }
        }
        self.rooms -= 1;
        self.send(partner, Event::PartnerLeft { room });
        Some(partner)
    }

    /// `id` may be pairable now: it is paired at the end of the step.
    fn settle(&mut self, id: ClientId) {
        self.unsettled.push(id);
    }

    /// Pairs every client that became pairable during the step, oldest first, each with the
    /// longest-waiting client it may be paired with; the one that waited longer offers.
    fn settle_all(&mut self, now: Millis) {
        while !self.unsettled.is_empty() {
            let mut ids = std::mem::take(&mut self.unsettled);
            ids.sort_unstable_by_key(|id| self.clients.get(id).and_then(Client::seq));
            for id in ids {
                self.try_pair(id, now);
            }
        }
    }

    fn try_pair(&mut self, id: ClientId, now: Millis) {
        let Some(client) = self.clients.get(&id) else { return };
        let Standing::Waiting { seq, .. } = client.standing else { return };
        if !client.present || self.is_draining(client.conn.home) {
            return;
        }
        // The longest-waiting client both sides allow (usually the first one looked at).
        let (clients, draining) = (&self.clients, &self.draining);
        let found = self.queue.oldest_for(id, |other| {
            clients.get(&other).is_some_and(|c| {
                client.may_meet(other, now)
                    && !self.users_apart(client, c, now)
                    && client.takes(c, now)
                    && c.takes(client, now)
                    && (draining.is_empty() || !draining.contains(&c.conn.home))
            })
        });
        let Some((other_seq, other)) = found else { return };
        let (older, newer) = if other_seq < seq { (other, id) } else { (id, other) };
        self.pair(older, newer, now);
    }

    fn pair(&mut self, initiator: ClientId, responder: ClientId, now: Millis) {
        let room = self.ids.uuid();
        let check = self.next_check;
        self.next_check += 1;
        let Some(via) = self.clients.get(&initiator).map(|c| c.conn.home) else { return };
        for (me, partner, is_initiator) in [(initiator, responder, true), (responder, initiator, false)] {
            let Some(client) = self.clients.get(&me) else { continue };
            let Standing::Waiting { seq, since } = client.standing else { continue };
            let conn = client.conn;
            self.queue.remove(seq);
            self.set_standing(
                me,
                Standing::Confirming {
                    seq,
                    since,
                    check,
                    room,
                    partner,
                    initiator: is_initiator,
                    via,
                    confirmed: false,
                },
            );
            self.out.push(Output::Confirm { to: conn, check });
            self.timers.at(now.saturating_add(self.settings.confirm_timeout), Timer::Check(me, check));
        }
    }

    /// `block` (or, with a reason, `report`): the current or last partner and `id` are never
    /// paired again; a current match ends as `next` ends it.
    fn block(&mut self, id: ClientId, report: Option<(Reason, Option<String>)>, now: Millis) {
        let Some(client) = self.clients.get(&id) else { return };
        let (partner, room, identity, in_match) = match (client.standing, &client.last) {
            (Standing::Matched { partner, room, .. }, _) => {
                let identity = self.clients.get(&partner).map(|p| p.identity.clone()).unwrap_or_default();
                (partner, room, identity, true)
            }
            (_, Some(last)) => (last.partner, last.room, last.identity.clone(), false),
            (_, None) => return self.send(id, Event::Refused(Refusal::NoPartner)),
        };
        let me = client.identity.clone();
        for (a, b) in [(id, partner), (partner, id)] {
            if let Some(c) = self.clients.get_mut(&a) {
                if !c.blocked.contains(&b) {
                    if c.blocked.len() >= MAX_BLOCKED_PER_CLIENT {
                        c.blocked.remove(0);
                    }
                    c.blocked.push(b);
                }
                self.touch(a);
            }
        }
        // A match with that very client being confirmed (a cooldown just ended) falls through.
        if matches!(self.standing(id), Some(Standing::Confirming { partner: p, .. }) if p == partner) {
            self.cancel_confirming(id, true);
        }
        if let (Some(a), Some(b)) = (&me.user, &identity.user) {
            self.safety.block_users(a, b, now);
            let pair = UserPair::new(a, b);
            if let Some(until) = self.safety.user_block_end(&pair) {
                self.timers.at(until, Timer::UserBlockEnds(pair));
            }
        }
        let mut bans = Vec::new();
        match report {
            Some((reason, note)) => {
                let reporter_key = me.address.clone().or_else(|| me.user.clone()).unwrap_or_else(|| id.to_string());
                let report =
                    Report { id: self.ids.uuid(), at: now, reason, note, room, reporter: me, reported: identity };
                bans = self.safety.report(report, reporter_key, now, &mut self.ids);
                self.send(id, Event::Reported { reason });
            }
            None => self.send(id, Event::Blocked),
        }
        if in_match {
            let partner = self.end_match(id, now);
            self.enqueue(id, now);
            if let Some(partner) = partner {
                self.after_partner_left(partner, now);
            }
        }
        if !bans.is_empty() {
            self.arm_ban_end();
            self.enforce_bans(now);
        }
    }

    /// Every client a ban in force falls on leaves its match (the partner hears `partner-left`)
    /// and the queue, and hears that it is banned.
    fn enforce_bans(&mut self, now: Millis) {
        let banned: Vec<(ClientId, u64)> = self
            .clients
            .iter()
            .filter(|(_, c)| !matches!(c.standing, Standing::Idle))
            .filter_map(|(id, c)| self.ban_left(&c.identity, now).map(|secs| (*id, secs)))
            .collect();
        for (id, retry_after_secs) in banned {
            self.leave(id, now);
            self.send(id, Event::Refused(Refusal::Banned { retry_after_secs }));
        }
    }

    /// Refuses a banned client's request; whether it did.
    fn refuse_if_banned(&mut self, id: ClientId, now: Millis) -> bool {
        let left = self.clients.get(&id).and_then(|c| self.ban_left(&c.identity, now));
        if let Some(retry_after_secs) = left {
            self.send(id, Event::Refused(Refusal::Banned { retry_after_secs }));
        }
        left.is_some()
    }

    /// Seconds left (rounded up) of the ban on `who`, if banned.
    fn ban_left(&self, who: &Identity, now: Millis) -> Option<u64> {
        self.safety.banned_until(who, now).map(|until| (until - now).div_ceil(1_000))
    }

    /// Whether two clients' users block each other.
    fn users_apart(&self, a: &Client, b: &Client, now: Millis) -> bool {
        match (&a.identity.user, &b.identity.user) {
            (Some(x), Some(y)) => self.safety.users_blocked(x, y, now),
            _ => false,
        }
    }

    fn arm_ban_end(&mut self) {
        if let Some(at) = self.safety.next_ban_end() {
            self.timers.at(at, Timer::BanEnds);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    fn standing(&self, id: ClientId) -> Option<Standing> {
        self.clients.get(&id).map(|c| c.standing)
    }

    fn set_standing(&mut self, id: ClientId, standing: Standing) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.standing = standing;
            let home = client.conn.home;
            self.touch(id);
            if !matches!(standing, Standing::Matched { .. }) && self.is_draining(home) {
                self.closing.push((id, Closing::Restart));
            }
            if matches!(standing, Standing::Waiting { .. }) {
                self.arm_interest_wait(id);
            }
        }
    }

    /// A waiting client with interests is looked at again when its interest wait ends.
    fn arm_interest_wait(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else { return };
        if let (false, Standing::Waiting { since, .. }) = (client.interests.is_empty(), client.standing) {
            self.timers.at(since.saturating_add(client.interest_wait), Timer::InterestWait(id));
        }
    }

    fn common_interests(&self, a: ClientId, b: ClientId) -> Vec<String> {
        match (self.clients.get(&a), self.clients.get(&b)) {
            (Some(x), Some(y)) => x.common_interests(y),
            _ => Vec::new(),
        }
    }

    fn is_draining(&self, home: HomeId) -> bool {
        !self.draining.is_empty() && self.draining.contains(&home)
    }

    /// Closes the sockets of draining instances whose clients are not (or no longer) in a
    /// chat, after everything the step told them; `GoingAway` wins over `Restart`.
    fn close_drained(&mut self) {
        if self.closing.is_empty() {
            return;
        }
        let mut closing = std::mem::take(&mut self.closing);
        closing.sort_unstable_by_key(|(id, code)| (*id, *code != Closing::GoingAway));
        closing.dedup_by_key(|(id, _)| *id);
        for (id, code) in closing {
            let Some(client) = self.clients.get(&id) else { continue };
            let in_chat = matches!(client.standing, Standing::Matched { .. });
            if client.present && !in_chat && self.is_draining(client.conn.home) {
                self.out.push(Output::Close { to: client.conn, code });
            }
        }
    }

    fn touch(&mut self, id: ClientId) {
        if let Some(changed) = self.changed.as_mut() {
            changed.push(id);
        }
    }

    fn send_queued(&mut self, id: ClientId) {
        let waiting = self.waiting;
        self.send(id, Event::Queued { waiting });
    }

    /// Tells a client something, if its socket is there to hear it.
    fn send(&mut self, id: ClientId, event: Event) {
        if let Some(client) = self.clients.get(&id) {
            if client.present {
                self.out.push(Output::Send { to: client.conn, client: id, event });
            }
        }
    }
}

#[cfg(test)]
mod tests;
