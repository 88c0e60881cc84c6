//! The queue task of one instance on Redis. It is the owner of the queue while it holds the
//! lease, and a follower otherwise:
//! - as a follower it forwards its sockets' inputs to the owner (the stream `in`), in order,
//!   and tries to take the lease every heartbeat;
//! - as the owner it runs the rules on its own sockets' inputs and on the stream's, and after
//!   each step commits, as one fenced batch, the clients' records, what other instances' sockets
//!   must hear (their `ev:` lists) and how far it read the stream; only then does it tell its own
//!   sockets. An owner that lost the lease writes nothing and steps down.
//!
//! A new owner rebuilds the rules from the records (waiting clients keep their order) and goes
//! on reading the stream where the last commit left it, so no forwarded input is lost or applied
//! twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use rules::matchmaking::{Client, Input, Matchmaking, Output, Settings};
use rules::{ClientId, HomeId};
use shared::redis::fenced::{Batch, BatchError, MAX_ARGS_PER_WRITE};
use shared::redis::lease::Lease;
use shared::redis::liveness::{Health, Liveness};
use shared::redis::{unavailable, wire, RedisLink, BLOCK_FOR, COMMAND_TIMEOUT, HEARTBEAT_INTERVAL, MAX_BACKOFF};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use crate::queue::memory::deadline_of;
use crate::queue::shell::Shell;
use crate::queue::{now_ms, AdminAnswer, Command, Stats, MAX_BATCH};

/// Inputs read from the stream, with the id of the last one.
type StreamBatch = (String, Vec<Input>);

/// Everything the task works with.
pub struct QueueTask {
    pub shell: Shell,
    pub settings: Settings,
    pub commands: mpsc::Receiver<Command>,
    pub link: RedisLink,
    pub keys: Keys,
    pub lease: Lease,
    pub liveness: Liveness,
    pub health: Health,
    pub stop: CancellationToken,
    /// The figures the owner last published, for a follower's `/api/stats`.
    pub stats: Arc<Mutex<Stats>>,
}

/// The owner's side of the task.
struct Owned {
    /// The lease's value: the fence every commit checks.
    value: String,
    /// The stream reader.
    remote: mpsc::Receiver<StreamBatch>,
    reader: CancellationToken,
}

impl QueueTask {
    /// Runs until stopped: then it applies what its sockets still sent, and gives the lease back.
    pub async fn run(mut self) {
        let mut owned: Option<Owned> = None;
        // Inputs that must reach the owner (a socket opened or closed, a presence answer) but
        // could not be forwarded yet.
        let mut retry: VecDeque<Input> = VecDeque::new();
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buffer = Vec::with_capacity(MAX_BATCH);
        loop {
            let deadline = match &owned {
                Some(_) => deadline_of(&self.shell.core),
                None => Instant::now() + Duration::from_secs(3600),
            };
            let remote = async {
                match owned.as_mut() {
                    Some(o) => o.remote.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                received = self.commands.recv_many(&mut buffer, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    let inputs = self.answer_stats(buffer.drain(..), owned.is_some());
                    self.step(&mut owned, &mut retry, inputs, None).await;
                }
                Some((last, inputs)) = remote => {
                    self.step(&mut owned, &mut retry, Vec::new(), Some((last, inputs))).await;
                }
                () = sleep_until(deadline) => self.step(&mut owned, &mut retry, Vec::new(), None).await,
                _ = beat.tick() => self.beat(&mut owned, &mut retry).await,
            }
        }
        // Stopping: what the sockets still said goes where it belongs, then the lease goes back.
        let mut last = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            last.push(command);
        }
        let inputs = self.answer_stats(last.into_iter(), owned.is_some());
        self.step(&mut owned, &mut retry, inputs, None).await;
        if let Some(owned) = owned {
            owned.reader.cancel();
            let _ =
                tokio::time::timeout(COMMAND_TIMEOUT, self.lease.release(&mut self.link.conn(), &owned.value)).await;
            tracing::info!("gave the queue's lease back");
        }
    }

