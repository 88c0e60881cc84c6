//! The matchmaker on Redis: the queue and the pairs live in Redis, every rule runs in one Lua
//! script (`matchmaker.lua`), and events reach clients through the inbox of the instance that
//! holds their socket. The task here owns this instance's sockets, just as the in-memory hub
//! does, and speaks the same [`Command`]s.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Script;
use serde_json::value::RawValue;
use shared::error::Rejected;
use shared::lifecycle::Lifecycle;
use shared::protocol::matchmaker::ServerMessage;
use shared::redis::{unavailable, RedisLink};
use shared::ticket::Tickets;
use shared::ws::Outbox;
use shared::ErrorCode;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::hub::{Command, Figures, Hub, Stats, HUB_CHANNEL_CAPACITY};
use crate::queue::ClientId;

/// The key namespace of the matchmaker.
pub const NAMESPACE: &str = "strangers:mm";

struct Client {
    outbox: Outbox,
    signaling_url: Arc<str>,
}

/// Starts the Redis-backed hub, its inbox reader and its heartbeat.
pub fn spawn(
    link: RedisLink,
    lifecycle: &Lifecycle,
    tickets: Tickets,
    ice_servers: Box<RawValue>,
    requeue_on_partner_leave: bool,
    figures: Figures,
) -> Hub {
    let (tx, rx) = mpsc::channel(HUB_CHANNEL_CAPACITY);
    let (inbox_tx, inbox_rx) = mpsc::channel::<String>(HUB_CHANNEL_CAPACITY);
    let script = Arc::new(Script::new(include_str!("matchmaker.lua")));
    link.spawn_inbox(lifecycle, move |entries| {
        let inbox_tx = inbox_tx.clone();
        async move {
            for entry in entries {
                let _ = inbox_tx.send(entry).await;
            }
        }
    });
    let requeue = if requeue_on_partner_leave { "1" } else { "0" };
    let (cleanup_link, cleanup_script) = (link.clone(), script.clone());
    let keys = StatsKeys { online: link.key("online"), queue: link.key("queue"), rooms: link.key("rooms") };
    let tick_keys = keys.clone();
    let tick_figures = figures.clone();
    link.spawn_heartbeat(
        lifecycle,
        move |dead| {
            let (link, script) = (cleanup_link.clone(), cleanup_script.clone());
            async move { run(&link, &script, "cleanup", &dead, requeue).await.map(|_| ()) }
        },
        move |mut conn| {
            let (figures, keys) = (tick_figures.clone(), tick_keys.clone());
            async move {
                if let Ok(stats) = read_stats(&mut conn, &keys).await {
                    figures.online.set(stats.online);
                    figures.waiting.set(stats.waiting);
                    figures.rooms.set(stats.rooms);
                }
            }
        },
    );
    let state = State {
        link,
        script,
        keys,
        requeue,
        clients: HashMap::new(),
        pending_disconnects: Vec::new(),
        tickets,
        ice_servers,
        figures,
    };
    tokio::spawn(state.run(rx, inbox_rx));
    Hub::new(tx)
}

/// What the script answered.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Done,
    /// Redis does not know the client (it lost its state, or the client is gone).
    Unknown,
}

