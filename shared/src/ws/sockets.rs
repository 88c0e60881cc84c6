//! Every open socket of an instance, so that shutdown can refuse new ones and, at its end, close
//! the rest with 1001.
//!
//! A plain map under a short lock: touched once when a socket opens and once when it closes,
//! never per message. (A cancellation token per socket would do the same job, but costs a
//! tree node per socket and a lock on every poll of its driver.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::outbox::{outbox, Outbox, Taker};
use super::{ConnId, SocketLimits, CLOSE_GOING_AWAY};
use crate::metrics::ErrorCounter;

/// The open sockets. Cheap to clone; clones share the one map.
#[derive(Debug, Clone, Default)]
pub struct Sockets(Arc<Mutex<Registry>>);

#[derive(Debug, Default)]
struct Registry {
    open: HashMap<ConnId, Outbox>,
    /// Shutdown has begun: a socket opened now is closed at once.
    closing: bool,
}

impl Sockets {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The outbox of a new socket and the end its driver takes from; the socket counts as open
    /// until the [`Open`] is dropped.
    pub fn open(&self, limits: &SocketLimits, errors: ErrorCounter) -> (Outbox, Open) {
        let (outbox, taker) = outbox(limits, errors);
        let mut registry = self.registry();
        if registry.closing {
            outbox.close(CLOSE_GOING_AWAY, "server shutting down");
        } else {
            registry.open.insert(outbox.id(), outbox.clone());
        }
        drop(registry);
        (outbox, Open { taker, sockets: self.clone() })
    }

    /// From now on a socket opened is closed at once with 1001 (shutdown has begun).
    pub fn refuse_new(&self) {
        self.registry().closing = true;
    }

    /// Closes every open socket with 1001 (after what is queued for it), and any opened later.
    pub fn close_all(&self) {
        let open: Vec<Outbox> = {
            let mut registry = self.registry();
            registry.closing = true;
            registry.open.values().cloned().collect()
        };
        for outbox in open {
            outbox.close(CLOSE_GOING_AWAY, "server shutting down");
        }
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.registry().open.len()
    }

    /// Whether no socket is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A socket's place among the open ones, held by its driver.
pub struct Open {
    taker: Taker,
    sockets: Sockets,
}

impl std::ops::Deref for Open {
    type Target = Taker;

    fn deref(&self) -> &Taker {
        &self.taker
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.sockets.registry().open.remove(&self.taker.outbox().id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Common;
    use crate::limits::Limits;

    fn limits() -> SocketLimits {
        SocketLimits::new(&Common::default(), &Limits::default())
    }

    #[test]
    fn a_socket_counts_as_open_until_its_driver_lets_go() {
        let sockets = Sockets::default();
        let (outbox, open) = sockets.open(&limits(), ErrorCounter::default());
        assert_eq!(sockets.len(), 1);
        drop(open);
        assert!(sockets.is_empty());
        assert!(!outbox.is_open());
    }

    #[test]
    fn closing_all_closes_every_open_socket_with_1001() {
        let sockets = Sockets::default();
        let opened: Vec<_> = (0..3).map(|_| sockets.open(&limits(), ErrorCounter::default())).collect();
        sockets.close_all();
        for (outbox, _) in &opened {
            assert!(!outbox.is_open());
            assert_eq!(outbox.close_frame().map(|(code, _)| code), Some(CLOSE_GOING_AWAY));
        }
    }

    #[test]
    fn a_socket_opened_during_shutdown_is_closed_at_once() {
        let sockets = Sockets::default();
        sockets.close_all();
        let (outbox, _open) = sockets.open(&limits(), ErrorCounter::default());
        assert!(!outbox.is_open());
        assert!(sockets.is_empty());
    }
}
