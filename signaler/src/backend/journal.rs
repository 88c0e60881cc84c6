//! What the rooms this instance owns say to the rest of the world: outputs for sockets on other
//! instances go to those instances' inboxes, and each room's record (who is in it) goes to the
//! room's hash, fenced by this instance's claim on the room, so that a new owner can rebuild
//! it. Records are written behind (coalesced per room, in order): the sockets that would miss
//! a record lost with its owner say where they are again when the room changes hands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use rules::rooms::{Output, RoomRecord};
use rules::{HomeId, RoomId};
use shared::redis::fenced::{Batch, BatchError};
use shared::redis::inbox::Pusher;
use shared::redis::{wire, RedisLink, COMMAND_TIMEOUT};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::keys::Keys;
use super::wire::Entry;
use crate::deliver::Text;
use crate::rooms::map::Remote;

/// The rooms this instance owns (with the claim each is held by), and the way out of them.
pub struct Journal {
    home: HomeId,
    keys: Keys,
    pusher: Pusher,
    inboxes: DashMap<HomeId, Arc<str>>,
    /// Room -> the `owner` value this instance holds it by.
    owned: DashMap<RoomId, String>,
    pending: Mutex<HashMap<RoomId, Option<RoomRecord>>>,
    wake: Notify,
    /// Rooms whose claim moved on (another instance took them over): released by the owner.
    lost: Mutex<Vec<RoomId>>,
}

impl Journal {
    /// A journal for `home`, pushing through `pusher`.
    pub fn new(home: HomeId, keys: Keys, pusher: Pusher) -> Self {
        Journal {
            home,
            keys,
            pusher,
            inboxes: DashMap::new(),
            owned: DashMap::new(),
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            lost: Mutex::new(Vec::new()),
        }
    }

    /// The inbox list of `home`.
    pub fn inbox(&self, home: HomeId) -> Arc<str> {
        if let Some(key) = self.inboxes.get(&home) {
            return key.clone();
        }
        let key: Arc<str> = Arc::from(self.keys.inbox(home));
        self.inboxes.insert(home, key.clone());
        key
    }

    /// Sends an entry to `home`'s inbox.
    pub fn push(&self, home: HomeId, entry: &Entry) {
        self.pusher.push(&self.inbox(home), wire::encode(entry));
    }

    /// This instance now owns `room`, by the claim `value`.
    pub fn own(&self, room: RoomId, value: String) {
        self.owned.insert(room, value);
    }

    /// Whether this instance owns `room`.
    pub fn owns(&self, room: RoomId) -> bool {
        self.owned.contains_key(&room)
    }

    /// Forgets a room this instance no longer owns.
    pub fn disown(&self, room: RoomId) {
        self.owned.remove(&room);
    }

    /// Rooms found lost since the last call.
    pub fn take_lost(&self) -> Vec<RoomId> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Writes pending records until `stop` (and what is pending then).
    pub async fn run(self: Arc<Self>, link: RedisLink, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                () = self.wake.notified() => false,
                () = stop.cancelled() => true,
            };
            self.flush(&link).await;
            if stopping {
                return;
            }
        }
    }

    /// Writes every pending record now.
    pub async fn flush(&self, link: &RedisLink) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for (room, record) in pending {
            let Some(value) = self.owned.get(&room).map(|v| v.clone()) else { continue };
            let key = self.keys.room(room);
            let mut batch = Batch::new(key.clone(), "owner", value);
            let over = record.is_none();
            match record {
                Some(record) => batch.write("HSET", &key, [b"record".to_vec(), wire::encode(&record)]),
                None => batch.write("DEL", &key, []),
            }
            let mut conn = link.conn();
            let written = tokio::time::timeout(COMMAND_TIMEOUT, batch.run(&mut conn)).await;
            match written {
                Ok(Ok(())) => {
                    if over {
                        self.owned.remove(&room);
                        let mut srem = redis::cmd("SREM");
                        srem.arg(self.keys.owned(self.home)).arg(room.to_string());
                        let _ = tokio::time::timeout(COMMAND_TIMEOUT, srem.query_async::<()>(&mut conn)).await;
                    }
                }
                Ok(Err(BatchError::Fenced)) => {
                    tracing::info!(%room, "another instance took this room over");
                    self.owned.remove(&room);
                    self.lost.lock().unwrap_or_else(PoisonError::into_inner).push(room);
                }
                Ok(Err(BatchError::Redis(err))) => {
                    tracing::warn!(%err, %room, "room record not written");
                }
                Err(_) => tracing::warn!(%room, "room record not written: Redis timed out"),
            }
        }
    }
}

impl Remote for Arc<Journal> {
    fn send(&self, _room: RoomId, output: Output<Text>) {
        let home = output.to().home;
        self.push(home, &Entry::Deliver { output });
    }

    fn record(&self, room: RoomId, record: Option<RoomRecord>) {
        if !self.owns(room) {
            return;
        }
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(room, record);
        self.wake.notify_one();
    }
}
