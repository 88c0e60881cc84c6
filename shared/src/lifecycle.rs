//! Start and stop on purpose: the shutdown signal, readiness, and the tasks to wait for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ws::Sockets;

/// How long before the end of the shutdown grace period the sockets still open are closed with
/// 1001: time for the close handshake (at most 1 s per socket, all at once) and what the
/// sessions do when they end, before the process exits.
pub const CLOSING_TIME: Duration = Duration::from_secs(2);

/// Shared by everything a service runs: one token that starts shutdown, the open sockets it
/// closes, one tracker that knows every task still running, and the readiness flags `/readyz`
/// reports.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    shutdown: CancellationToken,
    sockets: Sockets,
    tasks: TaskTracker,
    backend_down: Arc<AtomicBool>,
}

impl Lifecycle {
    /// A running service.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The open sockets, which shutdown closes.
    pub fn sockets(&self) -> &Sockets {
        &self.sockets
    }

    /// Starts shutdown: readiness turns false, the listener stops, and no new socket is
    /// admitted. Open sockets stay: the service drains them (clients not in a chat get 1012 at
    /// once), and [`Lifecycle::wait`] closes the rest with 1001 at the end of the grace period.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
        self.sockets.refuse_new();
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Records whether a backend the service needs is reachable.
    pub fn set_backend_up(&self, up: bool) {
        self.backend_down.store(!up, Ordering::Relaxed);
    }

    /// Whether the service accepts work: not draining, and its backends reachable.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && !self.backend_down.load(Ordering::Relaxed)
    }

    /// Runs a task that shutdown waits for.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// After [`begin_shutdown`](Self::begin_shutdown): waits for every task; the sockets still
    /// open when `grace` is nearly over ([`CLOSING_TIME`] before) get close code 1001, and the
    /// wait ends at `grace`. Returns whether every task finished in time.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tasks.close();
        let until_close = grace.saturating_sub(CLOSING_TIME);
        if tokio::time::timeout(until_close, self.tasks.wait()).await.is_ok() {
            return true;
        }
        self.sockets.close_all();
        tokio::time::timeout(grace - until_close, self.tasks.wait()).await.is_ok()
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
