//! One room's rules: who is in it, who may come in, who hears what, what waits for whom.
//!
//! Members are known by their socket ([`Conn`]); the shell has checked the ticket (or the
//! code) and says which peer a socket is. What the room decides comes out of
//! [`Room::outputs`] in order, so one sender's messages reach each peer in the order sent.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, HoldFull};
use crate::closing::Closing;
use crate::ids::{Conn, HomeId, PeerId, RoomId};
use crate::time::Millis;

/// What the room needs of a relayed message: it is cheap to clone (it may go to seven peers)
/// and has a size (holds are bounded in bytes).
pub trait Payload: Clone {
    /// Its size in bytes.
    fn size(&self) -> usize;
}

impl Payload for String {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Payload for std::rc::Rc<str> {
    fn size(&self) -> usize {
        self.len()
    }
}

impl Payload for std::sync::Arc<str> {
    fn size(&self) -> usize {
        self.len()
    }
}

/// How a room is tuned: the operator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    /// How long a peer whose socket dropped keeps its seat (0: a drop is a leave).
    pub resume_grace: Millis,
    /// Messages held for one absent peer, at most.
    pub hold_messages: usize,
    /// Bytes held for one absent peer, at most.
    pub hold_bytes: usize,
    /// How long a room joined by code outlives its last peer.
    pub idle: Millis,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings { resume_grace: 20_000, hold_messages: 64, hold_bytes: 64 * 1024, idle: 300_000 }
    }
}

/// What kind of room it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The two strangers the matchmaker paired, admitted by their tickets. What one says before
    /// the other has joined is held for it.
    Matched,
    /// Friends meeting by code, up to `capacity`. Nothing is held for peers that are not there
    /// (except for an away peer), and the room outlives its last peer by the idle time.
    Code {
        /// The code people type.
        code: String,
        /// How many peers it admits.
        capacity: usize,
    },
    /// A matchbox room (`/matchbox/{name}`): peers get server-assigned ids, nothing is held and
    /// a dropped socket has left. With `next`, the room is a pool: each `next` arrivals, in
    /// arrival order, form a group of their own, and peers hear of, and reach, only their group.
    Matchbox {
        /// The room's name in the path.
        name: String,
        /// The group size of a pool (`?next=N`), if it is one.
        next: Option<usize>,
    },
}

impl Kind {
    fn capacity(&self) -> usize {
        match self {
            Kind::Matched => 2,
            Kind::Code { capacity, .. } => *capacity,
            Kind::Matchbox { .. } => usize::MAX,
        }
    }

    /// Whether a dropped socket has left at once (there is no coming back).
    fn drop_is_leave(&self) -> bool {
        matches!(self, Kind::Matchbox { .. })
    }
}

/// What a socket asks of the room, or what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input<T> {
    /// `join` as `peer`, whose ticket admits until `admits_until` (a code room: `Millis::MAX`).
    Join {
        /// The socket.
        conn: Conn,
        /// Who it joins as.
        peer: PeerId,
        /// Until when its ticket admits it.
        admits_until: Millis,
    },
    /// `offer`, `answer` or `ice`, already stamped with its sender: to `to`, or to every other peer.
    Relay {
        /// The sender's socket.
        conn: Conn,
        /// The one peer it is for, if any.
        to: Option<PeerId>,
        /// The message as the peers receive it.
        text: T,
    },
    /// `leave`.
    Leave {
        /// The socket.
        conn: Conn,
    },
    /// The socket ended; `clean` if the client closed it (1000/1001).
    Closed {
        /// The socket.
        conn: Conn,
        /// Whether the client said goodbye.
        clean: bool,
    },
    /// An instance is gone: its sockets dropped without a goodbye.
    HomeGone {
        /// The instance.
        home: HomeId,
    },
    /// An instance is shutting down on purpose: a peer of it that is alone in the room (or comes
    /// to be) is closed with 1012, so that it takes its seat back through another instance.
    Drain {
        /// The instance.
        home: HomeId,
    },
    /// The room changed hands (its owner died) and a socket that joined it before says so: it
    /// is a member again, as it was, and nobody is told (everyone already knew).
    Rejoin {
        /// The socket.
        conn: Conn,
        /// Who it joined as.
        peer: PeerId,
        /// Until when its ticket admits it.
        admits_until: Millis,
    },
}

