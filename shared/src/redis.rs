//! The Redis link both services use when `REDIS_URL` is set: one connection for commands, one
//! blocking connection that reads this instance's inbox, and a heartbeat that keeps the instance
//! registered and cleans up after instances that died.
//!
//! Every message meant for a socket travels through the inbox list of the instance that holds
//! the socket (`RPUSH` by the Lua scripts, `BLMPOP` here). A list, unlike pub/sub, keeps what was
//! pushed while the reader reconnects, and Redis orders it: what one script pushes before another
//! is delivered first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Direction, Script};

use uuid::Uuid;

use crate::config::config_error;
use crate::error::{Error, ErrorCode, Rejected};
use crate::lifecycle::Lifecycle;

/// How often an instance renews its registration and looks for dead instances.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long an instance stays registered without a heartbeat: after this, a killed instance's
/// clients are removed from the shared queue and rooms (within one more heartbeat).
pub const INSTANCE_TTL: Duration = Duration::from_secs(5);
/// How long a Redis command may take before the request gets `unavailable`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long start-up keeps trying to reach Redis before giving up.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(30);
/// Inbox entries taken per read.
const INBOX_BATCH: usize = 256;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// This instance's link to Redis.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    conn: ConnectionManager,
    /// This instance's id, unique across the cluster.
    pub instance: Uuid,
    /// The key namespace of the service, e.g. `strangers:mm`.
    pub namespace: &'static str,
    heartbeat_ok: Arc<AtomicBool>,
    inbox_ok: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").field("instance", &self.instance).field("namespace", &self.namespace).finish()
    }
}

/// Checks a `REDIS_URL` without connecting.
///
/// # Errors
/// [`Error::Config`] naming `REDIS_URL`.
pub fn check_url(url: &str) -> Result<(), Error> {
    redis::Client::open(url).map(|_| ()).map_err(|err| config_error("REDIS_URL", err))
}

