//! Rooms shared through Redis. Each room's rules run on one instance at a time, its owner: the
//! instance of the first peer that joined it (so a room whose peers share an instance never
//! touches Redis for a relay), found by a claim on the room's hash that carries a fencing
//! token. Inputs for a room owned elsewhere go to the owner's inbox; outputs for sockets
//! elsewhere go to their instances' inboxes. When an owner dies, an instance holding one of the
//! room's peers takes it over (a claim against the dead owner's token), rebuilds it from its
//! record, and the peers it holds say they are still there. No rule is written here: every
//! owner runs [`rules::rooms`], exactly as the in-memory build does.
//!
//! Layout: [`keys`] (what lives where), [`wire`] (inbox entries), [`journal`] (records and
//! the way out), and the routing and takeovers here.

pub mod journal;
pub mod keys;
pub mod wire;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use redis::AsyncCommands;
use rules::rooms::{Input, Kind, Output, Refusal, Room, RoomRecord, RoomSettings};
use rules::{Conn, HomeId, Millis, PeerId, RoomId};
use shared::lifecycle::Lifecycle;
use shared::redis::inbox::{spawn_reader, Pusher};
use shared::redis::liveness::{Health, Liveness};
use shared::redis::scripts::HASH_CLAIM;
use shared::redis::{wire as redis_wire, RedisLink, COMMAND_TIMEOUT, HEARTBEAT_INTERVAL, INSTANCE_TTL};
use tokio_util::sync::CancellationToken;

use self::journal::Journal;
use self::keys::{Keys, TAG};
use self::wire::Entry;
use crate::deliver::{deliver, Figures, Text};
use crate::locals::Locals;
use crate::rooms::map::{Found, RoomMap};

/// How many times an input follows a room that changed hands before it is given up.
const MAX_REROUTES: usize = 3;

/// A room this instance's sockets are in: who runs its rules, and which of our sockets are in it.
#[derive(Debug, Clone, Default)]
struct Route {
    owner: Option<HomeId>,
    members: Vec<(Conn, PeerId, Millis)>,
    /// What kind of room it is (to rebuild it when its owner died before recording it).
    kind: Option<Kind>,
}

/// The rooms of every instance, as this one sees them.
pub struct RedisRooms {
    home: HomeId,
    link: RedisLink,
    keys: Keys,
    map: Arc<RoomMap>,
    journal: Arc<Journal>,
    locals: Arc<Locals>,
    figures: Figures,
    settings: RoomSettings,
    routes: DashMap<RoomId, Route>,
    /// Rooms this instance is claiming right now, with how many claims are in flight: Redis may
    /// already name it the owner while a claim's answer is on its way back.
    claiming: DashMap<RoomId, usize>,
    alive: RwLock<HashSet<HomeId>>,
    /// Dead instances already dealt with.
    buried: RwLock<HashSet<HomeId>>,
    liveness: Liveness,
    stop: CancellationToken,
}