/// A message the room itself sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Answer to `join`; what was held for the joiner follows.
    Joined {
        /// The room.
        room: RoomId,
        /// Who the socket is in the room.
        peer: PeerId,
        /// The other peers.
        peers: Vec<PeerId>,
    },
    /// A peer came in.
    PeerJoined {
        /// Who.
        peer: PeerId,
    },
    /// A peer left, or its grace window ended.
    PeerLeft {
        /// Who.
        peer: PeerId,
    },
    /// A peer's socket dropped; what is sent to it is held.
    PeerAway {
        /// Who.
        peer: PeerId,
    },
    /// An away peer came back.
    PeerBack {
        /// Who.
        peer: PeerId,
    },
}

/// Why the room refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The room has all the peers it admits.
    RoomFull,
    /// A relay from a socket that is not (or no longer) in the room.
    NotJoined,
    /// What waits for an absent peer is at its bound; the message was dropped.
    HoldFull,
    /// `to` names nobody else in the room.
    UnknownPeer,
    /// An expired ticket, from a peer that is not away.
    TicketExpired,
}

/// What the shell is to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output<T> {
    /// Deliver a relayed message.
    Relay {
        /// The socket.
        to: Conn,
        /// The message.
        text: T,
    },
    /// Send a notice.
    Notice {
        /// The socket.
        to: Conn,
        /// What.
        notice: Notice,
    },
    /// Refuse a request.
    Refuse {
        /// The socket that asked.
        to: Conn,
        /// Why.
        refusal: Refusal,
    },
    /// Close a socket another one replaced, with code 4000.
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

impl<T> Output<T> {
    /// The socket it is for.
    pub fn to(&self) -> Conn {
        match self {
            Output::Relay { to, .. }
            | Output::Notice { to, .. }
            | Output::Refuse { to, .. }
            | Output::Replace { to }
            | Output::Close { to, .. } => *to,
        }
    }
}

/// One member.
#[derive(Debug, Clone)]
struct Member<T> {
    peer: PeerId,
    conn: Conn,
    present: bool,
    away_since: Option<Millis>,
    /// What the others sent while it was away.
    held: Hold<T>,
    /// Closed because its instance drains (told once).
    drained: bool,
    /// Its group: peers hear of and reach only their own (0 in every room but a matchbox pool).
    group: u32,
}

impl<T> Member<T> {
    /// A peer that just came in on `conn`, into `group`.
    fn new(peer: PeerId, conn: Conn, group: u32) -> Self {
        Member { peer, conn, present: true, away_since: None, held: Hold::default(), drained: false, group }
    }
}

/// A room.
#[derive(Debug, Clone)]
pub struct Room<T> {
    id: RoomId,
    kind: Kind,
    settings: RoomSettings,
    members: Vec<Member<T>>,
    /// In a matched room: what was said before the partner first joined, and until when its
    /// ticket can bring it (after that nobody can receive it).
    before_join: Hold<T>,
    admits_until: Millis,
    /// When the last peer left (a code room waits `idle` for someone to come back).
    emptied_at: Option<Millis>,
    out: Vec<Output<T>>,
    /// Whether who is in the room (or how) changed since [`Room::take_changed`].
    changed: bool,
    /// Instances draining, with a peer here. (Kept by the owner alone, like the matchmaker's.)
    draining: Vec<HomeId>,
    /// In a matchbox pool: the group arrivals go into until it has `next` peers.
    forming: u32,
}

/// A member as kept outside the process, for another owner to rebuild the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Who.
    pub peer: PeerId,
    /// Its socket.
    pub conn: Conn,
    /// Whether that socket is open.
    pub present: bool,
    /// When it went away.
    pub away_since: Option<Millis>,
    /// Its group (see [`Kind::Matchbox`]).
    #[serde(default)]
    pub group: u32,
}

/// A room as kept outside the process (held messages are not kept: an owner that dies takes
/// the sockets that sent them with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// What kind of room.
    pub kind: Kind,
    /// Who is in it.
    pub members: Vec<MemberRecord>,
    /// Until when tickets admit to it.
    pub admits_until: Millis,
    /// When the last peer left.
    pub emptied_at: Option<Millis>,
    /// In a matchbox pool: the group that arrivals go into.
    #[serde(default)]
    pub forming: u32,
}

impl<T: Payload> Room<T> {
    /// An empty room, created at `now`.
    pub fn new(id: RoomId, kind: Kind, settings: RoomSettings, now: Millis) -> Self {
        Room {
            id,
            kind,
            settings,
            members: Vec::new(),
            before_join: Hold::default(),
            admits_until: 0,
            emptied_at: Some(now),
            out: Vec::new(),
            changed: true,
            draining: Vec::new(),
            forming: 0,
        }
    }

