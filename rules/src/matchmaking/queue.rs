//! The clients that may be paired now (waiting and present), in arrival order. Finding a
//! partner is a walk from the oldest, skipping only the few a client may not be paired with,
//! so it does not grow with the number waiting.

use std::collections::BTreeMap;

use crate::ids::ClientId;

/// Waiting, present clients by arrival number.
#[derive(Debug, Default, Clone)]
pub struct Queue {
    by_seq: BTreeMap<u64, ClientId>,
}

impl Queue {
    /// Adds a client at its arrival number.
    pub fn insert(&mut self, seq: u64, id: ClientId) {
        self.by_seq.insert(seq, id);
    }

    /// Removes the client at `seq`.
    pub fn remove(&mut self, seq: u64) {
        self.by_seq.remove(&seq);
    }

    /// The longest-waiting client other than `me` that `allowed` accepts.
    pub fn oldest_for(&self, me: ClientId, allowed: impl Fn(ClientId) -> bool) -> Option<(u64, ClientId)> {
        self.by_seq.iter().map(|(seq, id)| (*seq, *id)).find(|(_, id)| *id != me && allowed(*id))
    }

    /// Every client, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, ClientId)> + '_ {
        self.by_seq.iter().map(|(seq, id)| (*seq, *id))
    }
}
