//! One client as the matchmaker knows it: its socket, whether that socket is there, and where
//! it stands (idle, waiting, being confirmed, matched). This is also the record a shell keeps
//! outside the process (Redis) so that another owner can take over the queue.

use serde::{Deserialize, Serialize};

use super::safety::Identity;
use crate::ids::{ClientId, Conn, HomeId, RoomId};
use crate::time::Millis;

/// Where a client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    /// Connected, not looking for anyone.
    Idle,
    /// In the queue. `seq` orders the queue: lower has waited longer.
    Waiting {
        /// Arrival number.
        seq: u64,
        /// When it arrived.
        since: Millis,
    },
    /// Paired, but not told yet: waiting for the instances that hold both sockets to confirm
    /// both are still there. Keeps its place (`seq`) in case the match falls through.
    Confirming {
        /// Arrival number, kept for going back to the head of the queue.
        seq: u64,
        /// When it arrived in the queue.
        since: Millis,
        /// The presence check both sides of this match answer.
        check: u64,
        /// The room the match will open.
        room: RoomId,
        /// The partner.
        partner: ClientId,
        /// Whether this side makes the WebRTC offer.
        initiator: bool,
        /// Whose instance's signaler both partners will use.
        via: HomeId,
        /// Whether this side's presence is confirmed.
        confirmed: bool,
    },
    /// In a match.
    Matched {
        /// The room.
        room: RoomId,
        /// The partner.
        partner: ClientId,
        /// Whether this side makes the WebRTC offer.
        initiator: bool,
        /// Whose instance's signaler both partners use.
        via: HomeId,
    },
}

/// A client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Its socket, or the last one it had while it is away.
    pub conn: Conn,
    /// Whether that socket is believed open. A client whose socket dropped without a close frame
    /// is away (not present) for the resume grace window.
    pub present: bool,
    /// When it went away.
    pub away_since: Option<Millis>,
    /// Where it stands.
    pub standing: Standing,
    /// The generation of its resume token: each resume issues the next one, so a token works once.
    pub generation: u32,
    /// Recent partners it may not be paired with again until the time given (the rematch
    /// cooldown); kept by both of the two.
    pub met: Vec<(ClientId, Millis)>,
    /// What it would like to talk about (lower-cased, no duplicates); empty: anything.
    pub interests: Vec<String>,
    /// How long it waits for someone who shares an interest before anyone will do.
    pub interest_wait: Millis,
    /// Its address and user id, for reports and bans.
    #[serde(default)]
    pub identity: Identity,
    /// Clients it is never paired with: it blocked them or they blocked it (kept by both).
    #[serde(default)]
    pub blocked: Vec<ClientId>,
    /// Its last match that ended, so that `block` and `report` right after still find it.
    #[serde(default)]
    pub last: Option<LastMatch>,
}

/// A match that ended, as `block` and `report` refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMatch {
    /// The partner.
    pub partner: ClientId,
    /// The room.
    pub room: RoomId,
    /// Who the partner was.
    pub identity: Identity,
}

impl Client {
    /// A client that just connected.
    pub fn new(conn: Conn, identity: Identity) -> Self {
        Client {
            conn,
            present: true,
            away_since: None,
            standing: Standing::Idle,
            generation: 0,
            met: Vec::new(),
            interests: Vec::new(),
            interest_wait: 0,
            identity,
            blocked: Vec::new(),
            last: None,
        }
    }

    /// Its place in the queue, while waiting or being confirmed.
    pub fn seq(&self) -> Option<u64> {
        match self.standing {
            Standing::Waiting { seq, .. } | Standing::Confirming { seq, .. } => Some(seq),
            _ => None,
        }
    }

    /// Whether it would take `other` at `now`, as far as interests go: anyone if it has none or
    /// has waited past its interest wait, else only someone who shares one.
    pub fn takes(&self, other: &Client, now: Millis) -> bool {
        if self.interests.is_empty() {
            return true;
        }
        let past_wait = match self.standing {
            Standing::Waiting { since, .. } | Standing::Confirming { since, .. } => {
                now >= since.saturating_add(self.interest_wait)
            }
            _ => false,
        };
        past_wait || self.interests.iter().any(|i| other.interests.contains(i))
    }

    /// The interests it shares with `other`, in its own order.
    pub fn common_interests(&self, other: &Client) -> Vec<String> {
        self.interests.iter().filter(|i| other.interests.contains(i)).cloned().collect()
    }

    /// Whether it may be paired with `other` at `now`, as far as the rematch cooldown and
    /// blocks between clients go.
    pub fn may_meet(&self, other: ClientId, now: Millis) -> bool {
        !self.met.iter().any(|(partner, until)| *partner == other && *until > now) && !self.blocked.contains(&other)
    }

    /// Its partner, when matched or being confirmed.
    pub fn partner(&self) -> Option<ClientId> {
        match self.standing {
            Standing::Matched { partner, .. } | Standing::Confirming { partner, .. } => Some(partner),
            _ => None,
        }
    }
}
