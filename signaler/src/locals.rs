//! This instance's sockets by number, so that what a room decides reaches them. A sharded map:
//! every delivered message looks one up, from many sockets' tasks at once.

use dashmap::DashMap;
use shared::ws::Outbox;

/// The open sockets of this instance.
#[derive(Debug, Default)]
pub struct Locals(DashMap<u64, Outbox>);

impl Locals {
    /// A socket opened.
    pub fn insert(&self, outbox: &Outbox) {
        self.0.insert(outbox.id().0, outbox.clone());
    }

    /// A socket closed.
    pub fn remove(&self, socket: u64) {
        self.0.remove(&socket);
    }

    /// The socket, if it is open.
    pub fn get(&self, socket: u64) -> Option<Outbox> {
        self.0.get(&socket).map(|o| o.clone())
    }

    /// Every open socket (for a drain).
    pub fn sockets(&self) -> Vec<(u64, Outbox)> {
        self.0.iter().map(|entry| (*entry.key(), entry.value().clone())).collect()
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