/// Runs one command of the script for `subject` (a client, or a dead instance for `cleanup`).
async fn run(
    link: &RedisLink,
    script: &Script,
    command: &str,
    subject: &str,
    requeue: &str,
) -> Result<Reply, Rejected> {
    // Room ids for the pairs this command may make (at most one: pairing is eager).
    let (room_a, room_b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let reply: String = link.run(script, &[command, subject, requeue, &room_a, &room_b]).await?;
    Ok(if reply == "gone" { Reply::Unknown } else { Reply::Done })
}

/// Where the cluster-wide figures live.
#[derive(Debug, Clone)]
struct StatsKeys {
    online: String,
    queue: String,
    rooms: String,
}

async fn read_stats(conn: &mut redis::aio::ConnectionManager, keys: &StatsKeys) -> redis::RedisResult<Stats> {
    let (online, waiting, rooms): (Option<i64>, i64, Option<i64>) =
        redis::pipe().get(&keys.online).zcard(&keys.queue).get(&keys.rooms).query_async(conn).await?;
    Ok(Stats { online: online.unwrap_or(0), waiting, rooms: rooms.unwrap_or(0) })
}

struct State {
    link: RedisLink,
    keys: StatsKeys,
    script: Arc<Script>,
    requeue: &'static str,
    clients: HashMap<ClientId, Client>,
    /// Disconnects Redis did not take yet; retried so that no ghost stays in the queue.
    pending_disconnects: Vec<ClientId>,
    tickets: Tickets,
    ice_servers: Box<RawValue>,
    figures: Figures,
}

impl State {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut inbox: mpsc::Receiver<String>) {
        loop {
            let command = tokio::select! {
                command = rx.recv() => match command {
                    Some(command) => command,
                    None => return,
                },
                Some(entry) = inbox.recv() => {
                    self.deliver(&entry);
                    continue;
                }
            };
            match command {
                Command::Connect { id, outbox, signaling_url } => {
                    self.clients.insert(id, Client { outbox, signaling_url });
                    self.retry_disconnects().await;
                    let _ = run(&self.link, &self.script, "connect", &id.to_string(), self.requeue).await;
                }
                Command::Available(id) => self.request(id, "available").await,
                Command::Next(id) => self.request(id, "next").await,
                Command::Leave(id) => self.request(id, "leave").await,
                Command::Disconnect(id) => {
                    self.clients.remove(&id);
                    self.pending_disconnects.push(id);
                    self.retry_disconnects().await;
                }
                Command::Stats(reply) => {
                    let mut conn = self.link.conn();
                    if let Ok(stats) = read_stats(&mut conn, &self.keys).await {
                        let _ = reply.send(stats);
                    }
                }
            }
        }
    }

    /// Runs a client's request; registers the client first if Redis lost it (after an outage).
    async fn request(&mut self, id: ClientId, command: &str) {
        let subject = id.to_string();
        let mut result = run(&self.link, &self.script, command, &subject, self.requeue).await;
        if result == Ok(Reply::Unknown) {
            let _ = run(&self.link, &self.script, "connect", &subject, self.requeue).await;
            result = run(&self.link, &self.script, command, &subject, self.requeue).await;
        }
        if result != Ok(Reply::Done) {
            if let Some(client) = self.clients.get(&id) {
                client.outbox.reject(&unavailable());
            }
        }
    }

    async fn retry_disconnects(&mut self) {
        while let Some(id) = self.pending_disconnects.last().copied() {
            if run(&self.link, &self.script, "disconnect", &id.to_string(), self.requeue).await.is_err() {
                return;
            }
            self.pending_disconnects.pop();
        }
    }

    /// One inbox entry: `<client>\t<event>[\t<args>...]`.
    fn deliver(&self, entry: &str) {
        let mut fields = entry.split('\t');
        let (Some(client), Some(event)) = (fields.next(), fields.next()) else { return };
        let Some(id) = Uuid::parse_str(client).ok() else { return };
        let Some(client) = self.clients.get(&id) else { return };
        match event {
            "queued" => {
                client.outbox.send(&ServerMessage::Queued);
            }
            "left" => {
                client.outbox.send(&ServerMessage::Left);
            }
            "already-matched" => client
                .outbox
                .reject(&Rejected::new(ErrorCode::AlreadyMatched, "already matched; send next or leave first")),
            "partner-left" => {
                if let Some(room) = fields.next().and_then(|r| Uuid::parse_str(r).ok()) {
                    client.outbox.send(&ServerMessage::PartnerLeft { room_id: room });
                }
            }
            "matched" => {
                let room = fields.next().and_then(|r| Uuid::parse_str(r).ok());
                let partner = fields.next().and_then(|p| Uuid::parse_str(p).ok());
                let initiator = fields.next() == Some("1");
                let (Some(room), Some(partner)) = (room, partner) else { return };
                if initiator {
                    self.figures.matches.inc();
                }
                let ticket = self.tickets.issue(room, id);
                client.outbox.send(&ServerMessage::Matched {
                    room_id: room,
                    partner_id: partner,
                    initiator,
                    signaling_url: &client.signaling_url,
                    ticket: &ticket,
                    ice_servers: &self.ice_servers,
                });
            }
            other => tracing::warn!(event = other, "unknown inbox event"),
        }
    }
}
