//! The matchmaker's keys in Redis. They all carry the tag `{prefix:mm}`, so they live in one
//! cluster slot and every step (a commit, a read) touches that slot only.

use rules::HomeId;
use shared::redis::RedisLink;

/// The tag of every matchmaker key.
pub const TAG: &str = "mm";

/// Where the shared queue lives.
#[derive(Debug, Clone)]
pub struct Keys {
    link: RedisLink,
    /// String: `"<home> <fence>"` of the instance that owns the queue (expires unless renewed).
    pub lease: String,
    /// Counter: the fencing token of the latest owner.
    pub fence: String,
    /// Hash: client id -> its record (postcard), as the owner last committed it.
    pub clients: String,
    /// Stream: inputs other instances forward to the owner, in order.
    pub input: String,
    /// String: the id of the last input the owner committed.
    pub cursor: String,
    /// Hash: `online`, `waiting`, `rooms`, as the owner last counted them.
    pub stats: String,
    /// Hash: home -> its `SIGNALING_URL`.
    pub signaling: String,
    /// List: reports, newest first (see [`super::safety`]).
    pub reports: String,
    /// Hash: ban id -> ban.
    pub bans: String,
    /// Hash: subject -> the reports counted against it.
    pub strikes: String,
    /// Hash: pair of user ids -> until when they block each other.
    pub user_blocks: String,
}

impl Keys {
    /// The keys under `link`'s prefix.
    pub fn new(link: &RedisLink) -> Self {
        Keys {
            link: link.clone(),
            lease: link.key(TAG, "lease"),
            fence: link.key(TAG, "fence"),
            clients: link.key(TAG, "clients"),
            input: link.key(TAG, "in"),
            cursor: link.key(TAG, "cursor"),
            stats: link.key(TAG, "stats"),
            signaling: link.key(TAG, "signaling"),
            reports: link.key(TAG, "reports"),
            bans: link.key(TAG, "bans"),
            strikes: link.key(TAG, "strikes"),
            user_blocks: link.key(TAG, "user-blocks"),
        }
    }

    /// List: what `home`'s sockets must hear, pushed by the owner with its commits.
    pub fn events(&self, home: HomeId) -> String {
        self.link.key(TAG, &format!("ev:{home}"))
    }
}
