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

impl Shared {
    /// Puts entries that could not be sent back in front of what was pushed since, per list.
    fn requeue(&self, failed: Pending) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.bytes += failed.bytes;
        for (key, mut entries) in failed.by_key {
            if let Some(newer) = pending.by_key.remove(&key) {
                entries.extend(newer);
            }
            pending.by_key.insert(key, entries);
        }
    }
}

/// The first wait before entries Redis refused are sent again; it doubles up to `MAX_BACKOFF`.
const RETRY_AFTER: Duration = Duration::from_millis(50);

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
                let mut backoff = RETRY_AFTER;
                loop {
                    let batch = std::mem::take(&mut *shared.pending.lock().unwrap_or_else(PoisonError::into_inner));
                    if batch.by_key.is_empty() {
                        break;
                    }
                    let failed = send(&link, batch).await;
                    if failed.by_key.is_empty() {
                        backoff = RETRY_AFTER;
                        continue;
                    }
                    // Redis refused them: they go back before anything newer, and are tried
                    // again once it answers (bounded by MAX_PENDING_BYTES, as new pushes are).
                    shared.requeue(failed);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
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

/// One `RPUSH` per list (in chunks), the lists in parallel. Returns the entries Redis refused
/// (not written: they may be sent again). Entries whose push timed out may have been written,
/// and are given up rather than risk delivering them twice.
async fn send(link: &RedisLink, batch: Pending) -> Pending {
    let sends = batch.by_key.into_iter().map(|(key, entries)| {
        let mut conn = link.conn();
        async move {
            let mut pipe = redis::pipe();
            for chunk in entries.chunks(super::fenced::MAX_ARGS_PER_WRITE) {
                pipe.cmd("RPUSH").arg(&*key).arg(chunk).ignore();
            }
            match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => {
                    tracing::warn!(list = %key, entries = entries.len(), %err, "Redis refused a push; will retry");
                    Some((key, entries))
                }
                Err(_) => {
                    tracing::warn!(list = %key, entries = entries.len(), "a push to Redis timed out; entries given up");
                    None
                }
            }
        }
    });
    let mut failed = Pending::default();
    for (key, entries) in futures_util::future::join_all(sends).await.into_iter().flatten() {
        failed.bytes += entries.iter().map(Vec::len).sum::<usize>();
        failed.by_key.insert(key, entries);
    }
    failed
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_with(entries: &[(&str, &[u8])]) -> Shared {
        let shared = Shared { pending: Mutex::default(), wake: Notify::new() };
        for (key, entry) in entries {
            let mut pending = shared.pending.lock().unwrap();
            pending.bytes += entry.len();
            pending.by_key.entry(Arc::from(*key)).or_default().push(entry.to_vec());
        }
        shared
    }

    #[test]
    fn entries_redis_refused_go_back_before_what_was_pushed_since() {
        let shared = shared_with(&[("a", b"3"), ("b", b"x")]);
        let failed = std::mem::take(&mut *shared_with(&[("a", b"1"), ("a", b"2")]).pending.lock().unwrap());
        shared.requeue(failed);
        let pending = shared.pending.lock().unwrap();
        assert_eq!(pending.by_key[&Arc::<str>::from("a")], vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(pending.by_key[&Arc::<str>::from("b")], vec![b"x".to_vec()]);
        assert_eq!(pending.bytes, 4);
    }
}
