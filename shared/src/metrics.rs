//! A Prometheus registry per service instance (no global recorder, so several instances can share
//! a process, as they do in the development runner and in tests).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

use crate::error::ErrorCode;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// Counts the errors sent to clients, by code.
#[derive(Debug, Clone, Default)]
pub struct ErrorCounter(Family<CodeLabel, Counter>);

impl ErrorCounter {
    /// Counts one error sent.
    pub fn count(&self, code: ErrorCode) {
        self.0.get_or_create(&CodeLabel { code: code.as_str() }).inc();
    }

    /// How many errors with this code were sent.
    pub fn get(&self, code: ErrorCode) -> u64 {
        self.0.get_or_create(&CodeLabel { code: code.as_str() }).get()
    }
}

/// The metrics every service has, and the registry the service adds its own to.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// WebSocket connections accepted since start.
    pub connections_accepted: Counter,
    /// Error messages sent, by code.
    pub errors: ErrorCounter,
    resident_memory: Gauge,
    open_fds: Gauge,
}

impl Metrics {
    /// A registry whose metric names start with `prefix_`.
    pub fn new(prefix: &str) -> Self {
        let mut registry = Registry::with_prefix(prefix);
        let connections = Gauge::default();
        let connections_accepted = Counter::default();
        let errors = ErrorCounter::default();
        for code in ErrorCode::ALL {
            drop(errors.0.get_or_create(&CodeLabel { code: code.as_str() }));
        }
        registry.register("connections", "Open WebSocket connections", connections.clone());
        registry.register("connections_accepted", "WebSocket connections accepted", connections_accepted.clone());
        registry.register("errors", "Error messages sent to clients, by code", errors.0.clone());
        let resident_memory = Gauge::default();
        let open_fds = Gauge::default();
        registry.register("process_resident_memory_bytes", "Resident memory of the process", resident_memory.clone());
        registry.register("process_open_fds", "Open file descriptors of the process", open_fds.clone());
        Metrics { registry, connections, connections_accepted, errors, resident_memory, open_fds }
    }

    /// Adds a service's own metric.
    pub fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.registry.register(name, help, metric);
    }

    /// The registry in the OpenMetrics text format, with process figures read just now.
    pub fn encode(&self) -> String {
        if let Some(bytes) = process_resident_bytes() {
            self.resident_memory.set(bytes);
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(i64::try_from(entries.count()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%err, "failed to encode metrics");
        }
        out
    }
}

/// Resident set size from `/proc/self/statm` (Linux), in bytes.
fn process_resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
