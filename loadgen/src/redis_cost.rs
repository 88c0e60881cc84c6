//! What the Redis build costs Redis: commands, Redis CPU time, network bytes and memory, read
//! from `INFO` before and after a measured phase (`--redis URL`), so that a scenario can say what
//! one match, one relayed message or one idle client costs the shared Redis.
//!
//! Speaks just enough RESP for `INFO`, over a plain TCP connection: the load generator needs no
//! Redis client for four counters.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::report::{Better, Report};

/// How long one `INFO` may take.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `INFO` reply read.
const MAX_INFO_BYTES: usize = 1 << 20;

/// Redis's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    /// Commands run, all kinds but `INFO` (scripts count once per `EVALSHA`/`FCALL`).
    pub commands: u64,
    /// CPU seconds Redis used, user and system, all threads.
    pub cpu_s: f64,
    /// Bytes Redis read and wrote on its client connections.
    pub net_bytes: u64,
    /// Memory Redis holds for data (`used_memory`).
    pub used_memory: u64,
}

/// Where to read Redis's counters.
#[derive(Debug, Clone, Copy)]
pub struct RedisProbe {
    addr: SocketAddr,
}

impl RedisProbe {
    /// A probe of the Redis at `url` (`redis://host:port`, no password), resolved now.
    ///
    /// # Errors
    /// A message saying what is wrong with the URL.
    pub async fn new(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| format!("`{url}`: a Redis URL starts with redis://"))?;
        let host_port = rest.split('/').next().unwrap_or(rest);
        if host_port.contains('@') {
            return Err(format!("`{url}`: a Redis with a password is not supported by the probe"));
        }
        let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:6379") };
        let addr = tokio::net::lookup_host(&host_port)
            .await
            .map_err(|err| format!("`{url}`: {err}"))?
            .next()
            .ok_or_else(|| format!("`{url}`: the host has no address"))?;
        Ok(RedisProbe { addr })
    }

    /// The address probed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the counters now.
    ///
    /// # Errors
    /// A message when Redis cannot be reached or answers something unexpected.
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        let text = tokio::time::timeout(INFO_TIMEOUT, info(self.addr))
            .await
            .map_err(|_| format!("Redis at {} did not answer INFO in time", self.addr))??;
        Ok(parse_info(&text))
    }
}

/// Sends `INFO` with the sections the snapshot needs and returns the reply's text.
async fn info(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|err| format!("Redis at {addr}: {err}"))?;
    stream.write_all(b"INFO cpu stats memory commandstats\r\n").await.map_err(|err| err.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).await.map_err(|err| err.to_string())?;
    let len: usize = match header.trim_end().strip_prefix('$') {
        Some(len) => len.parse().map_err(|_| format!("unexpected INFO reply header {header:?}"))?,
        None => return Err(format!("Redis answered INFO with {:?}", header.trim_end())),
    };
    if len > MAX_INFO_BYTES {
        return Err(format!("INFO reply of {len} bytes is over {MAX_INFO_BYTES}"));
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.map_err(|err| err.to_string())?;
    String::from_utf8(body).map_err(|_| "INFO reply is not UTF-8".to_owned())
}

/// The counters in an `INFO` reply.
pub fn parse_info(text: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key {
            "used_cpu_sys" | "used_cpu_user" => snapshot.cpu_s += value.trim().parse::<f64>().unwrap_or(0.0),
            "total_net_input_bytes" | "total_net_output_bytes" => {
                snapshot.net_bytes += value.trim().parse::<u64>().unwrap_or(0);
            }
            "used_memory" => snapshot.used_memory = value.trim().parse().unwrap_or(0),
            // Our own probing is not the service's cost.
            "cmdstat_info" => {}
            key if key.starts_with("cmdstat_") => {
                let calls = value.split(',').find_map(|field| field.strip_prefix("calls="));
                snapshot.commands += calls.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    snapshot
}

/// Adds what happened between two snapshots to `report`, per `count` units of work (matches,
/// relayed messages, sessions) named `unit`, under keys ending in `_per_{key}`.
pub fn cost_figures(report: &mut Report, before: Snapshot, after: Snapshot, count: f64, key: &str, unit: &str) {
    if count <= 0.0 {
        return;
    }
    let commands = after.commands.saturating_sub(before.commands) as f64;
    let cpu_us = (after.cpu_s - before.cpu_s).max(0.0) * 1e6;
    let bytes = after.net_bytes.saturating_sub(before.net_bytes) as f64;
    report.figure(
        &format!("redis_commands_per_{key}"),
        &format!("Redis commands per {unit}"),
        commands / count,
        "cmd",
        Better::Lower,
    );
    report.figure(
        &format!("redis_cpu_us_per_{key}"),
        &format!("Redis CPU per {unit}"),
        cpu_us / count,
        "µs",
        Better::Lower,
    );
    report.figure(
        &format!("redis_bytes_per_{key}"),
        &format!("Redis network bytes per {unit}"),
        bytes / count,
        "B",
        Better::Lower,
    );
    report.note("Redis figures include every instance's heartbeat (one per second each) during the run");
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9\r\n\
        # Stats\r\ntotal_net_input_bytes:1000\r\ntotal_net_output_bytes:500\r\n\
        # Memory\r\nused_memory:123456\r\nused_memory_human:120K\r\n\
        # Commandstats\r\ncmdstat_evalsha:calls=40,usec=800,usec_per_call=20.00\r\n\
        cmdstat_blmpop:calls=2,usec=10,usec_per_call=5.00\r\ncmdstat_info:calls=7,usec=70\r\n";

    #[test]
    fn info_counts_commands_but_its_own_cpu_net_and_memory() {
        let snapshot = parse_info(INFO);
        assert_eq!(snapshot, Snapshot { commands: 42, cpu_s: 3.75, net_bytes: 1500, used_memory: 123_456 });
    }

    #[test]
    fn costs_are_divided_by_the_work_done() {
        let mut report = Report::new("pairing", "strangers", "ws://x", "", serde_json::json!({}));
        let before = Snapshot { commands: 10, cpu_s: 1.0, net_bytes: 100, used_memory: 0 };
        let after = Snapshot { commands: 110, cpu_s: 1.5, net_bytes: 5_100, used_memory: 0 };
        cost_figures(&mut report, before, after, 50.0, "match", "match");
        let value = |key: &str| report.figures.iter().find(|f| f.key == key).map(|f| f.value);
        assert_eq!(value("redis_commands_per_match"), Some(2.0));
        assert_eq!(value("redis_cpu_us_per_match"), Some(10_000.0));
        assert_eq!(value("redis_bytes_per_match"), Some(100.0));
    }
}