    /// Rebuilds a room from its record.
    pub fn restore(id: RoomId, settings: RoomSettings, record: RoomRecord) -> Self {
        let members = record
            .members
            .into_iter()
            .map(|m| Member {
                peer: m.peer,
                conn: m.conn,
                present: m.present,
                away_since: m.away_since,
                held: Hold::default(),
                drained: false,
                group: m.group,
            })
            .collect();
        Room {
            id,
            kind: record.kind,
            settings,
            members,
            before_join: Hold::default(),
            admits_until: record.admits_until,
            emptied_at: record.emptied_at,
            out: Vec::new(),
            changed: false,
            draining: Vec::new(),
            forming: record.forming,
        }
    }

    /// The room as it is kept outside the process.
    pub fn record(&self) -> RoomRecord {
        RoomRecord {
            kind: self.kind.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberRecord {
                    peer: m.peer,
                    conn: m.conn,
                    present: m.present,
                    away_since: m.away_since,
                    group: m.group,
                })
                .collect(),
            admits_until: self.admits_until,
            emptied_at: self.emptied_at,
            forming: self.forming,
        }
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// What kind of room it is.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// How many peers are in it (away ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is in it.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The peer a socket is, if it is in the room.
    pub fn peer_on(&self, conn: Conn) -> Option<PeerId> {
        self.members.iter().find(|m| m.conn == conn).map(|m| m.peer)
    }

