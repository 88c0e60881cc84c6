//! What the matchmaker and the signaler share, written once.
//!
//! Layout:
//! - [`protocol`]: wire messages (typed serde enums out, a checked envelope in) and error codes.
//! - [`ticket`]: room tickets, signed by the matchmaker and verified by the signaler.
//! - [`turn`]: time-limited TURN credentials (the TURN REST API scheme coturn checks).
//! - [`resume`]: resume tokens, which bring a client back on a new socket.
//! - [`random`]: ids from the operating system's randomness.
//! - [`origin`]: the `ALLOWED_ORIGIN` check on WebSocket upgrades.
//! - [`config`]: settings both services read from the environment, validated at start-up.
//! - [`limits`]: abuse limits (message rate, `next` rate, connections per IP and instance) and
//!   the client IP behind trusted proxies.
//! - [`ws`]: one socket's life: a bounded outbox, keepalive, size limit, close codes.
//! - [`server`]: the accept loop that hands `/ws` upgrades to a service and the rest to warp.
//! - [`longpoll`]: the long-polling routes (`/lp`), sessions like `/ws` over another carriage.
//! - [`routes`]: `/healthz`, `/readyz`, `/metrics` and the rejection handler.
//! - [`metrics`]: a per-instance Prometheus registry with the metrics every service has.
//! - [`lifecycle`]: shutdown signal, readiness flag and task tracking.
//! - [`redis`]: the Redis link for scale-out (commands, inbox, heartbeat).
//! - [`healthcheck`]: the `healthcheck` subcommand container images probe with.
//! - [`process`]: what a service binary does around its `serve` (logs, file limit, signals, exit code).
//! - [`telemetry`]: structured logs.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod healthcheck;
pub mod lifecycle;
pub mod limits;
pub mod longpoll;
pub mod metrics;
pub mod origin;
pub mod process;
pub mod protocol;
pub mod random;
pub mod redis;
pub mod resume;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod ticket;
pub mod turn;
pub mod ws;

pub use error::{Error, ErrorCode};