impl RedisLink {
    /// Connects, retrying for up to [`STARTUP_PATIENCE`].
    ///
    /// # Errors
    /// [`Error::Config`] naming `REDIS_URL` when the URL is bad or Redis stays unreachable.
    pub async fn connect(url: &str, namespace: &'static str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|err| config_error("REDIS_URL", err))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(MAX_BACKOFF);
        let started = tokio::time::Instant::now();
        let conn = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(conn) => break conn,
                Err(err) if started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(%err, "cannot reach Redis yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => return Err(config_error("REDIS_URL", format!("Redis unreachable: {err}"))),
            }
        };
        Ok(RedisLink {
            client,
            conn,
            instance: Uuid::new_v4(),
            namespace,
            heartbeat_ok: Arc::new(AtomicBool::new(true)),
            inbox_ok: Arc::new(AtomicBool::new(true)),
        })
    }

    /// A handle for commands (cheap to clone; reconnects by itself).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A key in this service's namespace.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.namespace)
    }

    /// Runs a service script with `args`; a Redis failure becomes `unavailable`.
    ///
    /// # Errors
    /// `unavailable` when Redis cannot be reached in time.
    pub async fn run<T: redis::FromRedisValue>(&self, script: &Script, args: &[&str]) -> Result<T, Rejected> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(self.namespace).arg(self.instance.to_string());
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                tracing::warn!(%err, "redis command failed");
                Err(unavailable())
            }
            Err(_) => {
                tracing::warn!("redis command timed out");
                Err(unavailable())
            }
        }
    }

    /// Reads this instance's inbox until shutdown, handing the entries to `deliver` in order.
    /// Reconnects by itself; readiness is down while it cannot read.
    pub fn spawn_inbox<F, Fut>(&self, lifecycle: &Lifecycle, mut deliver: F)
    where
        F: FnMut(Vec<String>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let link = self.clone();
        let lifecycle = lifecycle.clone();
        let inbox = self.key(&format!("inbox:{}", self.instance));
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            while !lifecycle.is_draining() {
                let mut conn = match link.client.get_multiplexed_async_connection().await {
                    Ok(conn) => conn,
                    Err(err) => {
                        link.set_inbox_ok(&lifecycle, false);
                        tracing::warn!(%err, "inbox: cannot reach Redis");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                };
                link.set_inbox_ok(&lifecycle, true);
                backoff = Duration::from_millis(50);
                loop {
                    let read = tokio::select! {
                        read = conn.blmpop::<_, Option<(String, Vec<String>)>>(1.0, 1, &inbox, Direction::Left, INBOX_BATCH) => read,
                        () = lifecycle.shutdown_token().cancelled() => return,
                    };
                    match read {
                        Ok(Some((_, entries))) => deliver(entries).await,
                        Ok(None) => {}
                        Err(err) => {
                            tracing::warn!(%err, "inbox: lost Redis");
                            link.set_inbox_ok(&lifecycle, false);
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Keeps this instance registered and removes dead instances with `cleanup` (given the dead
    /// instance's id). Also calls `tick` after each successful heartbeat, for figures read from
    /// Redis and retries.
    pub fn spawn_heartbeat<C, CFut, F, Fut>(&self, lifecycle: &Lifecycle, cleanup: C, mut tick: F)
    where
        C: Fn(String) -> CFut + Send + Sync + 'static,
        CFut: std::future::Future<Output = Result<(), Rejected>> + Send,
        F: FnMut(ConnectionManager) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let link = self.clone();
        let lifecycle = lifecycle.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = lifecycle.shutdown_token().cancelled() => return,
                }
                let ok = tokio::time::timeout(COMMAND_TIMEOUT, link.beat(&cleanup)).await.unwrap_or(Err(unavailable()));
                link.heartbeat_ok.store(ok.is_ok(), Ordering::Relaxed);
                link.update_readiness(&lifecycle);
                if ok.is_ok() {
                    tick(link.conn()).await;
                }
            }
        });
    }

    async fn beat<C, CFut>(&self, cleanup: &C) -> Result<(), Rejected>
    where
        C: Fn(String) -> CFut,
        CFut: std::future::Future<Output = Result<(), Rejected>>,
    {
        let mut conn = self.conn.clone();
        let instances = self.key("instances");
        let me = self.instance.to_string();
        let alive = |id: &str| self.key(&format!("alive:{id}"));
        let ttl_ms = u64::try_from(INSTANCE_TTL.as_millis()).unwrap_or(u64::MAX);
        let registered: Result<(), redis::RedisError> = redis::pipe()
            .set_options(alive(&me), 1, redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms)))
            .ignore()
            .sadd(&instances, &me)
            .ignore()
            .query_async(&mut conn)
            .await;
        registered.map_err(|_| unavailable())?;
        let members: Vec<String> = conn.smembers(&instances).await.map_err(|_| unavailable())?;
        for other in members.iter().filter(|id| **id != me) {
            let living: bool = conn.exists(alive(other)).await.map_err(|_| unavailable())?;
            if !living {
                tracing::info!(instance = %other, "removing the clients of a dead instance");
                cleanup(other.clone()).await?;
            }
        }
        Ok(())
    }

    fn set_inbox_ok(&self, lifecycle: &Lifecycle, ok: bool) {
        self.inbox_ok.store(ok, Ordering::Relaxed);
        self.update_readiness(lifecycle);
    }

    fn update_readiness(&self, lifecycle: &Lifecycle) {
        lifecycle.set_backend_up(self.heartbeat_ok.load(Ordering::Relaxed) && self.inbox_ok.load(Ordering::Relaxed));
    }

    /// Unregisters this instance at shutdown, so others clean up its clients at once.
    pub async fn unregister(&self) {
        let mut conn = self.conn.clone();
        let key = self.key(&format!("alive:{}", self.instance));
        let _: Result<(), _> = tokio::time::timeout(COMMAND_TIMEOUT, conn.del(key)).await.unwrap_or(Ok(()));
    }
}

/// The `unavailable` rejection.
pub fn unavailable() -> Rejected {
    Rejected::new(ErrorCode::Unavailable, "the shared backend (Redis) is unreachable; try again shortly")
}