    /// Answers `Stats` requests; returns the inputs.
    fn answer_stats(&self, commands: impl Iterator<Item = Command>, owner: bool) -> Vec<Input> {
        let mut inputs = Vec::new();
        for command in commands {
            match command {
                Command::Apply(input) => inputs.push(input),
                Command::Stats(reply) => {
                    let stats = if owner {
                        self.shell.core.stats().into()
                    } else {
                        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
                    };
                    let _ = reply.send(stats);
                }
                Command::Admin(query, reply) if owner => {
                    let _ = reply.send(AdminAnswer::from_rules(&self.shell.core, query));
                }
                Command::Admin(query, reply) => {
                    let (conn, keys) = (self.link.conn(), self.keys.clone());
                    tokio::spawn(async move {
                        let _ = reply.send(super::safety::answer(conn, keys, query).await);
                    });
                }
            }
        }
        inputs
    }

    /// One step: as the owner, apply and commit; as a follower, forward.
    async fn step(
        &mut self,
        owned: &mut Option<Owned>,
        retry: &mut VecDeque<Input>,
        local: Vec<Input>,
        remote: Option<StreamBatch>,
    ) {
        let Some(owner) = owned.as_ref() else {
            self.forward(retry, local).await;
            return;
        };
        // What could not be forwarded while there was no owner comes first, in order.
        let local: Vec<Input> = if retry.is_empty() { local } else { retry.drain(..).chain(local).collect() };
        let now = now_ms();
        let (cursor, remote_inputs) = match remote {
            Some((last, inputs)) => (Some(last), inputs),
            None => (None, Vec::new()),
        };
        let outcome = if local.is_empty() && remote_inputs.is_empty() {
            self.shell.tick(now)
        } else {
            self.shell.step(now, local.iter().cloned().chain(remote_inputs))
        };
        let changes = self.shell.core.take_changes();
        let mut batch = Batch::new(self.keys.lease.clone(), "", owner.value.clone());
        write_changes(&mut batch, &self.keys, changes);
        write_events(&mut batch, &self.keys, outcome.remote);
        super::safety::write(&mut batch, &self.keys, &outcome.safety);
        if let Some(cursor) = &cursor {
            batch.write("SET", &self.keys.cursor, [cursor.clone().into_bytes()]);
            batch.write("XTRIM", &self.keys.input, [b"MINID".to_vec(), next_id(cursor).into_bytes()]);
        }
        let committed = if batch.is_empty() {
            Ok(())
        } else {
            let mut conn = self.link.conn();
            match tokio::time::timeout(COMMAND_TIMEOUT, batch.run(&mut conn)).await {
                Ok(result) => result,
                Err(_) => Err(BatchError::Redis(redis::RedisError::from((redis::ErrorKind::Io, "commit timed out")))),
            }
        };
        match committed {
            Ok(()) => {
                self.health.set("queue", true);
                super::learn_templates(
                    &self.link,
                    &self.keys.signaling,
                    &self.shell.delivery.signaling,
                    &outcome.local,
                )
                .await;
                self.shell.count(&outcome.safety);
                self.shell.deliver(outcome.local);
                self.shell.figures.show(self.shell.core.stats().into());
            }
            Err(err) => {
                // Nothing of this step happened: the next owner applies the stream's inputs again
                // from the last commit, and ours go to it through the stream.
                tracing::warn!(%err, "queue commit failed; stepping down");
                self.health.set("queue", !matches!(err, BatchError::Redis(_)));
                if let Some(owner) = owned.take() {
                    owner.reader.cancel();
                }
                self.shell.core = Matchmaking::new(self.settings, shared::random::ids());
                self.forward(retry, local).await;
            }
        }
    }

