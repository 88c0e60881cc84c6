//! The signaler's keys in Redis. A room's keys carry the room's own tag and an instance's
//! inbox its own, so rooms spread over a cluster's slots and every step touches one slot.

use rules::{HomeId, RoomId};
use shared::redis::RedisLink;

/// The tag of the instances' liveness keys.
pub const TAG: &str = "sig";

/// Where the signaler's state lives.
#[derive(Debug, Clone)]
pub struct Keys {
    link: RedisLink,
}

impl Keys {
    /// The keys under `link`'s prefix.
    pub fn new(link: &RedisLink) -> Self {
        Keys { link: link.clone() }
    }

    /// Hash: `owner` (`"<home> <fence>"` of the instance running its rules), `fence` (the
    /// counter), `record` (who is in it, postcard). Gone when the room is over.
    pub fn room(&self, room: RoomId) -> String {
        self.link.key(&format!("r:{room}"), "")
    }

    /// List: what instance `home` is to do (inputs for its rooms, deliveries to its sockets).
    pub fn inbox(&self, home: HomeId) -> String {
        self.link.key(&format!("i:{home}"), "in")
    }

    /// Set: the rooms `home` owns, for cleaning up after it if it dies.
    pub fn owned(&self, home: HomeId) -> String {
        self.link.key(&format!("i:{home}"), "rooms")
    }

    /// String: who is cleaning up after the dead instance `home`.
    pub fn janitor(&self, home: HomeId) -> String {
        self.link.key(TAG, &format!("janitor:{home}"))
    }
}
