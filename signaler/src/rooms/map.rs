//! The rooms whose rules run on this instance: every room in memory, or on Redis the rooms
//! this instance owns. A sharded map; each input is one critical section on its room's shard,
//! and what the room decides is handed out inside it (posting never waits), so one sender's
//! messages reach each peer in the order sent. Deadlines (grace windows, idle code rooms) are
//! kept in time order and acted on by one task.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use rules::rooms::{Input, Kind, Output, Room, RoomRecord, RoomSettings};
use rules::{HomeId, Millis, RoomId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::deliver::{deliver, Figures, Text};
use crate::locals::Locals;

/// Where outputs for other instances' sockets go (on Redis); in memory there are none.
pub trait Remote: Send + Sync {
    /// Hands on an output for a socket of instance `output`'s `to.home`.
    fn send(&self, room: RoomId, output: Output<Text>);
    /// A room's record changed (or, with `None`, the room is over).
    fn record(&self, room: RoomId, record: Option<RoomRecord>);
}

/// No other instances.
pub struct Alone;

impl Remote for Alone {
    fn send(&self, _room: RoomId, _output: Output<Text>) {}
    fn record(&self, _room: RoomId, _record: Option<RoomRecord>) {}
}

/// What an input found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The room was there (or was created).
    Room,
    /// No such room, and none was to be created.
    Nothing,
}

/// The rooms of this instance's rules.
pub struct RoomMap {
    rooms: DashMap<RoomId, Room<Text>>,
    timers: Mutex<BTreeSet<(Millis, RoomId)>>,
    wake: Notify,
    settings: RoomSettings,
    home: HomeId,
    locals: Arc<Locals>,
    figures: Figures,
    remote: Box<dyn Remote>,
}

impl RoomMap {
    /// No rooms yet.
    pub fn new(
        settings: RoomSettings,
        home: HomeId,
        locals: Arc<Locals>,
        figures: Figures,
        remote: Box<dyn Remote>,
    ) -> Self {
        RoomMap {
            rooms: DashMap::new(),
            timers: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            settings,
            home,
            locals,
            figures,
            remote,
        }
    }

    /// Applies `input` to `room` at `now`, creating the room as `create` if it does not exist.
    pub fn apply(&self, room: RoomId, create: Option<Kind>, now: Millis, input: Input<Text>) -> Found {
        let (mut entry, created) = match (self.rooms.get_mut(&room), create) {
            (Some(entry), _) => (entry, false),
            (None, Some(kind)) => {
                (self.rooms.entry(room).or_insert_with(|| Room::new(room, kind, self.settings, now)), true)
            }
            (None, None) => return Found::Nothing,
        };
        entry.apply(now, input);
        self.after(room, &mut entry, now);
        let finished = entry.is_finished(now);
        drop(entry);
        if finished {
            self.finish(room, now);
        } else if created {
            self.count();
        }
        Found::Room
    }

    /// Puts a room rebuilt elsewhere (a takeover) under this instance's rules.
    pub fn adopt(&self, room: Room<Text>, now: Millis) {
        let id = room.id();
        let mut entry = self.rooms.entry(id).or_insert(room);
        self.after(id, &mut entry, now);
        drop(entry);
        self.count();
    }

    /// Whether this instance runs `room`'s rules.
    pub fn has(&self, room: RoomId) -> bool {
        self.rooms.contains_key(&room)
    }

    /// Hands a room over (its record), forgetting it here.
    pub fn release(&self, room: RoomId) -> Option<RoomRecord> {
        let record = self.rooms.remove(&room).map(|(_, r)| r.record());
        self.count();
        record
    }

    /// How many rooms run here.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room runs here.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room's id (for an instance going away).
    pub fn ids(&self) -> Vec<RoomId> {
        self.rooms.iter().map(|r| *r.key()).collect()
    }

    /// The sockets of instance `home` that are members of a room here.
    pub fn sockets_on(&self, home: HomeId) -> HashSet<u64> {
        let mut sockets = HashSet::new();
        for room in self.rooms.iter() {
            sockets.extend(room.conns().filter(|c| c.home == home).map(|c| c.socket));
        }
        sockets
    }

    /// Applies `input` to every room (an instance is gone, or drains).
    pub fn apply_all(&self, now: Millis, input: Input<Text>) {
        for id in self.ids() {
            self.apply(id, None, now, input.clone());
        }
    }

    /// Hands out what the room decided, keeps its deadline, records a change.
    fn after(&self, id: RoomId, room: &mut Room<Text>, now: Millis) {
        for output in room.outputs() {
            let home = output.to().home;
            if home == self.home {
                deliver(&self.locals, &self.figures, output);
            } else {
                self.remote.send(id, output);
            }
        }
        if let Some(at) = room.next_deadline() {
            let earliest = {
                let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
                let earliest = timers.first().is_none_or(|(first, _)| at < *first);
                timers.insert((at, id));
                earliest
            };
            if earliest {
                self.wake.notify_one();
            }
        }
        if room.take_changed() && !room.is_finished(now) {
            self.remote.record(id, Some(room.record()));
        }
    }

    /// Updates the rooms gauge: only when a room came or went (counting locks every shard), and
    /// never while holding an entry.
    fn count(&self) {
        self.figures.rooms.set(self.rooms.len() as i64);
    }

    fn finish(&self, room: RoomId, now: Millis) {
        if self.rooms.remove_if(&room, |_, r| r.is_finished(now)).is_some() {
            self.remote.record(room, None);
        }
        self.count();
    }

    /// Acts on every deadline due by `now`.
    pub fn tick(&self, now: Millis) {
        loop {
            let due = {
                let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
                match timers.first() {
                    Some((at, _)) if *at <= now => timers.pop_first(),
                    _ => None,
                }
            };
            let Some((_, id)) = due else { return };
            let Some(mut room) = self.rooms.get_mut(&id) else { continue };
            room.tick(now);
            self.after(id, &mut room, now);
            let finished = room.is_finished(now);
            drop(room);
            if finished {
                self.finish(id, now);
            }
        }
    }

    /// Runs the deadlines until `stop`.
    pub async fn run_timers(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let next = self.timers.lock().unwrap_or_else(PoisonError::into_inner).first().map(|(at, _)| *at);
            let sleep = match next {
                Some(at) => std::time::Duration::from_millis(at.saturating_sub(crate::now_ms())),
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                () = stop.cancelled() => return,
            }
            self.tick(crate::now_ms());
        }
    }
}