    /// Sends inputs to the owner through the stream, in order. When Redis cannot take them,
    /// requests are answered `unavailable`, and what must not be lost waits for the next try.
    async fn forward(&mut self, retry: &mut VecDeque<Input>, inputs: Vec<Input>) {
        let mut pending: Vec<Input> = retry.drain(..).collect();
        pending.extend(inputs);
        if pending.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for input in &pending {
            pipe.cmd("XADD").arg(&self.keys.input).arg("*").arg("i").arg(wire::encode(input)).ignore();
        }
        let mut conn = self.link.conn();
        let sent = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        if matches!(sent, Ok(Ok(()))) {
            return;
        }
        tracing::warn!(inputs = pending.len(), "cannot forward to the queue's owner");
        for input in pending {
            match input {
                Input::Available { conn }
                | Input::Next { conn }
                | Input::Leave { conn }
                | Input::Block { conn }
                | Input::Report { conn, .. }
                | Input::Resume { conn, .. } => {
                    if let Some(local) = self.shell.locals.get(conn.socket) {
                        local.outbox.reject(&unavailable());
                    }
                }
                Input::Connect { .. }
                | Input::Closed { .. }
                | Input::Presence { .. }
                | Input::Identify { .. }
                | Input::Ban { .. }
                | Input::Unban { .. }
                | Input::HomeGone { .. }
                | Input::Drain { .. } => {
                    retry.push_back(input);
                }
                // The `available` or `next` it came with is answered `unavailable`; the client
                // sends its interests again with the next one.
                Input::Interests { .. } => {}
            }
        }
    }

