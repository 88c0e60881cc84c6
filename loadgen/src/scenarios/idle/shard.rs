//! One load-generator process's share of the idle clients: open them from spread source
//! addresses, tell the parent how it goes (JSON lines on stdout), hold them until stdin closes or
//! the hold time is over, then close them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{ClientError, Ws};
use crate::limits::source_address;
use crate::scenarios::Context;
use crate::stats::Tally;
use crate::target::{Kind, Target};

/// How often a shard reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long closing the held sockets may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// What a shard tells its parent, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardEvent {
    /// Clients set up so far, and failures.
    Progress {
        /// Clients holding their sockets.
        opened: usize,
        /// Clients that failed.
        failed: usize,
    },
    /// Every client was tried; the sockets are now held.
    Ready {
        /// Matchmaker (or bare relay) sockets held.
        entry: usize,
        /// Signaler sockets held.
        signaler: usize,
        /// Clients that failed.
        failed: usize,
        /// Why.
        errors: Tally,
    },
}

/// Which share of the clients a process opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This shard's number, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Share {
    /// Parses `I/N`.
    ///
    /// # Errors
    /// A message for anything but `I/N` with `I < N`.
    pub fn parse(text: &str) -> Result<Share, String> {
        let (i, n) = text.split_once('/').ok_or("expected I/N")?;
        let index: usize = i.trim().parse().map_err(|_| "I is not a number")?;
        let count: usize = n.trim().parse().map_err(|_| "N is not a number")?;
        if count == 0 || index >= count {
            return Err("need 0 <= I < N".into());
        }
        Ok(Share { index, count })
    }

    /// The global numbers of this share's clients out of `clients`.
    pub fn range(&self, clients: usize) -> std::ops::Range<usize> {
        let (base, extra) = (clients / self.count, clients % self.count);
        let start = self.index * base + self.index.min(extra);
        start..start + base + usize::from(self.index < extra)
    }
}

/// Opens this share of `clients`, reports, holds until stdin closes or `hold` is over.
pub async fn run(ctx: &Context, share: Share, clients: usize, in_flight: usize, hold: Duration) {
    let hold_until = Instant::now() + hold;
    let target = ctx.target.clone();
    let sockets_per_client = if target.kind() == Kind::Bare { 1 } else { 2 };
    let (stop_tx, stop) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<Result<usize, ClientError>>(1_024);
    let gate = Arc::new(Semaphore::new(in_flight.max(2)));
    let range = share.range(clients);
    let total = range.len();
    let mut holders = JoinSet::new();
    for client in range {
        let sources = (0..sockets_per_client).map(|k| source_address(client * sockets_per_client + k)).collect();
        let (target, gate, done, stop) = (target.clone(), gate.clone(), done_tx.clone(), stop.clone());
        holders.spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = open(&target, sources, hold_until).await;
            drop(permit);
            match opened {
                Ok(sockets) => {
                    let _ = done.send(Ok(sockets.len())).await;
                    hold_sockets(sockets, stop).await;
                }
                Err(err) => {
                    let _ = done.send(Err(err)).await;
                }
            }
        });
    }
    drop(done_tx);

    let (mut entry, mut signaler, mut failed, mut errors) = (0, 0, 0, Tally::default());
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    while entry + failed < total {
        tokio::select! {
            result = done_rx.recv() => match result {
                None => break,
                Some(Ok(sockets)) => {
                    entry += 1;
                    signaler += sockets - 1;
                }
                Some(Err(err)) => {
                    failed += 1;
                    errors.add(&err);
                }
            },
            _ = progress.tick() => say(&ShardEvent::Progress { opened: entry, failed }),
        }
    }
    say(&ShardEvent::Ready { entry, signaler, failed, errors });

    // Hold until the parent closes our stdin (or goes away), or the hold time is over.
    let parent_done = async {
        let mut sink = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        () = parent_done => {}
        () = tokio::time::sleep_until(hold_until) => {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(CLOSE_LIMIT, async { while holders.join_next().await.is_some() {} }).await;
}

/// Opens one idle client's sockets: on the matchmaker, becomes available, is matched and joins
/// the signaler (so it is idle in a chat, where most users are); on the bare relay, connects.
async fn open(target: &Target, sources: Vec<Option<IpAddr>>, deadline: Instant) -> Result<Vec<Ws>, ClientError> {
    let source = |k: usize| -> Result<Option<IpAddr>, ClientError> {
        match sources.get(k).copied().flatten() {
            Some(ip) => Ok(Some(ip)),
            None => Err(ClientError::Connect(std::io::Error::other("no loopback source address left"))),
        }
    };
    let deadline = deadline.min(Instant::now() + target.step() * 3);
    if target.kind() == Kind::Bare {
        // Connected is enough: the relay pairs and greets it, then it idles.
        let (ws, _) = target.connect(source(0)?).await?;
        return Ok(vec![ws]);
    }
    let matched = target.match_one(source(0)?, deadline).await?;
    let signaler = target.join(&matched, source(1)?).await?;
    Ok(std::iter::once(matched.ws).chain(signaler).collect())
}

/// Keeps reading the sockets (so keepalive pings are answered) until told to stop.
async fn hold_sockets(sockets: Vec<Ws>, mut stop: watch::Receiver<bool>) {
    let drains = sockets.into_iter().map(|mut ws| async move { while let Some(Ok(_)) = ws.next().await {} });
    tokio::select! {
        _ = futures_util::future::join_all(drains) => {}
        _ = stop.wait_for(|stop| *stop) => {}
    }
}

fn say(event: &ShardEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_client_once() {
        let shares: Vec<_> = (0..3).map(|i| Share { index: i, count: 3 }.range(10)).collect();
        assert_eq!(shares, vec![0..4, 4..7, 7..10]);
        assert_eq!(Share::parse("1/3"), Ok(Share { index: 1, count: 3 }));
        assert!(Share::parse("3/3").is_err());
        assert!(Share::parse("x").is_err());
    }
}