    /// The sockets of the members, present or not.
    pub fn conns(&self) -> impl Iterator<Item = Conn> + '_ {
        self.members.iter().map(|m| m.conn)
    }

    /// How many messages wait for someone.
    pub fn held(&self) -> usize {
        self.before_join.len() + self.members.iter().map(|m| m.held.len()).sum::<usize>()
    }

    /// Whether the room is over: nobody in it, and (for a code room) nobody came back in time.
    pub fn is_finished(&self, now: Millis) -> bool {
        if !self.members.is_empty() {
            return false;
        }
        match self.kind {
            Kind::Matched | Kind::Matchbox { .. } => true,
            Kind::Code { .. } => self.emptied_at.is_none_or(|at| at.saturating_add(self.settings.idle) <= now),
        }
    }

    /// When [`Room::tick`] should next be called.
    pub fn next_deadline(&self) -> Option<Millis> {
        let away = self
            .members
            .iter()
            .filter_map(|m| m.away_since.map(|at| at.saturating_add(self.settings.resume_grace)))
            .min();
        let held = (!self.before_join.is_empty()).then_some(self.admits_until.saturating_add(1));
        let idle = match (&self.kind, self.members.is_empty(), self.emptied_at) {
            (Kind::Code { .. }, true, Some(at)) => Some(at.saturating_add(self.settings.idle)),
            _ => None,
        };
        [away, held, idle].into_iter().flatten().min()
    }

    /// What the last inputs and ticks decided, in order.
    pub fn outputs(&mut self) -> std::vec::Drain<'_, Output<T>> {
        self.out.drain(..)
    }

    /// Whether its record changed (someone came, went, dropped or came back) since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Applies one input at `now`.
    pub fn apply(&mut self, now: Millis, input: Input<T>) {
        match input {
            Input::Join { conn, peer, admits_until } => self.join(conn, peer, admits_until, now),
            Input::Relay { conn, to, text } => self.relay(conn, to, text, now),
            Input::Leave { conn } => self.leave(conn, now),
            Input::Closed { conn, clean } => {
                if clean || self.settings.resume_grace == 0 || self.kind.drop_is_leave() {
                    self.leave(conn, now);
                } else {
                    self.go_away(conn, now);
                }
            }
            Input::Rejoin { conn, peer, admits_until } => self.rejoin(conn, peer, admits_until),
            Input::Drain { home } => {
                if !self.draining.contains(&home) {
                    self.draining.push(home);
                }
            }
            Input::HomeGone { home } => {
                let gone: Vec<Conn> =
                    self.members.iter().filter(|m| m.present && m.conn.home == home).map(|m| m.conn).collect();
                for conn in gone {
                    self.apply(now, Input::Closed { conn, clean: false });
                }
                self.draining.retain(|h| *h != home);
            }
        }
        self.close_lonely();
    }

    /// A peer of a draining instance that is alone in the room (in a pool: in its group) is
    /// closed with 1012, once: it takes its seat back through another instance.
    fn close_lonely(&mut self) {
        if self.draining.is_empty() {
            return;
        }
        for i in 0..self.members.len() {
            let member = &self.members[i];
            let alone = !self.members.iter().any(|m| m.group == member.group && m.peer != member.peer);
            if alone && member.present && !member.drained && self.draining.contains(&member.conn.home) {
                let member = &mut self.members[i];
                member.drained = true;
                self.out.push(Output::Close { to: member.conn, code: Closing::Restart });
            }
        }
    }

    /// Acts on what is due by `now`: ends grace windows, drops holds nobody can collect.
    pub fn tick(&mut self, now: Millis) {
        let grace = self.settings.resume_grace;
        let over: Vec<Conn> = self
            .members
            .iter()
            .filter(|m| m.away_since.is_some_and(|at| at.saturating_add(grace) <= now))
            .map(|m| m.conn)
            .collect();
        for conn in over {
            self.leave(conn, now);
        }
        self.close_lonely();
        if now > self.admits_until {
            // Nobody can join with an expired ticket: what waits for them never leaves.
            self.before_join.clear();
        }
    }

    fn join(&mut self, conn: Conn, peer: PeerId, admits_until: Millis, now: Millis) {
        let expired = admits_until < now;
        match self.members.iter().position(|m| m.peer == peer) {
            Some(i) if self.members[i].conn == conn && self.members[i].present => {
                // The same socket joined again: nothing changes.
                let peers = self.others(peer);
                self.notice(conn, Notice::Joined { room: self.id, peer, peers });
            }
            Some(i) if !self.members[i].present => {
                // An away peer comes back, with its old ticket or a fresh one.
                let member = &mut self.members[i];
                member.conn = conn;
                member.present = true;
                member.away_since = None;
                member.drained = false;
                let held = std::mem::take(&mut member.held);
                self.changed = true;
                let peers = self.others(peer);
                self.notice(conn, Notice::Joined { room: self.id, peer, peers });
                for text in held.into_texts() {
                    self.out.push(Output::Relay { to: conn, text });
                }
                self.tell_others(peer, Notice::PeerBack { peer });
            }
            Some(_) if expired => self.refuse(conn, Refusal::TicketExpired),
            Some(i) => {
                // A second socket with the same ticket takes the first one's place.
                let old = std::mem::replace(&mut self.members[i].conn, conn);
                self.changed = true;
                self.out.push(Output::Replace { to: old });
                self.before_join.drop_from(old);
                let peers = self.others(peer);
                self.notice(conn, Notice::Joined { room: self.id, peer, peers });
                self.tell_others(peer, Notice::PeerJoined { peer });
            }
            None if expired => self.refuse(conn, Refusal::TicketExpired),
            None if self.members.len() >= self.kind.capacity() => self.refuse(conn, Refusal::RoomFull),
            None => {
                self.admits_until = self.admits_until.max(admits_until);
                self.emptied_at = None;
                let group = self.arrival_group();
                self.members.push(Member::new(peer, conn, group));
                let peers = self.others(peer);
                self.changed = true;
                self.notice(conn, Notice::Joined { room: self.id, peer, peers });
                self.tell_others(peer, Notice::PeerJoined { peer });
                // What the others said before this peer came is for it: right after `joined`.
                let held = self.before_join.take_not_from(peer);
                for text in held {
                    self.out.push(Output::Relay { to: conn, text });
                }
            }
        }
    }

    fn rejoin(&mut self, conn: Conn, peer: PeerId, admits_until: Millis) {
        let capacity = self.kind.capacity();
        let count = self.members.len();
        match self.members.iter_mut().find(|m| m.peer == peer) {
            // It was counted away with its old owner's instance; it never left.
            Some(member) if member.conn == conn && !member.present => {
                member.present = true;
                member.away_since = None;
                self.changed = true;
                self.tell_others(peer, Notice::PeerBack { peer });
            }
            Some(_) => {} // present already, or another socket is this peer now
            None if count < capacity => {
                self.admits_until = self.admits_until.max(admits_until);
                self.emptied_at = None;
                let group = self.forming;
                self.members.push(Member::new(peer, conn, group));
                self.changed = true;
            }
            None => {}
        }
    }

    fn relay(&mut self, conn: Conn, to: Option<PeerId>, text: T, now: Millis) {
        let Some((sender, group)) =
            self.members.iter().find(|m| m.conn == conn && m.present).map(|m| (m.peer, m.group))
        else {
            return self.refuse(conn, Refusal::NotJoined);
        };
        if let Some(to) = to {
            let Some(i) = self.members.iter().position(|m| m.peer == to && m.peer != sender && m.group == group) else {
                return self.refuse(conn, Refusal::UnknownPeer);
            };
            return self.deliver(i, conn, sender, text);
        }
        // Counted, not collected: a relay is the hot path and allocates nothing of its own.
        let mut left = self.members.iter().filter(|m| m.peer != sender && m.group == group).count();
        if left == 0 {
            if self.kind == Kind::Matched && now <= self.admits_until {
                if let Err(HoldFull) = self.before_join.push(sender, conn, text, &self.settings) {
                    self.refuse(conn, Refusal::HoldFull);
                }
            }
            return;
        }
        let mut text = Some(text);
        for i in 0..self.members.len() {
            if self.members[i].peer == sender || self.members[i].group != group {
                continue;
            }
            left -= 1;
            // The last one gets the original, the others a copy.
            let copy = if left == 0 { text.take() } else { text.clone() };
            if let Some(copy) = copy {
                self.deliver(i, conn, sender, copy);
            }
        }
    }

    /// To member `i`: at once if it is there, held if it is away.
    fn deliver(&mut self, i: usize, from_conn: Conn, from: PeerId, text: T) {
        let member = &mut self.members[i];
        if member.present {
            self.out.push(Output::Relay { to: member.conn, text });
        } else if let Err(HoldFull) = member.held.push(from, from_conn, text, &self.settings) {
            self.refuse(from_conn, Refusal::HoldFull);
        }
    }

    fn leave(&mut self, conn: Conn, now: Millis) {
        let Some(i) = self.members.iter().position(|m| m.conn == conn) else { return };
        let member = self.members.remove(i);
        self.changed = true;
        self.before_join.drop_from(conn);
        for other in &mut self.members {
            other.held.drop_from(conn);
        }
        self.tell_group(member.peer, member.group, Notice::PeerLeft { peer: member.peer });
        if self.members.is_empty() {
            self.emptied_at = Some(now);
        }
    }

    fn go_away(&mut self, conn: Conn, now: Millis) {
        let Some(member) = self.members.iter_mut().find(|m| m.conn == conn && m.present) else { return };
        member.present = false;
        member.away_since = Some(now);
        let peer = member.peer;
        self.changed = true;
        self.tell_others(peer, Notice::PeerAway { peer });
    }

    /// The group a newcomer goes into: always 0, but in a matchbox pool the forming group, which
    /// closes (for good: nobody takes the seat of one who leaves it) once it has `next` peers.
    fn arrival_group(&mut self) -> u32 {
        let Kind::Matchbox { next: Some(next), .. } = self.kind else { return 0 };
        let group = self.forming;
        let size = self.members.iter().filter(|m| m.group == group).count() + 1;
        if size >= next {
            self.forming = self.forming.wrapping_add(1);
        }
        group
    }

    /// The group `peer` is in (0 for someone not in the room).
    fn group_of(&self, peer: PeerId) -> u32 {
        self.members.iter().find(|m| m.peer == peer).map_or(0, |m| m.group)
    }

    /// The other peers of `peer`'s group.
    fn others(&self, peer: PeerId) -> Vec<PeerId> {
        let group = self.group_of(peer);
        self.members.iter().filter(|m| m.peer != peer && m.group == group).map(|m| m.peer).collect()
    }

    /// Tells every present member of `peer`'s group but `peer`.
    fn tell_others(&mut self, peer: PeerId, notice: Notice) {
        let group = self.group_of(peer);
        self.tell_group(peer, group, notice);
    }

    /// Tells every present member of `group` but `peer`.
    fn tell_group(&mut self, peer: PeerId, group: u32, notice: Notice) {
        let to: Vec<Conn> =
            self.members.iter().filter(|m| m.peer != peer && m.present && m.group == group).map(|m| m.conn).collect();
        for conn in to {
            self.notice(conn, notice.clone());
        }
    }

    fn notice(&mut self, to: Conn, notice: Notice) {
        self.out.push(Output::Notice { to, notice });
    }

    fn refuse(&mut self, to: Conn, refusal: Refusal) {
        self.out.push(Output::Refuse { to, refusal });
    }
}
