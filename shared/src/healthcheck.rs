//! `<service> healthcheck`: asks the running service's `/healthz` and exits 0 when it answers
//! 200. Container images use it for their HEALTHCHECK, so they need no shell or curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long the probe waits for the service.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// If the first argument is `healthcheck`, probes `127.0.0.1:$PORT/healthz` (`default_port`
/// when `PORT` is unset) and returns the exit code; otherwise returns `None`.
pub fn run_if_asked(default_port: u16) -> Option<ExitCode> {
    if std::env::args().nth(1).as_deref() != Some("healthcheck") {
        return None;
    }
    let port = std::env::var("PORT").ok().and_then(|p| p.trim().parse().ok()).unwrap_or(default_port);
    Some(if probe(port).unwrap_or(false) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn probe(port: u16) -> std::io::Result<bool> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(&head == b"HTTP/1.1 200")
}
