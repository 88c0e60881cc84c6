//! This instance's sockets, by number: where a client's messages go, and whether a socket is
//! still open when the rules ask before announcing a match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use shared::ws::Outbox;

use crate::reports::Reportable;

/// One socket of this instance.
#[derive(Debug, Clone)]
pub struct Local {
    /// Where its messages go.
    pub outbox: Outbox,
    /// The host name it reached us by, for the signaling URL's `{host}`.
    pub host: Option<Arc<str>>,
    /// The rooms it was told `matched` for, for its connection reports.
    pub rooms: Arc<Reportable>,
}

/// The open sockets of this instance. A short lock, taken to look one up, never held while
/// sending.
#[derive(Debug, Default)]
pub struct Locals(Mutex<HashMap<u64, Local>>);

impl Locals {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, Local>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A socket opened.
    pub fn insert(&self, socket: u64, local: Local) {
        self.map().insert(socket, local);
    }

    /// A socket closed.
    pub fn remove(&self, socket: u64) {
        self.map().remove(&socket);
    }

    /// The socket, if it is open.
    pub fn get(&self, socket: u64) -> Option<Local> {
        self.map().get(&socket).filter(|l| l.outbox.is_open()).cloned()
    }

    /// Whether the socket is open.
    pub fn is_open(&self, socket: u64) -> bool {
        self.map().get(&socket).is_some_and(|l| l.outbox.is_open())
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}
