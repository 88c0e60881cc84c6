//! The signaler on Redis: the two peers of a room may sit on different instances. Rooms and
//! held messages live in Redis; every join, relay and leave is one Lua script (`signaler.lua`),
//! and what a socket must receive goes through the inbox of the instance that holds it, so one
//! sender's messages arrive in order whichever instances are involved.

use std::sync::Arc;

use dashmap::DashMap;
use redis::{Script, Value};
use shared::error::Rejected;
use shared::lifecycle::Lifecycle;
use shared::redis::RedisLink;
use shared::ticket::{unix_now, Admission};
use shared::ws::{ConnId, Outbox};
use shared::ErrorCode;

use crate::room::{Joined, Mailbox, PeerId, RoomId, HOLD_MAX_BYTES, HOLD_MAX_MESSAGES, ROOM_CAPACITY};
use crate::rooms::Figures;

/// The key namespace of the signaler.
pub const NAMESPACE: &str = "strangers:sig";

/// Rooms shared through Redis, and this instance's sockets.
pub struct ClusterRooms {
    link: RedisLink,
    script: Arc<Script>,
    /// This instance's sockets, by connection id, for inbox deliveries.
    sockets: Arc<DashMap<ConnId, Outbox>>,
    figures: Figures,
}

impl ClusterRooms {
    /// Starts the inbox reader and the heartbeat of this instance.
    pub fn start(link: RedisLink, lifecycle: &Lifecycle, figures: Figures) -> Self {
        let script = Arc::new(Script::new(include_str!("signaler.lua")));
        let sockets: Arc<DashMap<ConnId, Outbox>> = Arc::new(DashMap::new());
        let inbox_sockets = sockets.clone();
        link.spawn_inbox(lifecycle, move |entries| {
            for entry in &entries {
                deliver(&inbox_sockets, entry);
            }
            std::future::ready(())
        });
        let (cleanup_link, cleanup_script) = (link.clone(), script.clone());
        let (rooms_key, tick_figures) = (link.key("rooms"), figures.clone());
        link.spawn_heartbeat(
            lifecycle,
            move |dead| {
                let (link, script) = (cleanup_link.clone(), cleanup_script.clone());
                async move { link.run::<Value>(&script, &["cleanup", &dead]).await.map(|_| ()) }
            },
            move |mut conn| {
                let (key, figures) = (rooms_key.clone(), tick_figures.clone());
                async move {
                    let rooms: redis::RedisResult<Option<i64>> =
                        redis::cmd("GET").arg(&key).query_async(&mut conn).await;
                    if let Ok(rooms) = rooms {
                        figures.rooms.set(rooms.unwrap_or(0));
                    }
                }
            },
        );
        ClusterRooms { link, script, sockets, figures }
    }

    /// A socket of this instance opened.
    pub fn opened(&self, outbox: &Outbox) {
        self.sockets.insert(outbox.id(), outbox.clone());
    }

    /// A socket of this instance closed.
    pub fn closed(&self, conn: ConnId) {
        self.sockets.remove(&conn);
    }

    /// Admits the holder of a verified ticket.
    ///
    /// # Errors
    /// `room-full`, or `unavailable` when Redis cannot be reached.
    pub async fn join(&self, admission: Admission, outbox: &Outbox) -> Result<Joined, Rejected> {
        let (room, peer, conn) = ids(admission.room, admission.peer, outbox.id());
        let (expires, capacity) = (admission.expires_at.to_string(), ROOM_CAPACITY.to_string());
        let reply: String = self.link.run(&self.script, &["join", &room, &peer, &conn, &expires, &capacity]).await?;
        match reply.as_str() {
            "again" => Ok(Joined::Again),
            "room-full" => Err(Rejected::new(ErrorCode::RoomFull, "this room already has its two peers")),
            _ => Ok(Joined::Entered),
        }
    }

    /// Relays a signal, or holds it until the partner joins.
    ///
    /// # Errors
    /// `not-joined`, `rate-limited`, or `unavailable` when Redis cannot be reached.
    pub async fn relay(&self, room: RoomId, peer: PeerId, conn: ConnId, text: &str) -> Result<(), Rejected> {
        let (room, peer, conn) = ids(room, peer, conn);
        let (now, max_messages, max_bytes) =
            (unix_now().to_string(), HOLD_MAX_MESSAGES.to_string(), HOLD_MAX_BYTES.to_string());
        let reply: Value =
            self.link.run(&self.script, &["relay", &room, &peer, &conn, text, &now, &max_messages, &max_bytes]).await?;
        match reply {
            Value::Int(delivered) => {
                self.figures.relayed.inc_by(u64::try_from(delivered).unwrap_or(0));
                Ok(())
            }
            Value::BulkString(reply) if reply == b"not-joined" => {
                Err(Rejected::new(ErrorCode::NotJoined, "this connection was replaced; join again"))
            }
            _ => Err(Rejected::new(
                ErrorCode::RateLimited,
                format!("your partner has not joined yet and {HOLD_MAX_MESSAGES} messages / {HOLD_MAX_BYTES} bytes already wait; message dropped"),
            )),
        }
    }

    /// Removes a peer's connection from its room.
    pub async fn leave(&self, room: RoomId, peer: PeerId, conn: ConnId) {
        let (room, peer, conn) = ids(room, peer, conn);
        if let Err(err) = self.link.run::<Value>(&self.script, &["leave", &room, &peer, &conn]).await {
            // The heartbeat of this instance keeps the membership registered; it is cleaned up
            // when this instance stops, so the partner is told then at the latest.
            tracing::warn!(%err, "leave not recorded in Redis");
        }
    }
}

fn ids(room: RoomId, peer: PeerId, conn: ConnId) -> (String, String, String) {
    (room.to_string(), peer.to_string(), conn.0.to_string())
}

/// One inbox entry: `<conn>\t<m|r>\t<text>`.
fn deliver(sockets: &DashMap<ConnId, Outbox>, entry: &str) {
    let mut parts = entry.splitn(3, '\t');
    let (Some(conn), Some(kind), Some(text)) = (parts.next(), parts.next(), parts.next()) else { return };
    let Ok(conn) = conn.parse::<u64>() else { return };
    let Some(outbox) = sockets.get(&ConnId(conn)).map(|o| o.clone()) else { return };
    match kind {
        "m" => outbox.post(text.to_owned().into()),
        "r" => outbox.replaced(),
        other => tracing::warn!(kind = other, "unknown inbox entry"),
    }
}
