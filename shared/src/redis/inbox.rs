//! Lists that one instance reads: whatever others push to it arrives in the order pushed, and
//! what is pushed while the reader reconnects waits for it (unlike pub/sub).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionLike;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::liveness::Health;
use super::{RedisLink, BLOCK_FOR, COMMAND_TIMEOUT, MAX_BACKOFF};

/// Entries taken per read.
pub const READ_BATCH: usize = 512;
/// Bytes waiting to be pushed at most; beyond, pushes are dropped (and counted) until Redis
/// takes them again.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Reads the list `key` until `stop`, handing each batch of entries to `deliver` in order (the
/// next read waits for it). Reconnects by itself, reporting to `health` as `part`.
pub fn spawn_reader<F, Fut>(
    link: RedisLink,
    key: String,
    health: Health,
    part: &'static str,
    stop: CancellationToken,
    mut deliver: F,
) where
    F: FnMut(Vec<Vec<u8>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        while !stop.is_cancelled() {
            let mut conn = match link.dedicated(BLOCK_FOR).await {
                Ok(conn) => conn,
                Err(err) => {
                    health.set(part, false);
                    tracing::debug!(%err, part, "cannot reach Redis");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            health.set(part, true);
            backoff = Duration::from_millis(50);
            let mut blmpop = redis::cmd("BLMPOP");
            blmpop.arg(BLOCK_FOR.as_secs_f64()).arg(1).arg(&key).arg("LEFT").arg("COUNT").arg(READ_BATCH);
            loop {
                let read = tokio::select! {
                    read = blmpop.query_async::<Option<(String, Vec<Vec<u8>>)>>(&mut conn) => read,
                    () = stop.cancelled() => return,
                };
                match read {
                    Ok(Some((_, entries))) => deliver(entries).await,
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(%err, part, "lost Redis while reading");
                        health.set(part, false);
                        break;
                    }
                }
            }
        }
    });
}

#[derive(Default)]
struct Pending {
    by_key: HashMap<Arc<str>, Vec<Vec<u8>>>,
    bytes: usize,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

/// Pushes entries to lists (other instances' inboxes) in batches, in order per list. A push
/// never waits: one task sends everything pending as one `RPUSH` per list.
#[derive(Clone)]
pub struct Pusher(Arc<Shared>);

impl Pusher {
    /// A pusher sending through `link` until `stop`.
    pub fn start(link: &RedisLink, stop: CancellationToken) -> Self {
        let shared = Arc::new(Shared { pending: Mutex::default(), wake: Notify::new() });
        let pusher = Pusher(shared.clone());
        let link = link.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = stop.cancelled() => return,
                }
                loop {
                    let batch = std::mem::take(&mut *shared.pending.lock().unwrap_or_else(PoisonError::into_inner));
                    if batch.by_key.is_empty() {
                        break;
                    }
                    send(&link, batch).await;
                }
            }
        });
        pusher
    }

    /// Queues `entry` for the list `key`.
    pub fn push(&self, key: &Arc<str>, entry: Vec<u8>) {
        let mut pending = self.0.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.bytes + entry.len() > MAX_PENDING_BYTES {
            drop(pending);
            tracing::warn!(list = %key, "Redis is not taking entries; dropping one");
            return;
        }
        pending.bytes += entry.len();
        let was_empty = pending.by_key.is_empty();
        pending.by_key.entry(key.clone()).or_default().push(entry);
        drop(pending);
        if was_empty {
            self.0.wake.notify_one();
        }
    }
}

/// One `RPUSH` per list (in chunks), the lists in parallel.
async fn send(link: &RedisLink, batch: Pending) {
    let sends = batch.by_key.into_iter().map(|(key, entries)| {
        let mut conn = link.conn();
        async move {
            let mut pipe = redis::pipe();
            for chunk in entries.chunks(super::fenced::MAX_ARGS_PER_WRITE) {
                pipe.cmd("RPUSH").arg(&*key).arg(chunk).ignore();
            }
            let sent = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::warn!(list = %key, entries = entries.len(), "could not push to Redis; entries lost");
            }
        }
    });
    futures_util::future::join_all(sends).await;
}

/// Pushes entries to one list now, waiting for Redis.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn push_now<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    entries: &[Vec<u8>],
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for chunk in entries.chunks(super::fenced::MAX_ARGS_PER_WRITE) {
        pipe.cmd("RPUSH").arg(key).arg(chunk).ignore();
    }
    pipe.query_async(conn).await
}