    /// Every heartbeat: keep or take the lease; as the owner, look for dead instances and publish
    /// the figures; as a follower, read them; everyone learns the instances' signaling URLs.
    async fn beat(&mut self, owned: &mut Option<Owned>, retry: &mut VecDeque<Input>) {
        let mut conn = self.link.conn();
        if let Some(owner) = owned.as_ref() {
            let renewed = tokio::time::timeout(COMMAND_TIMEOUT, self.lease.renew(&mut conn, &owner.value)).await;
            match renewed {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    tracing::warn!("the queue's lease moved on; stepping down");
                    if let Some(owner) = owned.take() {
                        owner.reader.cancel();
                    }
                    self.shell.core = Matchmaking::new(self.settings, shared::random::ids());
                }
                _ => self.health.set("queue", false),
            }
        } else if !self.stop.is_cancelled() {
            if let Ok(Ok(Some(value))) = tokio::time::timeout(COMMAND_TIMEOUT, self.lease.try_acquire(&mut conn)).await
            {
                match self.take_over(value).await {
                    Ok((owner, cursor, tx)) => {
                        let reader = owner.reader.clone();
                        *owned = Some(owner);
                        // What was forwarded before (this instance's own inputs included) comes
                        // before anything its sockets say from now on.
                        if let Some(cursor) = self.catch_up(owned, retry, cursor).await {
                            tokio::spawn(read_stream(self.link.clone(), self.keys.input.clone(), cursor, tx, reader));
                        }
                        // Commit what the rebuild decided (matches that no longer hold, pairs).
                        self.step(owned, retry, Vec::new(), None).await;
                    }
                    Err(err) => tracing::warn!(%err, "could not take over the queue"),
                }
            }
        }
        if owned.is_some() {
            self.bury_dead(owned, retry).await;
            let stats = self.shell.core.stats();
            let _: Result<Result<(), _>, _> = tokio::time::timeout(
                COMMAND_TIMEOUT,
                conn.hset_multiple(
                    &self.keys.stats,
                    &[("online", stats.online), ("waiting", stats.waiting), ("rooms", stats.rooms)],
                ),
            )
            .await;
        } else {
            self.forward(retry, Vec::new()).await;
            let read: Result<redis::RedisResult<HashMap<String, i64>>, _> =
                tokio::time::timeout(COMMAND_TIMEOUT, conn.hgetall(&self.keys.stats)).await;
            if let Ok(Ok(figures)) = read {
                let stats = Stats {
                    online: figures.get("online").copied().unwrap_or(0),
                    waiting: figures.get("waiting").copied().unwrap_or(0),
                    rooms: figures.get("rooms").copied().unwrap_or(0),
                };
                *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = stats;
                self.shell.figures.show(stats);
            }
        }
        let templates: Result<redis::RedisResult<HashMap<String, String>>, _> =
            tokio::time::timeout(COMMAND_TIMEOUT, conn.hgetall(&self.keys.signaling)).await;
        if let Ok(Ok(templates)) = templates {
            for (home, template) in templates {
                if let Ok(home) = uuid::Uuid::parse_str(&home) {
                    self.shell.delivery.signaling.learn(home, &template);
                }
            }
        }
    }

    /// The sockets of instances that died count as dropped.
    async fn bury_dead(&mut self, owned: &mut Option<Owned>, retry: &mut VecDeque<Input>) {
        let mut conn = self.link.conn();
        let Ok(Ok(dead)) = tokio::time::timeout(COMMAND_TIMEOUT, self.liveness.dead(&mut conn)).await else { return };
        for home in dead {
            tracing::info!(instance = %home, "an instance is gone; its clients are away");
            self.step(owned, retry, vec![Input::HomeGone { home }], None).await;
            if owned.is_none() {
                return;
            }
            let _ = self.liveness.forget(&mut conn, home).await;
            let _: redis::RedisResult<()> = conn.hdel(&self.keys.signaling, home.to_string()).await;
            let _: redis::RedisResult<()> = conn.del(self.keys.events(home)).await;
        }
    }

    /// Becomes the owner: rebuilds the rules from the records. Returns where the stream's
    /// committed inputs end and the channel its reader will feed.
    async fn take_over(&mut self, value: String) -> redis::RedisResult<(Owned, String, mpsc::Sender<StreamBatch>)> {
        let mut conn = self.link.conn();
        let records = load_records(&mut conn, &self.keys.clients).await?;
        let safety = super::safety::load(&mut conn, &self.keys).await?;
        let cursor: Option<String> = conn.get(&self.keys.cursor).await?;
        let cursor = cursor.unwrap_or_else(|| "0-0".to_owned());
        tracing::info!(clients = records.len(), %cursor, lease = %value, "took over the queue");
        self.shell.core =
            Matchmaking::restore(self.settings, shared::random::ids(), now_ms(), records, safety).track_changes();
        let (tx, remote) = mpsc::channel(16);
        let reader = self.stop.child_token();
        Ok((Owned { value, remote, reader }, cursor, tx))
    }

    /// Applies every input already in the stream after `cursor`; returns where they end, or
    /// `None` when this instance is no longer the owner.
    async fn catch_up(
        &mut self,
        owned: &mut Option<Owned>,
        retry: &mut VecDeque<Input>,
        mut cursor: String,
    ) -> Option<String> {
        loop {
            let mut conn = self.link.conn();
            let start = format!("({cursor}");
            let mut read = redis::cmd("XRANGE");
            read.arg(&self.keys.input).arg(&start).arg("+").arg("COUNT").arg(MAX_BATCH);
            let page = tokio::time::timeout(COMMAND_TIMEOUT, read.query_async::<StreamRangeReply>(&mut conn)).await;
            let Ok(Ok(page)) = page else {
                tracing::warn!("cannot read the queue's stream; stepping down");
                if let Some(owner) = owned.take() {
                    owner.reader.cancel();
                }
                self.shell.core = Matchmaking::new(self.settings, shared::random::ids());
                return None;
            };
            let Some(last) = page.ids.last().map(|entry| entry.id.clone()) else { return Some(cursor) };
            let inputs = page.ids.iter().filter_map(stream_input).collect();
            self.step(owned, retry, Vec::new(), Some((last.clone(), inputs))).await;
            owned.as_ref()?;
            cursor = last;
        }
    }
}

/// The input an entry of the stream carries (malformed ones are counted and skipped).
fn stream_input(entry: &StreamId) -> Option<Input> {
    let bytes: Option<Vec<u8>> = entry.get("i");
    bytes.and_then(|b| wire::decode::<Input>(&b, "queue input"))
}

/// One page of `HSCAN`: the next cursor, and field/value pairs.
type HashPage = (u64, Vec<(Vec<u8>, Vec<u8>)>);

