//! The signaler's rules: rooms. [`Room`] is one room's state machine; the shells keep their
//! rooms in a map (in memory) or own some of them on behalf of every instance (on Redis).

mod hold;
mod room;

pub use self::hold::HoldFull;
pub use self::room::{Input, Kind, MemberRecord, Notice, Output, Payload, Refusal, Room, RoomRecord, RoomSettings};

#[cfg(test)]
pub(crate) mod tests;
