//! Which instances are alive: each one renews a key with a short expiry every heartbeat and
//! is listed in a set; one whose key expired (SIGKILL, a lost machine) is dead, and its sockets
//! count as dropped. Also the readiness of the Redis link, for `/readyz`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::ConnectionLike;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::link::RedisLink;
use super::{COMMAND_TIMEOUT, HEARTBEAT_INTERVAL, INSTANCE_TTL};
use crate::lifecycle::Lifecycle;

/// Whether each part of the Redis link works; `/readyz` is 503 while any does not.
#[derive(Debug, Clone)]
pub struct Health {
    parts: Arc<Mutex<HashMap<&'static str, bool>>>,
    lifecycle: Lifecycle,
}

impl Health {
    /// Health reported to `lifecycle`.
    pub fn new(lifecycle: &Lifecycle) -> Self {
        Health { parts: Arc::default(), lifecycle: lifecycle.clone() }
    }

    /// Records whether `part` works.
    pub fn set(&self, part: &'static str, ok: bool) {
        let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        if parts.insert(part, ok) != Some(ok) {
            if !ok {
                tracing::warn!(part, "Redis link down");
            } else {
                tracing::info!(part, "Redis link up");
            }
        }
        self.lifecycle.set_backend_up(parts.values().all(|ok| *ok));
    }
}

/// The liveness of one service's instances.
#[derive(Debug, Clone)]
pub struct Liveness {
    link: RedisLink,
    tag: &'static str,
    home: Uuid,
    homes: String,
}

impl Liveness {
    /// Liveness of the instances of the service whose keys carry `tag`, as `home` sees it.
    pub fn new(link: &RedisLink, tag: &'static str, home: Uuid) -> Self {
        Liveness { link: link.clone(), tag, home, homes: link.key(tag, "homes") }
    }

    fn alive_key(&self, home: Uuid) -> String {
        self.link.key(self.tag, &format!("alive:{home}"))
    }

    /// Renews this instance's liveness.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn beat<C: ConnectionLike + Send>(&self, conn: &mut C) -> redis::RedisResult<()> {
        let ttl = u64::try_from(INSTANCE_TTL.as_millis()).unwrap_or(5_000);
        redis::pipe()
            .cmd("SET")
            .arg(self.alive_key(self.home))
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .sadd(&self.homes, self.home.to_string())
            .ignore()
            .query_async(conn)
            .await
    }

    /// The instances that are listed but no longer alive (never this one).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn dead<C: ConnectionLike + Send>(&self, conn: &mut C) -> redis::RedisResult<Vec<Uuid>> {
        let listed: Vec<String> = redis::cmd("SMEMBERS").arg(&self.homes).query_async(conn).await?;
        let homes: Vec<Uuid> =
            listed.iter().filter_map(|h| Uuid::parse_str(h).ok()).filter(|h| *h != self.home).collect();
        if homes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for home in &homes {
            pipe.exists(self.alive_key(*home));
        }
        let alive: Vec<bool> = pipe.query_async(conn).await?;
        Ok(homes.into_iter().zip(alive).filter(|(_, alive)| !alive).map(|(home, _)| home).collect())
    }

    /// The instances alive now (this one included).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn alive<C: ConnectionLike + Send>(&self, conn: &mut C) -> redis::RedisResult<HashSet<Uuid>> {
        let listed: Vec<String> = redis::cmd("SMEMBERS").arg(&self.homes).query_async(conn).await?;
        let dead: HashSet<Uuid> = self.dead(conn).await?.into_iter().collect();
        Ok(listed.iter().filter_map(|h| Uuid::parse_str(h).ok()).filter(|h| !dead.contains(h)).collect())
    }

    /// Whether `home` is alive.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn is_alive<C: ConnectionLike + Send>(&self, conn: &mut C, home: Uuid) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS").arg(self.alive_key(home)).query_async(conn).await
    }

    /// Takes a dead instance off the list (after its sockets were dealt with).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn forget<C: ConnectionLike + Send>(&self, conn: &mut C, home: Uuid) -> redis::RedisResult<()> {
        redis::cmd("SREM").arg(&self.homes).arg(home.to_string()).query_async(conn).await
    }

    /// Says this instance is gone (a clean stop), so others need not wait for its key to expire.
    pub async fn leave<C: ConnectionLike + Send>(&self, conn: &mut C) {
        let mut del = redis::cmd("DEL");
        del.arg(self.alive_key(self.home));
        if !matches!(tokio::time::timeout(COMMAND_TIMEOUT, del.query_async::<()>(conn)).await, Ok(Ok(()))) {
            tracing::warn!("could not unregister from Redis; others will notice within the instance TTL");
        }
    }

    /// Renews this instance's liveness every heartbeat until `stop`, reporting to `health`.
    pub fn spawn_heartbeat(&self, health: Health, stop: CancellationToken) {
        let liveness = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = stop.cancelled() => return,
                }
                let mut conn = liveness.link.conn();
                let beat = tokio::time::timeout(COMMAND_TIMEOUT, liveness.beat(&mut conn)).await;
                health.set("heartbeat", matches!(beat, Ok(Ok(()))));
            }
        });
    }
}
