//! The command line. Defaults are sized to finish in under a minute each on a 2-core machine.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default matchmaker URL (the all-in-one runner's `PORT`).
pub const DEFAULT_MATCHMAKER_URL: &str = "ws://127.0.0.1:8080/ws";
/// Default bare relay URL (`bare-relay`'s default address).
pub const DEFAULT_BARE_URL: &str = "ws://127.0.0.1:9090/ws";
/// Default time one step (connect, an answer) may take.
pub const DEFAULT_STEP_TIMEOUT_SECS: u64 = 10;

/// `pairing`: clients per round.
pub const DEFAULT_PAIRING_CLIENTS: usize = 10_000;
/// `pairing`: rounds; one round lasts a second or two, too short to average out a busy machine.
pub const DEFAULT_PAIRING_ROUNDS: usize = 3;
/// `pairing`, `relay` set-up: clients connecting or waiting for a match at once. Below the
/// servers' listen backlog (128), so a burst is never met with dropped SYNs, whose 1 s
/// retransmission would measure the kernel rather than the server.
pub const DEFAULT_IN_FLIGHT: usize = 100;
/// `pairing`: the whole run's time limit.
pub const DEFAULT_PAIRING_LIMIT_SECS: u64 = 45;

/// `relay`: pairs.
pub const DEFAULT_RELAY_PAIRS: usize = 500;
/// `relay`: measured phase.
pub const DEFAULT_RELAY_SECS: u64 = 10;
/// `relay`: signals in flight per pair (1: strict ping-pong).
pub const DEFAULT_RELAY_WINDOW: usize = 1;
/// `relay`: rounds per pair at most.
pub const DEFAULT_RELAY_MAX_ROUNDS: u64 = 1_000_000;

/// `idle`: clients (each holds a matchmaker and a signaler socket).
pub const DEFAULT_IDLE_CLIENTS: usize = 2_000;
/// `idle`: how long the connections are held at most.
pub const DEFAULT_IDLE_HOLD_SECS: u64 = 120;
/// `idle`: pause between opening the last connection and reading memory.
pub const DEFAULT_IDLE_SETTLE_SECS: u64 = 2;
/// `idle`: new pairs that must still pair and relay while the idle ones are held.
pub const DEFAULT_CHECK_PAIRS: usize = 20;

/// `session`: simultaneous users.
pub const DEFAULT_SESSION_USERS: usize = 400;
/// `session`: how long new sessions start.
pub const DEFAULT_SESSION_SECS: u64 = 20;
/// `session`: shortest chat after signaling.
pub const DEFAULT_CHAT_MIN_MS: u64 = 1_000;
/// `session`: longest chat after signaling.
pub const DEFAULT_CHAT_MAX_MS: u64 = 3_000;
/// `session`: ICE candidates each side sends.
pub const DEFAULT_SESSION_ICE: u64 = 3;
/// `session`: percentage of sessions that end with `next` rather than `leave`.
pub const DEFAULT_NEXT_PERCENT: u8 = 50;

/// Load generator for Strangers (matchmaker + signaler) and the bare relay baseline.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// The scenario.
    #[command(subcommand)]
    pub command: Command,
}

/// Scenarios, and the comparison of their results.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// C clients connect and become available: pairs per second, time to `matched`, and that
    /// everyone got exactly one partner other than itself.
    Pairing(PairingArgs),
    /// P pairs play ping-pong with SDP- and ICE-sized signals: round trip, messages per second
    /// and per server CPU-second, and that every signal arrived intact and in order.
    Relay(RelayArgs),
    /// C idle clients (matchmaker + signaler sockets): server memory per connection, and that
    /// new clients still pair and relay meanwhile.
    Idle(IdleArgs),
    /// Users live whole sessions over and over (match, join, signal, chat, next/leave): users
    /// per second sustained.
    Session(SessionArgs),
    /// Reads `--json` reports and prints each figure's median per target and its ratio to the
    /// bare relay's, against the targets of the capacity issue.
    Compare(CompareArgs),
}

/// Where to send load, and how to report.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The matchmaker's WebSocket URL; several, comma-separated, for several instances:
    /// clients take them in turn.
    #[arg(long, default_value = DEFAULT_MATCHMAKER_URL)]
    pub matchmaker: String,
    /// Use this signaler URL instead of the `signalingUrl` each `matched` carries. Two,
    /// comma-separated: the initiator of every room joins on the first and its partner on the
    /// second (the worst case for a scaled-out signaler).
    #[arg(long)]
    pub signaler: Option<String>,
    /// Load the bare relay at `--bare-url` instead of the matchmaker and signaler.
    #[arg(long)]
    pub bare: bool,
    /// The bare relay's WebSocket URL.
    #[arg(long, default_value = DEFAULT_BARE_URL)]
    pub bare_url: String,
    /// Pid of the matchmaker process (or the all-in-one runner, or the bare relay); found from
    /// the listening port when not given. Several, comma-separated, for several instances:
    /// the server CPU is then theirs together.
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Pid of the signaler process when it runs on its own; found from its port when not given.
    #[arg(long)]
    pub signaler_pid: Option<u32>,
    /// Seconds one step (connect, an answer) may take.
    #[arg(long, default_value_t = DEFAULT_STEP_TIMEOUT_SECS)]
    pub step_timeout: u64,
    /// Allow non-loopback targets.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Free text recorded in the report (conditions, run number).
    #[arg(long, default_value = "")]
    pub label: String,
    /// The Redis the services share (`redis://host:port`), when they run on one: the report
    /// then says what each match, relayed message, session or idle client costs Redis.
    #[arg(long)]
    pub redis: Option<String>,
}