impl RedisRooms {
    /// Connects and starts this instance's inbox, record writer and heartbeat.
    ///
    /// # Errors
    /// [`shared::Error::Config`] naming `REDIS_URL` when Redis stays unreachable.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        url: &str,
        cluster: bool,
        prefix: &str,
        home: HomeId,
        settings: RoomSettings,
        locals: Arc<Locals>,
        figures: Figures,
        lifecycle: &Lifecycle,
    ) -> Result<Arc<Self>, shared::Error> {
        let link = RedisLink::connect(url, cluster, prefix).await?;
        let keys = Keys::new(&link);
        let stop = CancellationToken::new();
        let health = Health::new(lifecycle);
        let liveness = Liveness::new(&link, TAG, home);
        if let Err(err) = liveness.beat(&mut link.conn()).await {
            return Err(shared::config::config_error("REDIS_URL", format!("cannot register with Redis: {err}")));
        }
        let mut alive = liveness.alive(&mut link.conn()).await.unwrap_or_default();
        alive.insert(home);
        let pusher = Pusher::start(&link, stop.clone());
        let journal = Arc::new(Journal::new(home, keys.clone(), pusher));
        let map = Arc::new(RoomMap::new(settings, home, locals.clone(), figures.clone(), Box::new(journal.clone())));
        let rooms = Arc::new(RedisRooms {
            home,
            link: link.clone(),
            keys: keys.clone(),
            map: map.clone(),
            journal: journal.clone(),
            locals,
            figures,
            settings,
            routes: DashMap::new(),
            claiming: DashMap::new(),
            alive: RwLock::new(alive),
            buried: RwLock::new(HashSet::new()),
            liveness: liveness.clone(),
            stop: stop.clone(),
        });
        tokio::spawn(map.run_timers(stop.clone()));
        tokio::spawn(journal.run(link.clone(), stop.clone()));
        liveness.spawn_heartbeat(health.clone(), stop.clone());
        let reader = rooms.clone();
        spawn_reader(link, keys.inbox(home), health, "inbox", stop.clone(), move |entries| {
            let rooms = reader.clone();
            async move {
                for entry in entries {
                    if let Some(entry) = redis_wire::decode::<Entry>(&entry, "signaler inbox") {
                        rooms.on_entry(entry).await;
                    }
                }
            }
        });
        let watcher = rooms.clone();
        tokio::spawn(async move { watcher.watch().await });
        Ok(rooms)
    }

    /// Stops: what the rooms owe Redis is written, and this instance leaves the living (so that
    /// others take over its rooms at once).
    pub async fn stop(&self) {
        self.journal.flush(&self.link).await;
        self.stop.cancel();
        self.liveness.leave(&mut self.link.conn()).await;
    }

    /// `join`: the socket is in the room from now on (as far as this instance's routing goes),
    /// and the join goes to the room's owner (this instance, if nobody owns it yet).
    pub async fn join(
        &self,
        room: RoomId,
        kind: Kind,
        conn: Conn,
        peer: PeerId,
        admits_until: Millis,
        input: Input<Text>,
    ) {
        {
            let mut route = self.routes.entry(room).or_default();
            route.members.retain(|(c, _, _)| *c != conn);
            route.members.push((conn, peer, admits_until));
            route.kind = Some(kind.clone());
        }
        self.route(room, conn, Some(kind), input).await;
    }

    /// Any other input from one of this instance's sockets.
    pub async fn apply(&self, room: RoomId, conn: Conn, input: Input<Text>) {
        let leaving = matches!(input, Input::Leave { .. } | Input::Closed { .. });
        self.route(room, conn, None, input).await;
        if leaving {
            let mut empty = false;
            if let Some(mut route) = self.routes.get_mut(&room) {
                route.members.retain(|(c, _, _)| *c != conn);
                empty = route.members.is_empty();
            }
            if empty {
                self.routes.remove_if(&room, |_, r| r.members.is_empty());
            }
        }
    }

    /// Sends `drain` to the owner of every room this instance's sockets are in, and returns
    /// those sockets.
    pub async fn drain(&self, drain: Input<Text>) -> HashSet<u64> {
        let routes: Vec<(RoomId, Vec<Conn>)> = self
            .routes
            .iter()
            .map(|route| (*route.key(), route.members.iter().map(|(conn, _, _)| *conn).collect()))
            .collect();
        let mut sockets = HashSet::new();
        for (room, members) in routes {
            let Some(conn) = members.first().copied() else { continue };
            sockets.extend(members.iter().map(|c| c.socket));
            self.route(room, conn, None, drain.clone()).await;
        }
        sockets
    }

    /// Sends an input to the room's owner, finding (or becoming) it first.
    async fn route(&self, room: RoomId, conn: Conn, create: Option<Kind>, input: Input<Text>) {
        let owner = match self.owner(room, create.is_some()).await {
            Ok(owner) => owner,
            Err(()) => {
                if matches!(input, Input::Join { .. } | Input::Relay { .. }) {
                    crate::deliver::unavailable(&self.locals, conn.socket, &shared::redis::unavailable());
                }
                return;
            }
        };
        self.dispatch(room, owner, create, input, 0);
    }

    fn dispatch(&self, room: RoomId, owner: Option<HomeId>, create: Option<Kind>, input: Input<Text>, hops: u8) {
        match owner {
            Some(owner) if owner == self.home => {
                let conn = input_conn(&input);
                if self.map.apply(room, create, crate::now_ms(), input) == Found::Nothing {
                    self.refuse_not_joined(conn);
                }
            }
            Some(owner) => self.journal.push(owner, &Entry::Apply { room, from: self.home, create, input, hops }),
            None => self.refuse_not_joined(input_conn(&input)),
        }
    }

    /// A relay into a room that does not exist is `not-joined`; anything else there is moot.
    fn refuse_not_joined(&self, conn: Option<Conn>) {
        if let Some(conn) = conn.filter(|c| c.home == self.home) {
            deliver(&self.locals, &self.figures, Output::Refuse { to: conn, refusal: Refusal::NotJoined });
        }
    }

    /// Who runs `room`'s rules: the cached owner while it lives; else whoever Redis names,
    /// taking the room over from a dead owner, or claiming a room nobody owns when `create`.
    /// `Ok(None)`: there is no such room.
    async fn owner(&self, room: RoomId, create: bool) -> Result<Option<HomeId>, ()> {
        let cached = self.routes.get(&room).and_then(|r| r.owner);
        if let Some(owner) = cached {
            if owner == self.home && self.journal.owns(room) || owner != self.home && self.is_alive(owner).await {
                return Ok(Some(owner));
            }
        }
        for _ in 0..MAX_REROUTES {
            let mut conn = self.link.conn();
            let key = self.keys.room(room);
            let current: Option<String> = match tokio::time::timeout(COMMAND_TIMEOUT, conn.hget(&key, "owner")).await {
                Ok(Ok(current)) => current,
                _ => return Err(()),
            };
            let owner = match current.as_deref().map(parse_claim) {
                None | Some(None) if !create => return Ok(None),
                None | Some(None) => self.claim(room, "").await?,
                Some(Some((home, _))) if home == self.home && self.journal.owns(room) => Some(home),
                Some(Some((home, _))) if home == self.home && self.claiming.contains_key(&room) => {
                    // Our own claim of it is in flight (another of our sockets is joining): once
                    // it lands we own the room; claiming it again would be a takeover of
                    // ourselves.
                    self.wait_for_claim(room).await;
                    continue;
                }
                Some(Some((home, _))) if home != self.home && self.is_alive(home).await => Some(home),
                Some(Some(_)) => self.claim(room, current.as_deref().unwrap_or_default()).await?,
            };
            if let Some(owner) = owner {
                self.routes.entry(room).or_default().owner = Some(owner);
                return Ok(Some(owner));
            }
        }
        Err(())
    }

    /// Claims `room` against its current owner value `expected` (empty: nobody). On success
    /// this instance runs the room: rebuilt from its record when it had one (the previous owner
    /// died: its sockets count as dropped), and the sockets this instance holds in it say
    /// they are there. `Ok(None)`: somebody else claimed it first; look again.
    async fn claim(&self, room: RoomId, expected: &str) -> Result<Option<HomeId>, ()> {
        *self.claiming.entry(room).or_insert(0) += 1;
        let claimed = self.claim_now(room, expected).await;
        if let Some(mut count) = self.claiming.get_mut(&room) {
            *count -= 1;
        }
        self.claiming.remove_if(&room, |_, count| *count == 0);
        claimed
    }

    /// Waits (bounded) until this instance's claim of `room` has its answer.
    async fn wait_for_claim(&self, room: RoomId) {
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        while self.claiming.contains_key(&room) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    async fn claim_now(&self, room: RoomId, expected: &str) -> Result<Option<HomeId>, ()> {
        let mut conn = self.link.conn();
        let key = self.keys.room(room);
        let mut claim = HASH_CLAIM.prepare_invoke();
        claim.key(&key).arg("owner").arg(expected).arg(self.home.to_string()).arg("fence");
        let claimed: (i64, String) = match tokio::time::timeout(COMMAND_TIMEOUT, claim.invoke_async(&mut conn)).await {
            Ok(Ok(claimed)) => claimed,
            _ => return Err(()),
        };
        if claimed.0 != 1 {
            return Ok(None);
        }
        self.journal.own(room, claimed.1);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.keys.owned(self.home)).arg(room.to_string());
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, sadd.query_async::<()>(&mut conn)).await;
        if expected.is_empty() {
            return Ok(Some(self.home));
        }
        // A takeover: the room as its last owner recorded it, with that owner's sockets dropped.
        let now = crate::now_ms();
        let record: Option<Vec<u8>> =
            tokio::time::timeout(COMMAND_TIMEOUT, conn.hget(&key, "record")).await.ok().and_then(Result::ok);
        let rebuilt = record
            .and_then(|bytes| redis_wire::decode::<RoomRecord>(&bytes, "room record"))
            .map(|record| Room::restore(room, self.settings, record));
        tracing::info!(%room, previous = expected, "took a room over");
        let recorded: Vec<Conn> = rebuilt.as_ref().map(|r| r.conns().collect()).unwrap_or_default();
        if let Some(rebuilt) = rebuilt {
            self.map.adopt(rebuilt, now);
            if let Some((dead, _)) = parse_claim(expected) {
                self.map.apply(room, None, now, Input::HomeGone { home: dead });
            }
        }
        // Our sockets in the room say so: silently where the record has them, with a join
        // (and its `joined`) where the old owner died before recording them.
        let (members, kind) = self.routes.get(&room).map(|r| (r.members.clone(), r.kind.clone())).unwrap_or_default();
        let kind = kind.unwrap_or(Kind::Matched);
        for (conn, peer, admits_until) in members {
            let input = if recorded.contains(&conn) {
                Input::Rejoin { conn, peer, admits_until }
            } else {
                Input::Join { conn, peer, admits_until }
            };
            self.map.apply(room, Some(kind.clone()), now, input);
        }
        Ok(Some(self.home))
    }

    /// Whether `home` is alive: known from the last heartbeat, or asked of Redis for an
    /// instance that started since.
    async fn is_alive(&self, home: HomeId) -> bool {
        if self.alive.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&home) {
            return true;
        }
        if self.buried.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&home) {
            return false;
        }
        let mut conn = self.link.conn();
        let alive = tokio::time::timeout(COMMAND_TIMEOUT, self.liveness.is_alive(&mut conn, home)).await;
        let alive = matches!(alive, Ok(Ok(true)));
        if alive {
            self.alive.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(home);
        }
        alive
    }

    /// One inbox entry.
    async fn on_entry(&self, entry: Entry) {
        match entry {
            Entry::Deliver { output } => deliver(&self.locals, &self.figures, output),
            Entry::Apply { room, from, create, input, hops } => {
                if self.journal.owns(room) {
                    let conn = input_conn(&input);
                    if self.map.apply(room, create, crate::now_ms(), input) == Found::Nothing {
                        if let Some(conn) = conn {
                            self.send_to(conn, Output::Refuse { to: conn, refusal: Refusal::NotJoined });
                        }
                    }
                } else {
                    self.journal.push(from, &Entry::NotOwner { room, create, input, hops });
                }
            }
            Entry::NotOwner { room, create, input, hops } => {
                if let Some(mut route) = self.routes.get_mut(&room) {
                    route.owner = None;
                }
                if usize::from(hops) >= MAX_REROUTES {
                    tracing::warn!(%room, "the room's owner keeps moving; input given up");
                    return;
                }
                match self.owner(room, create.is_some()).await {
                    Ok(owner) => self.dispatch(room, owner, create, input, hops + 1),
                    Err(()) => tracing::warn!(%room, "cannot find the room's owner; input given up"),
                }
            }
        }
    }

    fn send_to(&self, conn: Conn, output: Output<Text>) {
        if conn.home == self.home {
            deliver(&self.locals, &self.figures, output);
        } else {
            self.journal.push(conn.home, &Entry::Deliver { output });
        }
    }

    /// Every heartbeat: learn who is alive; rooms of dead instances are taken over by the
    /// instances whose sockets are in them, their sockets count as dropped in the rooms this
    /// instance runs, and one instance clears what is left of them once nobody can come back.
    async fn watch(&self) {
        let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = self.stop.cancelled() => return,
            }
            for room in self.journal.take_lost() {
                self.map.release(room);
                if let Some(mut route) = self.routes.get_mut(&room) {
                    route.owner = None;
                }
            }
            let mut conn = self.link.conn();
            let Ok(Ok(alive)) = tokio::time::timeout(COMMAND_TIMEOUT, self.liveness.alive(&mut conn)).await else {
                continue;
            };
            *self.alive.write().unwrap_or_else(std::sync::PoisonError::into_inner) = alive.clone();
            let Ok(Ok(dead)) = tokio::time::timeout(COMMAND_TIMEOUT, self.liveness.dead(&mut conn)).await else {
                continue;
            };
            for home in dead {
                let new = self.buried.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(home);
                if new {
                    tracing::info!(instance = %home, "a signaler instance is gone; its peers are away");
                    self.map.apply_all(crate::now_ms(), Input::HomeGone { home });
                    self.janitor(home).await;
                }
                let orphans: Vec<RoomId> =
                    self.routes.iter().filter(|r| r.owner == Some(home)).map(|r| *r.key()).collect();
                for room in orphans {
                    if let Some(mut route) = self.routes.get_mut(&room) {
                        route.owner = None;
                    }
                    let _ = self.owner(room, false).await;
                }
            }
        }
    }

    /// If nobody else does, clears the rooms a dead instance owned once the grace window has
    /// passed for its peers (rooms someone took over meanwhile are not its any more).
    async fn janitor(&self, dead: HomeId) {
        let mut conn = self.link.conn();
        let mut lock = redis::cmd("SET");
        lock.arg(self.keys.janitor(dead)).arg(self.home.to_string()).arg("NX").arg("PX").arg(600_000);
        let won: Option<String> = match tokio::time::timeout(COMMAND_TIMEOUT, lock.query_async(&mut conn)).await {
            Ok(Ok(won)) => won,
            _ => return,
        };
        if won.is_none() {
            return;
        }
        let (link, keys, liveness) = (self.link.clone(), self.keys.clone(), self.liveness.clone());
        let wait = std::time::Duration::from_millis(self.settings.resume_grace.max(self.settings.idle)) + INSTANCE_TTL;
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
            let mut conn = link.conn();
            let rooms: Vec<String> = conn.smembers(keys.owned(dead)).await.unwrap_or_default();
            for room in rooms {
                let Ok(room) = uuid::Uuid::parse_str(&room) else { continue };
                let key = keys.room(room);
                let owner: Option<String> = conn.hget(&key, "owner").await.unwrap_or(None);
                if let Some(owner) = owner.filter(|o| parse_claim(o).is_some_and(|(home, _)| home == dead)) {
                    let mut batch = shared::redis::fenced::Batch::new(key.clone(), "owner", owner);
                    batch.write("DEL", &key, []);
                    let _ = batch.run(&mut conn).await;
                }
            }
            let _: redis::RedisResult<()> = conn.del(keys.owned(dead)).await;
            let _: redis::RedisResult<()> = conn.del(keys.inbox(dead)).await;
            let _ = liveness.forget(&mut conn, dead).await;
            tracing::info!(instance = %dead, "cleared what a dead signaler instance left");
        });
    }
}

/// `"<home> <fence>"` as its parts.
fn parse_claim(value: &str) -> Option<(HomeId, u64)> {
    let (home, fence) = value.split_once(' ')?;
    Some((uuid::Uuid::parse_str(home).ok()?, fence.parse().ok()?))
}

/// The socket an input is about.
fn input_conn(input: &Input<Text>) -> Option<Conn> {
    match input {
        Input::Join { conn, .. }
        | Input::Relay { conn, .. }
        | Input::Leave { conn }
        | Input::Closed { conn, .. }
        | Input::Rejoin { conn, .. } => Some(*conn),
        Input::HomeGone { .. } | Input::Drain { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_back_as_home_and_fence() {
        let home = uuid::Uuid::new_v4();
        assert_eq!(parse_claim(&format!("{home} 7")), Some((home, 7)));
        assert_eq!(parse_claim("garbage"), None);
        assert_eq!(parse_claim(""), None);
    }
}
