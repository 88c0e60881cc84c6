//! What waits for a peer that is not there: bounded in messages and in bytes, in order.

use std::collections::VecDeque;

use super::room::{Payload, RoomSettings};
use crate::ids::{Conn, PeerId};

/// A hold is at its bound; the message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldFull;

#[derive(Debug, Clone)]
struct Held<T> {
    from: PeerId,
    from_conn: Conn,
    text: T,
}

/// Messages waiting for one peer (or, in a matched room, for the partner's first join).
#[derive(Debug, Clone)]
pub struct Hold<T> {
    items: VecDeque<Held<T>>,
    bytes: usize,
}

impl<T> Default for Hold<T> {
    fn default() -> Self {
        Hold { items: VecDeque::new(), bytes: 0 }
    }
}

impl<T: Payload> Hold<T> {
    /// Keeps a message, if the hold has room for it.
    pub fn push(&mut self, from: PeerId, from_conn: Conn, text: T, settings: &RoomSettings) -> Result<(), HoldFull> {
        let size = text.size();
        if self.items.len() >= settings.hold_messages || self.bytes.saturating_add(size) > settings.hold_bytes {
            return Err(HoldFull);
        }
        self.bytes += size;
        self.items.push_back(Held { from, from_conn, text });
        Ok(())
    }

    /// Forgets what one socket sent (it left, or another took its place).
    pub fn drop_from(&mut self, conn: Conn) {
        if self.items.iter().any(|h| h.from_conn == conn) {
            self.items.retain(|h| h.from_conn != conn);
            self.bytes = self.items.iter().map(|h| h.text.size()).sum();
        }
    }

    /// Takes, in order, what others than `peer` sent; keeps what `peer` sent.
    pub fn take_not_from(&mut self, peer: PeerId) -> Vec<T> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for held in self.items.drain(..) {
            if held.from == peer {
                kept.push_back(held);
            } else {
                taken.push(held.text);
            }
        }
        self.items = kept;
        self.bytes = self.items.iter().map(|h| h.text.size()).sum();
        taken
    }

    /// Everything held, in order.
    pub fn into_texts(self) -> impl Iterator<Item = T> {
        self.items.into_iter().map(|h| h.text)
    }
}

impl<T> Hold<T> {
    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}
