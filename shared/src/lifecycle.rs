//! Start and stop on purpose: the shutdown signal, readiness, and the tasks to wait for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ws::Sockets;

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

    /// Starts shutdown: readiness turns false, sockets get close code 1001, the listener stops.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
        self.sockets.close_all();
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

    /// After [`begin_shutdown`](Self::begin_shutdown): waits for every task, at most `grace`.
    /// Returns whether all of them finished in time.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
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
