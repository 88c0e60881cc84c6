//! The rules of Strangers, written once.
//!
//! The matchmaker's queue and matches, and the signaler's rooms, as plain state machines: a
//! shell feeds them commands together with the time, and sends out what they answer (what to
//! send to whom, which socket to close, which presence to check). Nothing here reads a clock,
//! touches a socket or talks to Redis, so one copy of each rule serves the in-memory services,
//! the owner of a queue or a room on Redis, and the WebAssembly build.
//!
//! Layout:
//! - [`ids`]: client, room and peer ids, sockets (`Conn`) and the random source for new ids.
//! - [`closing`]: how a draining instance's sockets are closed.
//! - [`time`]: milliseconds, as the shells pass them in.
//! - [`timers`]: the deadlines a core waits for.
//! - [`matchmaking`]: the queue, pairing, matches, resume.
//! - [`rooms`]: one room's admission, relay, holding and leaving; every room of a shell.
//! - [`matchbox`]: matchbox addresses (`{room}?next=N`) and messages, for its rooms.
#![forbid(unsafe_code)]

pub mod closing;
pub mod ids;
pub mod matchbox;
pub mod matchmaking;
pub mod rooms;
pub mod time;
pub mod timers;

pub use closing::Closing;
pub use ids::{ClientId, Conn, HomeId, Ids, PeerId, RoomId};
pub use time::Millis;
