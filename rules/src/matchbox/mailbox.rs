//! The HTTP flavour of matchbox's rooms (its WASI server's long polling): what waits for each
//! polling peer, and who stopped polling. A poll first forgets what the previous poll was handed
//! (that answer arrived, or the peer would not poll again), then takes what waits; so an event
//! is lost only if two answers in a row are.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ids::PeerId;
use crate::time::Millis;

/// Events kept for one polling peer, at most; past it new ones are dropped (it does not poll).
pub const MAILBOX_MAX_EVENTS: usize = 1024;

/// What waits for one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mailbox {
    /// Events in order, as JSON text; the first `handed` were in the last answer.
    events: VecDeque<String>,
    handed: usize,
    /// When it last polled.
    polled_at: Millis,
}

/// Every polling peer's mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailboxes {
    peers: BTreeMap<PeerId, Mailbox>,
}

impl Mailboxes {
    /// No peers.
    pub fn new() -> Self {
        Mailboxes::default()
    }

    /// A peer joined at `now` (its first poll).
    pub fn open(&mut self, peer: PeerId, now: Millis) {
        self.peers.insert(peer, Mailbox { polled_at: now, ..Mailbox::default() });
    }

    /// Whether `peer` polls here.
    pub fn has(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// An event for `peer`; `false` if it has no mailbox or its mailbox is full.
    pub fn push(&mut self, peer: PeerId, event: String) -> bool {
        match self.peers.get_mut(&peer) {
            Some(mailbox) if mailbox.events.len() < MAILBOX_MAX_EVENTS => {
                mailbox.events.push_back(event);
                true
            }
            _ => false,
        }
    }

    /// A poll of `peer` arrived at `now`: what the last answer carried is gone. `false` for a
    /// peer with no mailbox (never here, or left).
    pub fn poll(&mut self, peer: PeerId, now: Millis) -> bool {
        let Some(mailbox) = self.peers.get_mut(&peer) else { return false };
        mailbox.events.drain(..mailbox.handed.min(mailbox.events.len()));
        mailbox.handed = 0;
        mailbox.polled_at = mailbox.polled_at.max(now);
        true
    }

    /// What waits for `peer`, for an answer: kept until its next poll. Empty when nothing waits.
    pub fn take(&mut self, peer: PeerId) -> Vec<String> {
        let Some(mailbox) = self.peers.get_mut(&peer) else { return Vec::new() };
        mailbox.handed = mailbox.events.len();
        mailbox.events.iter().cloned().collect()
    }

    /// Whether anything waits for `peer` that it was not handed yet.
    pub fn waiting(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|m| m.events.len() > m.handed)
    }

    /// The peers whose last poll is `idle` or longer before `now`: they have left. Their
    /// mailboxes are gone.
    pub fn expire(&mut self, now: Millis, idle: Millis) -> Vec<PeerId> {
        let gone: Vec<PeerId> =
            self.peers.iter().filter(|(_, m)| m.polled_at.saturating_add(idle) <= now).map(|(p, _)| *p).collect();
        for peer in &gone {
            self.peers.remove(peer);
        }
        gone
    }

    /// When the next peer turns idle, if anyone polls.
    pub fn next_expiry(&self, idle: Millis) -> Option<Millis> {
        self.peers.values().map(|m| m.polled_at.saturating_add(idle)).min()
    }

    /// Forgets `peer`.
    pub fn remove(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }
}
