//! What every service binary does around its `serve`: logs, file limit, listener, signals, and
//! an exit code that tells configuration mistakes apart.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::config::{config_error, process_env};
use crate::error::Error;
use crate::lifecycle::{termination_signal, Lifecycle};

/// Runs a service binary: `body` gets the environment and a lifecycle whose shutdown starts on
/// SIGTERM/SIGINT, and returns whether shutdown finished within its grace period.
pub async fn run<F, Fut>(name: &str, body: F) -> ExitCode
where
    F: FnOnce(Vec<(String, String)>, Lifecycle) -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    if let Err(err) = crate::telemetry::init() {
        eprintln!("{name}: {err}");
        return ExitCode::from(2);
    }
    raise_file_limit();
    let lifecycle = Lifecycle::new();
    let on_signal = lifecycle.clone();
    tokio::spawn(async move {
        termination_signal().await;
        tracing::info!("shutdown signal received; draining");
        on_signal.begin_shutdown();
    });
    match body(process_env(), lifecycle).await {
        Ok(true) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            tracing::warn!("stopped before every connection closed (grace period over)");
            ExitCode::SUCCESS
        }
        Err(err @ Error::Config(_)) => {
            eprintln!("{name}: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Listens on `host:port`; a failure names the variable that chose the port.
///
/// # Errors
/// [`Error::Config`] naming `variable` when the address cannot be bound.
pub async fn bind(host: IpAddr, port: u16, variable: &str) -> Result<TcpListener, Error> {
    let address = SocketAddr::new(host, port);
    TcpListener::bind(address).await.map_err(|err| config_error(variable, format!("cannot listen on {address}: {err}")))
}

/// Raises the soft open-file limit to the hard limit (every socket is a file) and logs how many
/// connections that allows.
pub fn raise_file_limit() -> u64 {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(%err, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    };
    // A few descriptors go to the listener, logs and the runtime.
    tracing::info!(open_file_limit = limit, "can hold about {} connections", limit.saturating_sub(32));
    limit
}
