//! One room's rules as plain data: who is in it, what waits for the partner, who hears what.
//! Every method runs inside the room map's critical section and only posts to mailboxes
//! (non-blocking), so what one peer sends is seen by the other in the order it was sent, even
//! when the partner is joining at the same moment.

use std::collections::VecDeque;

use shared::error::Rejected;
use shared::protocol::encode;
use shared::protocol::signaler::ServerMessage;
use shared::ws::{ConnId, Outbox, CLOSE_REPLACED};
use shared::ErrorCode;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

/// A peer's id: the client id its ticket names.
pub type PeerId = Uuid;
/// A room's id.
pub type RoomId = Uuid;

/// Peers a room admits: the two the matchmaker paired.
pub const ROOM_CAPACITY: usize = 2;
/// Messages held for a partner who has not joined yet, at most.
pub const HOLD_MAX_MESSAGES: usize = 64;
/// Bytes held for a partner who has not joined yet, at most.
pub const HOLD_MAX_BYTES: usize = 64 * 1024;

/// Where a room member's messages go. [`Outbox`] in the service; a recorder in tests.
pub trait Mailbox {
    /// Posts a text frame; never blocks.
    fn post(&self, text: Utf8Bytes);
    /// The connection behind this mailbox.
    fn conn(&self) -> ConnId;
    /// Another connection took this one's place in the room.
    fn replaced(&self);
}

impl Mailbox for Outbox {
    fn post(&self, text: Utf8Bytes) {
        self.send_text(text);
    }

    fn conn(&self) -> ConnId {
        self.id()
    }

    fn replaced(&self) {
        self.close(CLOSE_REPLACED, "replaced by a newer connection with the same ticket");
    }
}

struct Member<M> {
    peer: PeerId,
    mailbox: M,
}

struct Held {
    from: PeerId,
    conn: ConnId,
    text: Utf8Bytes,
}

/// A room: up to [`ROOM_CAPACITY`] members, and what the first one said before the second came.
pub struct Room<M> {
    id: RoomId,
    members: Vec<Member<M>>,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// When the tickets for this room stop admitting; held messages are useless after it.
    expires_at: u64,
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// A new member.
    Entered,
    /// A new connection replaced the member's old one.
    Replaced,
    /// The same connection joined again; nothing changed.
    Again,
}

impl<M: Mailbox> Room<M> {
    /// An empty room.
    pub fn new(id: RoomId, expires_at: u64) -> Self {
        Room { id, members: Vec::with_capacity(ROOM_CAPACITY), held: VecDeque::new(), held_bytes: 0, expires_at }
    }

    /// Whether nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many messages wait for a partner.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Admits `peer` (already checked by its ticket): answers `joined`, tells the others, and
    /// delivers what they said while it was away.
    ///
    /// # Errors
    /// `room-full` when the room already has its members and `peer` is not one of them.
    pub fn join(&mut self, peer: PeerId, mailbox: M, expires_at: u64) -> Result<Joined, Rejected> {
        self.expires_at = self.expires_at.max(expires_at);
        let others: Vec<PeerId> = self.members.iter().filter(|m| m.peer != peer).map(|m| m.peer).collect();
        let outcome = match self.members.iter().position(|m| m.peer == peer) {
            Some(i) if self.members[i].mailbox.conn() == mailbox.conn() => Joined::Again,
            Some(i) => {
                let old = std::mem::replace(&mut self.members[i].mailbox, mailbox);
                old.replaced();
                self.drop_held_from(old.conn());
                Joined::Replaced
            }
            None if self.members.len() >= ROOM_CAPACITY => {
                return Err(Rejected::new(ErrorCode::RoomFull, "this room already has its two peers"));
            }
            None => {
                self.members.push(Member { peer, mailbox });
                Joined::Entered
            }
        };
        let joined = encode(&ServerMessage::Joined { room_id: self.id, peer_id: peer, peers: &others });
        let Some(me) = self.members.iter().find(|m| m.peer == peer) else { return Ok(outcome) };
        me.mailbox.post(joined.into());
        if outcome != Joined::Again {
            let announce: Utf8Bytes = encode(&ServerMessage::PeerJoined { peer_id: peer }).into();
            for other in self.members.iter().filter(|m| m.peer != peer) {
                other.mailbox.post(announce.clone());
            }
            // Held messages from others are for this peer: deliver them right after `joined`.
            let mut kept = VecDeque::with_capacity(self.held.len());
            for held in self.held.drain(..) {
                if held.from == peer {
                    kept.push_back(held);
                } else {
                    self.held_bytes -= held.text.len();
                    me.mailbox.post(held.text);
                }
            }
            self.held = kept;
        }
        Ok(outcome)
    }

    /// Relays a signal from `peer` on connection `conn` to the others, or holds it until one
    /// joins. Returns how many peers it was delivered to (0 when held).
    ///
    /// # Errors
    /// `not-joined` when the connection is no longer the peer's (it was replaced);
    /// `rate-limited` when the hold for an absent partner is full.
    pub fn relay(&mut self, peer: PeerId, conn: ConnId, text: Utf8Bytes, now: u64) -> Result<usize, Rejected> {
        if !self.members.iter().any(|m| m.peer == peer && m.mailbox.conn() == conn) {
            return Err(Rejected::new(ErrorCode::NotJoined, "this connection was replaced; join again"));
        }
        let mut delivered = 0;
        for other in self.members.iter().filter(|m| m.peer != peer) {
            other.mailbox.post(text.clone());
            delivered += 1;
        }
        if delivered > 0 {
            return Ok(delivered);
        }
        if now > self.expires_at {
            // Nobody can join with an expired ticket: what waits for them never leaves.
            self.held.clear();
            self.held_bytes = 0;
        }
        if self.held.len() >= HOLD_MAX_MESSAGES || self.held_bytes + text.len() > HOLD_MAX_BYTES {
            return Err(Rejected::new(
                ErrorCode::RateLimited,
                format!("your partner has not joined yet and {HOLD_MAX_MESSAGES} messages / {HOLD_MAX_BYTES} bytes already wait; message dropped"),
            ));
        }
        self.held_bytes += text.len();
        self.held.push_back(Held { from: peer, conn, text });
        Ok(0)
    }

    /// Removes `peer` if `conn` is still its connection, and tells the others. Returns whether
    /// anyone left.
    pub fn leave(&mut self, peer: PeerId, conn: ConnId) -> bool {
        let Some(index) = self.members.iter().position(|m| m.peer == peer && m.mailbox.conn() == conn) else {
            return false;
        };
        self.members.remove(index);
        self.drop_held_from(conn);
        let left: Utf8Bytes = encode(&ServerMessage::PeerLeft { peer_id: peer }).into();
        for other in &self.members {
            other.mailbox.post(left.clone());
        }
        true
    }

    fn drop_held_from(&mut self, conn: ConnId) {
        let before = self.held.len();
        self.held.retain(|h| h.conn != conn);
        if self.held.len() != before {
            self.held_bytes = self.held.iter().map(|h| h.text.len()).sum();
        }
    }
}
