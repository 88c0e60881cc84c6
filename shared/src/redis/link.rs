//! Connections to Redis (one server or a cluster), and key names.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{COMMAND_TIMEOUT, MAX_BACKOFF, STARTUP_PATIENCE};
use crate::config::config_error;
use crate::error::Error;

/// A connection to one Redis or to a cluster; cheap to clone (clones share it).
#[derive(Clone)]
pub enum RedisConn {
    /// One Redis, reconnecting by itself.
    Single(ConnectionManager),
    /// A Redis Cluster: each command goes to the node that holds its key's slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// This instance's link to Redis: a shared connection for commands, a way to open connections
/// of its own for blocking reads, and the key prefix.
#[derive(Clone)]
pub struct RedisLink {
    target: Target,
    conn: RedisConn,
    prefix: String,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Checks a `REDIS_URL` (one URL, or with `cluster` a comma-separated list) without connecting.
///
/// # Errors
/// [`Error::Config`] naming `REDIS_URL`.
pub fn check_url(url: &str, cluster: bool) -> Result<(), Error> {
    let urls = split_urls(url);
    if urls.is_empty() {
        return Err(config_error("REDIS_URL", "names no Redis"));
    }
    if !cluster && urls.len() > 1 {
        return Err(config_error("REDIS_URL", "lists several nodes: set REDIS_CLUSTER=true for a Redis Cluster"));
    }
    for url in urls {
        redis::Client::open(url).map_err(|err| config_error("REDIS_URL", format!("`{url}`: {err}")))?;
    }
    Ok(())
}

fn split_urls(url: &str) -> Vec<&str> {
    url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
}

impl RedisLink {
    /// Connects to `url` (with `cluster`, the cluster that the comma-separated nodes belong
    /// to), retrying for up to [`STARTUP_PATIENCE`]. Keys start with `prefix`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `REDIS_URL` when the URL is bad or Redis stays unreachable.
    pub async fn connect(url: &str, cluster: bool, prefix: &str) -> Result<Self, Error> {
        check_url(url, cluster)?;
        let urls = split_urls(url);
        let target = if cluster {
            let client = ClusterClient::builder(urls)
                .connection_timeout(COMMAND_TIMEOUT)
                .response_timeout(COMMAND_TIMEOUT)
                .retries(2)
                .max_retry_wait(u64::try_from(MAX_BACKOFF.as_millis()).unwrap_or(2_000))
                .build()
                .map_err(|err| config_error("REDIS_URL", err))?;
            Target::Cluster(Box::new(client))
        } else {
            Target::Single(redis::Client::open(urls[0]).map_err(|err| config_error("REDIS_URL", err))?)
        };
        let started = tokio::time::Instant::now();
        let conn = loop {
            match open(&target, COMMAND_TIMEOUT).await {
                Ok(conn) => break conn,
                Err(err) if started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(%err, "cannot reach Redis yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => return Err(config_error("REDIS_URL", format!("Redis unreachable: {err}"))),
            }
        };
        Ok(RedisLink { target, conn, prefix: prefix.to_owned() })
    }

    /// The shared connection for commands (reconnects by itself).
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// A connection of its own, for blocking reads that would hold up everyone else's commands
    /// on the shared one. Its response timeout leaves room for a read blocking `block_for`.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn dedicated(&self, block_for: Duration) -> redis::RedisResult<RedisConn> {
        open(&self.target, block_for + COMMAND_TIMEOUT).await
    }

    /// A key: `{prefix:tag}:rest`. Keys with the same tag live in the same cluster slot.
    pub fn key(&self, tag: &str, rest: &str) -> String {
        if rest.is_empty() {
            format!("{{{}:{tag}}}", self.prefix)
        } else {
            format!("{{{}:{tag}}}:{rest}", self.prefix)
        }
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }
}

async fn open(target: &Target, response_timeout: Duration) -> redis::RedisResult<RedisConn> {
    match target {
        Target::Single(client) => {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(COMMAND_TIMEOUT))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(MAX_BACKOFF);
            Ok(RedisConn::Single(ConnectionManager::new_with_config(client.clone(), config).await?))
        }
        Target::Cluster(client) => {
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(COMMAND_TIMEOUT)
                .set_response_timeout(response_timeout);
            Ok(RedisConn::Cluster(client.get_async_connection_with_config(config).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_nodes_need_cluster_mode() {
        assert!(check_url("redis://a:6379", false).is_ok());
        assert!(check_url("redis://a:6379,redis://b:6379", true).is_ok());
        let err = check_url("redis://a:6379,redis://b:6379", false).unwrap_err().to_string();
        assert!(err.contains("REDIS_URL") && err.contains("REDIS_CLUSTER"), "{err}");
        assert!(check_url(" , ", false).unwrap_err().to_string().contains("REDIS_URL"));
        assert!(check_url("postgres://x", false).unwrap_err().to_string().contains("REDIS_URL"));
    }
}