/// Every client record, read in pages.
async fn load_records(conn: &mut shared::redis::RedisConn, key: &str) -> redis::RedisResult<Vec<(ClientId, Client)>> {
    let mut records = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): HashPage =
            redis::cmd("HSCAN").arg(key).arg(cursor).arg("COUNT").arg(1_000).query_async(conn).await?;
        for (id, record) in page {
            let id = std::str::from_utf8(&id).ok().and_then(|id| uuid::Uuid::parse_str(id).ok());
            if let (Some(id), Some(record)) = (id, wire::decode::<Client>(&record, "client record")) {
                records.push((id, record));
            }
        }
        if next == 0 {
            return Ok(records);
        }
        cursor = next;
    }
}

/// Records that changed go into the batch: written, or deleted when the client is forgotten.
fn write_changes(batch: &mut Batch, keys: &Keys, changes: Vec<(ClientId, Option<Client>)>) {
    let mut forgotten = Vec::new();
    let mut written = Vec::new();
    for (id, record) in changes {
        match record {
            Some(record) => {
                written.push(id.to_string().into_bytes());
                written.push(wire::encode(&record));
            }
            None => forgotten.push(id.to_string().into_bytes()),
        }
    }
    for chunk in written.chunks(MAX_ARGS_PER_WRITE) {
        batch.write("HSET", &keys.clients, chunk.iter().cloned());
    }
    for chunk in forgotten.chunks(MAX_ARGS_PER_WRITE) {
        batch.write("HDEL", &keys.clients, chunk.iter().cloned());
    }
}

/// What other instances' sockets must hear goes into the batch, in order, per instance.
fn write_events(batch: &mut Batch, keys: &Keys, outputs: Vec<Output>) {
    let mut by_home: Vec<(HomeId, Vec<Vec<u8>>)> = Vec::new();
    for output in outputs {
        let home = output.to().home;
        let entry = wire::encode(&output);
        match by_home.iter_mut().find(|(h, _)| *h == home) {
            Some((_, entries)) => entries.push(entry),
            None => by_home.push((home, vec![entry])),
        }
    }
    for (home, entries) in by_home {
        let key = keys.events(home);
        for chunk in entries.chunks(MAX_ARGS_PER_WRITE) {
            batch.write("RPUSH", &key, chunk.iter().cloned());
        }
    }
}

/// The stream id right after `id` (`ms-seq` → `ms-(seq+1)`), for trimming up to `id`.
fn next_id(id: &str) -> String {
    match id.split_once('-').map(|(ms, seq)| (ms, seq.parse::<u64>())) {
        Some((ms, Ok(seq))) => format!("{ms}-{}", seq.saturating_add(1)),
        _ => id.to_owned(),
    }
}

/// Reads the stream after `cursor` until `stop`, handing each batch to the owner.
async fn read_stream(
    link: RedisLink,
    key: String,
    mut cursor: String,
    tx: mpsc::Sender<StreamBatch>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let options =
        StreamReadOptions::default().count(MAX_BATCH).block(usize::try_from(BLOCK_FOR.as_millis()).unwrap_or(1_000));
    while !stop.is_cancelled() {
        let mut conn = match link.dedicated(BLOCK_FOR).await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::debug!(%err, "stream reader: cannot reach Redis");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        loop {
            let (keys, ids) = ([key.as_str()], [cursor.as_str()]);
            let read = tokio::select! {
                read = conn.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &options) => read,
                () = stop.cancelled() => return,
            };
            let reply = match read {
                Ok(Some(reply)) => reply,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(%err, "stream reader: lost Redis");
                    break;
                }
            };
            let mut inputs = Vec::new();
            for stream in reply.keys {
                for entry in stream.ids {
                    cursor = entry.id.clone();
                    inputs.extend(stream_input(&entry));
                }
            }
            if tx.send((cursor.clone(), inputs)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_stream_id_follows_its_sequence() {
        assert_eq!(next_id("1700000000000-0"), "1700000000000-1");
        assert_eq!(next_id("5-41"), "5-42");
    }
}
