//! `loadgen`: measures what one Strangers instance serves, speaking only the public protocol
//! (WebSocket JSON), and measures a bare relay the same way so every figure has a baseline.
//!
//! Layout:
//! - [`cli`]: the command line.
//! - [`client`]: one WebSocket client: connect (optionally from a chosen source address), send, receive.
//! - [`wire`]: the server messages the load generator reads.
//! - [`target`]: what is being measured: the matchmaker + signaler, or the bare relay; how a client
//!   gets a partner and a channel to it on each.
//! - [`payload`]: SDP- and ICE-sized signals that can be checked for integrity and order.
//! - [`scenarios`]: `pairing`, `relay`, `idle`, `session`.
//! - [`procfs`]: server CPU time, resident memory and pid look-up from `/proc`, and `/metrics`.
//! - [`redis_cost`]: what the work costs the shared Redis (`--redis`), from its `INFO`.
//! - [`stats`]: latency samples and error tallies.
//! - [`report`]: one run's figures, as a table or JSON; [`compare`]: medians and ratios of many runs.
//! - [`limits`]: the open-file limit and source addresses.
//! - [`progress`]: progress bars.
//! - [`bare_relay`]: the baseline: pairs sockets in arrival order and forwards frames unparsed.
#![forbid(unsafe_code)]

pub mod bare_relay;
pub mod cli;
pub mod client;
pub mod compare;
pub mod limits;
pub mod payload;
pub mod procfs;
pub mod progress;
pub mod redis_cost;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod target;
pub mod wire;
