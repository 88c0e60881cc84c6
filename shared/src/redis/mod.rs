//! The Redis link both services use when `REDIS_URL` is set, and the few generic steps they
//! build on. No rule of the product lives here (those are in the `rules` crate): only
//! connections, key names, leases with fencing tokens, fenced batches of writes, per-instance
//! inboxes, and instance liveness.
//!
//! Every key carries a hash tag (`{prefix:tag}`), so each step touches one slot and the same
//! code runs on one Redis and on a Redis Cluster (`REDIS_CLUSTER=true`).
//!
//! Layout: [`link`] (connections, keys), [`scripts`] (the generic Lua steps), [`fenced`] (a
//! batch of writes that only the lease holder can make), [`lease`], [`inbox`] (lists one
//! instance reads), [`liveness`] (which instances are alive), [`wire`] (typed messages as bytes).

pub mod fenced;
pub mod inbox;
pub mod lease;
pub mod link;
pub mod liveness;
pub mod scripts;
pub mod wire;

use std::time::Duration;

pub use self::link::{RedisConn, RedisLink};
use crate::error::{ErrorCode, Rejected};

/// How often an instance renews its liveness and its leases, and looks for dead instances.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long an instance counts as alive after its last heartbeat: after this, its sockets count
/// as dropped (their clients are away, and may resume elsewhere).
pub const INSTANCE_TTL: Duration = Duration::from_secs(5);
/// How long a lease (the queue's owner) lasts without renewal: a killed owner is replaced
/// within this and one heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How long a Redis command may take before the request gets `unavailable`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a blocking read waits before it looks again (and notices shutdown).
pub const BLOCK_FOR: Duration = Duration::from_secs(1);
/// How long start-up keeps trying to reach Redis before giving up.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(30);
/// Longest wait between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The `unavailable` rejection.
pub fn unavailable() -> Rejected {
    Rejected::new(ErrorCode::Unavailable, "the shared backend (Redis) is unreachable; try again shortly")
}
