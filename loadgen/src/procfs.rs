//! What the load generator reads about a server process: CPU time and resident memory from
//! `/proc` for a local pid (found from the listening port when not given), or the process gauges
//! a service exports on `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Clock ticks per second in `/proc/<pid>/stat`: Linux's USER_HZ, fixed at 100 in its ABI.
const USER_HZ: f64 = 100.0;
/// How long a `/metrics` request may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP state LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// User plus system CPU time of a process (all its threads, living and gone), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// This process's own CPU time, in seconds.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The local process listening on `addr`'s port, if there is exactly one (found through the
/// socket's inode in `/proc/net/tcp*` and the processes' open files).
pub fn listener_pid(addr: SocketAddr) -> Option<u32> {
    let inode = listening_inode(addr.port())?;
    let needle = format!("socket:[{inode}]");
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let owns =
            fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == needle.as_str()));
        if owns {
            if found.is_some_and(|p| p != pid) {
                return None; // shared by several processes: ambiguous
            }
            found = Some(pid);
        }
    }
    found
}

fn listening_inode(port: u16) -> Option<String> {
    let port_hex = format!(":{port:04X}");
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && cols[1].ends_with(&port_hex) && cols[3] == TCP_LISTEN {
                return Some(cols[9].to_owned());
            }
        }
    }
    None
}

/// Fetches `http://<addr>/metrics` and returns its samples by name (labels included in the
/// name, as written).
///
/// # Errors
/// A description of what failed.
pub async fn scrape_metrics(addr: SocketAddr) -> Result<HashMap<String, f64>, String> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(body)
    };
    let response = tokio::time::timeout(METRICS_TIMEOUT, fetch).await.map_err(|_| "timed out".to_owned())??;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("answered `{}`", head.lines().next().unwrap_or("")));
    }
    Ok(parse_metrics(body))
}

fn parse_metrics(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The first sample whose name ends with `suffix` (services prefix their metric names).
pub fn metric_ending(metrics: &HashMap<String, f64>, suffix: &str) -> Option<f64> {
    metrics.iter().find(|(name, _)| name.ends_with(suffix)).map(|(_, v)| *v)
}

/// Where a server's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A local process.
    Pid(u32),
    /// Its `/metrics` endpoint (memory only; no CPU time there).
    Metrics(SocketAddr),
}

impl Probe {
    /// `pid` when given, else the local listener of `addr`, else `addr`'s `/metrics`.
    pub fn find(pid: Option<u32>, addr: SocketAddr) -> Probe {
        pid.or_else(|| listener_pid(addr)).map_or(Probe::Metrics(addr), Probe::Pid)
    }

    /// CPU seconds used so far, when known.
    pub fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Probe::Pid(pid) => cpu_seconds(*pid),
            Probe::Metrics(_) => None,
        }
    }

    /// Resident memory now, in bytes.
    pub async fn rss_bytes(&self) -> Option<u64> {
        match self {
            Probe::Pid(pid) => rss_bytes(*pid),
            Probe::Metrics(addr) => {
                let metrics = scrape_metrics(*addr).await.ok()?;
                metric_ending(&metrics, "_process_resident_memory_bytes").map(|v| v as u64)
            }
        }
    }

    /// How the figures were read, for reports.
    pub fn describe(&self) -> String {
        match self {
            Probe::Pid(pid) => format!("/proc/{pid}"),
            Probe::Metrics(addr) => format!("http://{addr}/metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[tokio::test]
    async fn finds_the_pid_of_a_local_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listener_pid(addr), Some(std::process::id()));
    }

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP x y\nsignaler_process_resident_memory_bytes 123\nerrors_total{code=\"a\"} 2\n";
        let metrics = parse_metrics(text);
        assert_eq!(metric_ending(&metrics, "_process_resident_memory_bytes"), Some(123.0));
        assert_eq!(metrics.get("errors_total{code=\"a\"}"), Some(&2.0));
    }
}