/// `pairing`.
#[derive(Debug, Clone, Args)]
pub struct PairingArgs {
    /// Target and output.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Clients per round (even; all are held until the round ends, so at most the open-file limit).
    #[arg(long, short = 'c', default_value_t = DEFAULT_PAIRING_CLIENTS)]
    pub clients: usize,
    /// Rounds; each round's clients leave before the next round connects.
    #[arg(long, default_value_t = DEFAULT_PAIRING_ROUNDS)]
    pub rounds: usize,
    /// Clients connecting or waiting for a match at once.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Time limit of the whole run, in seconds.
    #[arg(long, default_value_t = DEFAULT_PAIRING_LIMIT_SECS)]
    pub limit: u64,
}

/// `relay`.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Target and output.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Pairs.
    #[arg(long, short = 'p', default_value_t = DEFAULT_RELAY_PAIRS)]
    pub pairs: usize,
    /// Seconds of ping-pong.
    #[arg(long, default_value_t = DEFAULT_RELAY_SECS)]
    pub duration: u64,
    /// Signals in flight per pair (more than 1 also tests ordering under pipelining).
    #[arg(long, default_value_t = DEFAULT_RELAY_WINDOW)]
    pub window: usize,
    /// Rounds per pair at most.
    #[arg(long, default_value_t = DEFAULT_RELAY_MAX_ROUNDS)]
    pub max_rounds: u64,
    /// SDP size in bytes.
    #[arg(long, default_value_t = crate::payload::DEFAULT_SDP_BYTES)]
    pub sdp_bytes: usize,
    /// ICE frame size in bytes.
    #[arg(long, default_value_t = crate::payload::DEFAULT_ICE_BYTES)]
    pub ice_bytes: usize,
    /// One SDP-sized signal every this many rounds; the rest are ICE-sized.
    #[arg(long, default_value_t = crate::payload::DEFAULT_SDP_ONE_IN)]
    pub sdp_one_in: u64,
    /// Clients connecting at once during set-up.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
}

/// `idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Target and output.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Idle clients: each holds one matchmaker and one signaler socket (one socket on the bare relay).
    #[arg(long, short = 'c', default_value_t = DEFAULT_IDLE_CLIENTS)]
    pub clients: usize,
    /// Load-generator processes holding them (0: as many as the open-file limit needs).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// Seconds the connections are held at most.
    #[arg(long, default_value_t = DEFAULT_IDLE_HOLD_SECS)]
    pub hold: u64,
    /// Seconds to wait after the last connection before reading memory.
    #[arg(long, default_value_t = DEFAULT_IDLE_SETTLE_SECS)]
    pub settle: u64,
    /// New pairs that must still pair and relay while the idle clients are held.
    #[arg(long, default_value_t = DEFAULT_CHECK_PAIRS)]
    pub check_pairs: usize,
    /// Clients connecting at once, per process.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Read server memory from `/metrics` instead of `/proc`.
    #[arg(long)]
    pub metrics: bool,
    /// Open only shard I of N of the clients, report on stdout and hold them until stdin closes
    /// (how the parent runs its helper processes; also usable by hand across machines' worth of
    /// file limits).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// `session`.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Target and output.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Simultaneous users, each living session after session.
    #[arg(long, short = 'u', default_value_t = DEFAULT_SESSION_USERS)]
    pub users: usize,
    /// Seconds during which sessions start.
    #[arg(long, default_value_t = DEFAULT_SESSION_SECS)]
    pub duration: u64,
    /// Shortest chat after signaling, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_CHAT_MIN_MS)]
    pub chat_min_ms: u64,
    /// Longest chat after signaling, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_CHAT_MAX_MS)]
    pub chat_max_ms: u64,
    /// ICE candidates each side sends.
    #[arg(long, default_value_t = DEFAULT_SESSION_ICE)]
    pub ice: u64,
    /// Percentage of sessions ended with `next` (the rest `leave` and reconnect).
    #[arg(long, default_value_t = DEFAULT_NEXT_PERCENT, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub next_percent: u8,
}

/// `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Report files written with `--json`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Print a Markdown table.
    #[arg(long)]
    pub markdown: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
