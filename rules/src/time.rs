//! Time as the cores see it: milliseconds since the Unix epoch, passed in by the shell with
//! every command. Wall-clock time, because a core's state may move to another machine (the
//! owner of a queue or a room on Redis) and its deadlines must still mean the same there.

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// `secs` seconds in milliseconds.
pub const fn secs(secs: u64) -> Millis {
    secs.saturating_mul(1_000)
}
