//! This instance's sockets by number, so that what a room decides reaches them. A sharded map:
//! every delivered message looks one up, from many sockets' tasks at once.

use dashmap::DashMap;
use shared::ws::Outbox;

use crate::matchbox::polled::Polled;

/// Which protocol a socket speaks, so that what a room decides is said in its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Ours (`/ws`).
    Strangers,
    /// matchbox's (`/matchbox/{room}`).
    Matchbox,
}

/// An open socket.
#[derive(Debug, Clone)]
pub struct Local {
    /// Where to post to it.
    pub outbox: Outbox,
    /// How it is spoken to.
    pub dialect: Dialect,
}

/// The open sockets of this instance, and its peers that poll over HTTP.
#[derive(Debug, Default)]
pub struct Locals {
    sockets: DashMap<u64, Local>,
    /// Peers without a socket (`/matchbox/poll/…`).
    pub polled: Polled,
}

impl Locals {
    /// A socket opened.
    pub fn insert(&self, outbox: &Outbox, dialect: Dialect) {
        self.sockets.insert(outbox.id().0, Local { outbox: outbox.clone(), dialect });
    }

    /// A socket closed.
    pub fn remove(&self, socket: u64) {
        self.sockets.remove(&socket);
    }

    /// The socket, if it is open.
    pub fn get(&self, socket: u64) -> Option<Local> {
        self.sockets.get(&socket).map(|o| o.clone())
    }

    /// Every open socket (for a drain).
    pub fn sockets(&self) -> Vec<(u64, Outbox)> {
        self.sockets.iter().map(|entry| (*entry.key(), entry.value().outbox.clone())).collect()
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}
