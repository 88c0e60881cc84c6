//! matchbox's side of the rooms: where a `/matchbox/{room}?next=N` address leads, the
//! messages matchbox clients speak, and the mailboxes of peers that poll over HTTP
//! ([`Mailboxes`]; [`PolledRooms`] for a process that does nothing else). The rooms themselves are [`crate::rooms::Room`]s of
//! [`Kind::Matchbox`]; this module only names them and spells their messages, so that the
//! signaler and the WebAssembly build say the same.

mod mailbox;
mod polled;
mod wire;

pub use self::mailbox::{Mailboxes, MAILBOX_MAX_EVENTS};
pub use self::polled::{PollRefusal, PolledRooms};
pub use self::wire::{poll_peer, Event, PollAnswer, Request};

use crate::ids::RoomId;
use crate::rooms::{Kind, Notice};

/// What a matchbox peer hears of a room's notice: `PeerJoined` is `NewPeer`, `PeerLeft` is
/// itself; nothing else is said (its own `joined` was `IdAssigned`, sent when it arrived).
pub fn notice_event(notice: &Notice) -> Option<Event<'static>> {
    match notice {
        Notice::PeerJoined { peer } => Some(Event::NewPeer(*peer)),
        Notice::PeerLeft { peer } => Some(Event::PeerLeft(*peer)),
        Notice::Joined { .. } | Notice::PeerAway { .. } | Notice::PeerBack { .. } => None,
    }
}

/// The longest room name accepted, in bytes (matchbox sets none; ours keeps keys short).
pub const MAX_ROOM_NAME_BYTES: usize = 128;

/// Why an address names no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAddress {
    /// The name is empty or over [`MAX_ROOM_NAME_BYTES`].
    Name,
    /// `next` is not a whole number of at least 1.
    Next,
}

impl std::fmt::Display for BadAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadAddress::Name => write!(f, "the room name must be 1 to {MAX_ROOM_NAME_BYTES} bytes"),
            BadAddress::Next => f.write_str("`next` must be a whole number of at least 1"),
        }
    }
}

/// A room as a matchbox client names it: `{name}` and, for a pool, `?next=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The path segment, as sent.
    pub name: String,
    /// The pool's group size.
    pub next: Option<usize>,
}

impl Address {
    /// The address of path segment `name` with query string `query` (other parameters than
    /// `next` are ignored, as matchbox does).
    ///
    /// # Errors
    /// [`BadAddress`] for an empty or long name, or a `next` that is not a number of at least 1.
    pub fn parse(name: &str, query: Option<&str>) -> Result<Self, BadAddress> {
        if name.is_empty() || name.len() > MAX_ROOM_NAME_BYTES {
            return Err(BadAddress::Name);
        }
        let mut next = None;
        for pair in query.unwrap_or_default().split('&') {
            if let Some(value) = pair.strip_prefix("next=") {
                next = Some(value.parse::<usize>().ok().filter(|n| *n >= 1).ok_or(BadAddress::Next)?);
            }
        }
        Ok(Address { name: name.to_owned(), next })
    }

    /// The room it leads to: the same on every instance (a name-based UUID), so that peers of
    /// one room meet whichever instance they reach.
    pub fn room(&self) -> RoomId {
        let next = self.next.map_or_else(String::new, |n| n.to_string());
        let name = format!("matchbox\n{}\n{next}", self.name);
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    }

    /// The kind of room it is.
    pub fn kind(&self) -> Kind {
        Kind::Matchbox { name: self.name.clone(), next: self.next }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod poll_tests;
