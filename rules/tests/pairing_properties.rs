//! The pairing rules under random sequences of what clients and instances do: available,
//! next, leave, clean and unclean closes, resumes (good and stale tokens), presence checks
//! answered late or not at all, instances dying, time passing, blocks and reports (which ban
//! after two reporters). After every step:
//! - nobody is paired with itself, and a match is the same match seen from both sides;
//! - never a blocked pair, never a banned client;
//! - FIFO: of the clients that may be paired, at most one is left unpaired, and it is the
//!   youngest of those the step paired or left;
//! - nobody is lost: a client that asked for a partner and is there is waiting, being
//!   confirmed or matched (or idle because its partner left and requeueing is off, or because
//!   it is banned);
//! - nobody hears `matched` for a match that is not the one it is in.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rules::matchmaking::safety::{Reason, SafetySettings};
use rules::matchmaking::{Event, Input, Matchmaking, Output, Settings, Standing};
use rules::{ClientId, Conn, HomeId, Ids};

const HOMES: [HomeId; 2] = [uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)];
const CLIENTS: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Op {
    Available(usize),
    Next(usize),
    Leave(usize),
    /// A clean close (`true`) or a drop.
    Close(usize, bool),
    /// A new socket resumes the client, with its current token (`true`) or a stale one.
    Resume(usize, bool),
    /// Answer the oldest unanswered presence check: present or not.
    Answer(bool),
    HomeGone(usize),
    Wait(u64),
    /// The client's next `available`/`next` carries one of a few sets of interests.
    Interests(usize, usize),
    /// `block` (`false`) or `report` (`true`).
    Block(usize, bool),
}

/// Client addresses: a few, so that some clients share one and reports can ban.
const ADDRESSES: usize = 4;

/// The sets of interests clients choose from.
const INTEREST_SETS: [&[&str]; 4] = [&[], &["chess"], &["music"], &["chess", "music"]];

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    prop_oneof![
        5 => c.clone().prop_map(Op::Available),
        3 => c.clone().prop_map(Op::Next),
        1 => c.clone().prop_map(Op::Leave),
        2 => (c.clone(), any::<bool>()).prop_map(|(i, clean)| Op::Close(i, clean)),
        2 => (c, any::<bool>()).prop_map(|(i, good)| Op::Resume(i, good)),
        4 => any::<bool>().prop_map(Op::Answer),
        1 => (0..HOMES.len()).prop_map(Op::HomeGone),
        2 => prop_oneof![Just(500u64), Just(3_000), Just(25_000)].prop_map(Op::Wait),
        2 => (0..CLIENTS, 0..INTEREST_SETS.len()).prop_map(|(i, set)| Op::Interests(i, set)),
        1 => (0..CLIENTS, any::<bool>()).prop_map(|(i, report)| Op::Block(i, report)),
    ]
}

/// What the client asked for last.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wants {
    Nothing,
    Partner,
}

struct World {
    mm: Matchmaking,
    requeue: bool,
    now: u64,
    next_socket: u64,
    /// The socket each client is on now (the shell's view), by client index.
    sockets: Vec<Conn>,
    ids: Vec<ClientId>,
    wants: Vec<Wants>,
    /// Presence checks not answered yet.
    checks: Vec<(Conn, u64)>,
    /// Sockets that are closed (an instance would answer "absent" for them).
    closed: HashSet<Conn>,
    /// The last `matched` each client heard: (room, partner).
    heard_match: HashMap<ClientId, (uuid::Uuid, ClientId)>,
    /// Pairs one of which blocked (or reported) the other.
    blocked: HashSet<(ClientId, ClientId)>,
}

impl World {
    fn new(requeue: bool, rematch_cooldown: u64) -> World {
        let settings = Settings {
            requeue_on_partner_leave: requeue,
            resume_grace: 20_000,
            confirm_timeout: 3_000,
            rematch_cooldown,
            interest_wait: 10_000,
            safety: SafetySettings { report_threshold: 2, ..SafetySettings::default() },
        };
        let mut world = World {
            mm: Matchmaking::new(settings, Ids::from_seed([5; 32])),
            requeue,
            now: 1_000_000,
            next_socket: 1,
            sockets: Vec::new(),
            ids: (0..CLIENTS).map(|i| uuid::Uuid::from_u128(100 + i as u128)).collect(),
            wants: vec![Wants::Nothing; CLIENTS],
            checks: Vec::new(),
            closed: HashSet::new(),
            heard_match: HashMap::new(),
            blocked: HashSet::new(),
        };
        for i in 0..CLIENTS {
            let conn = world.new_socket(i % HOMES.len());
            world.sockets.push(conn);
            world.apply(Input::Connect { conn, client: world.ids[i], address: Some(address(i)) });
        }
        world
    }

    fn new_socket(&mut self, home: usize) -> Conn {
        self.next_socket += 1;
        Conn::new(HOMES[home], self.next_socket)
    }

    fn apply(&mut self, input: Input) {
        self.mm.apply(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        let outputs: Vec<Output> = self.mm.outputs().collect();
        for output in outputs {
            match output {
                Output::Confirm { to, check } => self.checks.push((to, check)),
                Output::Send { client, event: Event::Matched { room, partner, .. }, .. } => {
                    self.heard_match.insert(client, (room, partner));
                }
                Output::Send { client, event: Event::PartnerLeft { .. } | Event::Resumed { .. }, .. } => {
                    // A resumed client hears where it stands; a `matched` follows if it is in one.
                    self.heard_match.remove(&client);
                }
                _ => {}
            }
        }
    }

    fn present(&self, i: usize) -> bool {
        self.mm.client(self.ids[i]).is_some_and(|c| c.present)
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Available(i) | Op::Next(i) | Op::Leave(i) if self.present(i) => {
                let conn = self.sockets[i];
                let input = match op {
                    Op::Available(_) => Input::Available { conn },
                    Op::Next(_) => Input::Next { conn },
                    _ => Input::Leave { conn },
                };
                self.wants[i] = if matches!(op, Op::Leave(_)) { Wants::Nothing } else { Wants::Partner };
                if matches!(op, Op::Leave(_) | Op::Next(_)) {
                    self.heard_match.remove(&self.ids[i]);
                }
                self.apply(input);
            }
            Op::Close(i, clean) if self.present(i) => {
                let conn = self.sockets[i];
                self.closed.insert(conn);
                self.apply(Input::Closed { conn, clean });
            }
            Op::Resume(i, good) => {
                let Some(generation) = self.mm.client(self.ids[i]).map(|c| c.generation) else { return };
                let home = (self.next_socket as usize) % HOMES.len();
                let conn = self.new_socket(home);
                let fresh = uuid::Uuid::from_u128(10_000 + u128::from(self.next_socket));
                self.apply(Input::Connect { conn, client: fresh, address: Some(address(i)) });
                let generation = if good { generation } else { generation.wrapping_add(7) };
                self.apply(Input::Resume { conn, client: self.ids[i], generation });
                if self.mm.client_on(conn) == Some(self.ids[i]) {
                    let old = std::mem::replace(&mut self.sockets[i], conn);
                    self.closed.insert(old);
                } else {
                    // The socket goes on as its fresh client; this test forgets it.
                    self.closed.insert(conn);
                    self.apply(Input::Closed { conn, clean: true });
                }
            }
            Op::Answer(present) => {
                if self.checks.is_empty() {
                    return;
                }
                let (conn, check) = self.checks.remove(0);
                let present = present && !self.closed.contains(&conn);
                self.apply(Input::Presence { conn, check, present });
            }
            Op::HomeGone(h) => {
                for (i, conn) in self.sockets.clone().into_iter().enumerate() {
                    if conn.home == HOMES[h] && self.present(i) {
                        self.closed.insert(conn);
                    }
                }
                self.apply(Input::HomeGone { home: HOMES[h] });
            }
            Op::Interests(i, set) if self.present(i) => {
                let interests = INTEREST_SETS[set].iter().map(|s| (*s).to_owned()).collect();
                self.apply(Input::Interests { conn: self.sockets[i], interests: Some(interests), wait: None });
            }
            Op::Block(i, report) if self.present(i) => {
                let Some(client) = self.mm.client(self.ids[i]) else { return };
                // A client being confirmed does not know of its partner yet: to it, it waits.
                let current = match client.standing {
                    Standing::Matched { partner, .. } => Some(partner),
                    _ => None,
                };
                let partner = current.or(client.last.as_ref().map(|l| l.partner));
                if let Some(partner) = partner {
                    self.blocked.insert((self.ids[i], partner));
                    self.blocked.insert((partner, self.ids[i]));
                }
                let conn = self.sockets[i];
                self.heard_match.remove(&self.ids[i]);
                let input = match report {
                    true => Input::Report { conn, reason: Reason::Other, note: None },
                    false => Input::Block { conn },
                };
                self.apply(input);
            }
            Op::Wait(ms) => {
                self.now += ms;
                self.mm.tick(self.now);
                self.drain();
            }
            _ => {}
        }
    }

    fn banned(&self, client: &rules::matchmaking::Client) -> bool {
        self.mm.safety().banned_until(&client.identity, self.now).is_some()
    }

    /// Clients that may be paired right now, by arrival number.
    fn eligible(&self) -> Vec<(u64, ClientId)> {
        let mut list: Vec<(u64, ClientId)> = self
            .mm
            .clients()
            .filter(|(_, c)| c.present)
            .filter_map(|(id, c)| match c.standing {
                Standing::Waiting { seq, .. } => Some((seq, *id)),
                _ => None,
            })
            .collect();
        list.sort_unstable();
        list
    }

    fn check(&self, newly_paired: &[Paired]) -> Result<(), TestCaseError> {
        for (id, client) in self.mm.clients() {
            if let Standing::Matched { partner, room, .. } | Standing::Confirming { partner, room, .. } =
                client.standing
            {
                prop_assert_ne!(partner, *id, "paired with itself");
                let other = self.mm.client(partner);
                prop_assert!(other.is_some(), "partner of {} is gone", id);
                let back = other.map(|p| p.standing);
                let agrees = match back {
                    Some(
                        Standing::Matched { partner: p, room: r, .. }
                        | Standing::Confirming { partner: p, room: r, .. },
                    ) => p == *id && r == room,
                    _ => false,
                };
                prop_assert!(agrees, "{} thinks it is with {} who disagrees: {:?}", id, partner, back);
                prop_assert!(
                    !self.blocked.contains(&(*id, partner)),
                    "{} is paired with {}, whom it blocked",
                    id,
                    partner
                );
                prop_assert!(!self.banned(client), "{} is banned and paired", id);
            }
        }
        let eligible = self.eligible();
        for (i, (_, a)) in eligible.iter().enumerate() {
            for (_, b) in &eligible[i + 1..] {
                prop_assert!(
                    !self.mm.may_pair(*a, *b, self.now),
                    "two clients could be paired but wait: {:?}",
                    eligible
                );
            }
        }
        // FIFO within what is allowed: a client paired in this step took the longest-waiting
        // client it may be paired with, so nobody older than its partner that it may meet waits.
        for &(seq, id, partner_seq) in newly_paired {
            let partner = self.mm.client(id).and_then(|c| c.partner());
            let allowed = partner.is_some_and(|p| self.mm.may_pair(id, p, self.now));
            prop_assert!(
                allowed,
                "client {} was paired with {:?}, whom it may not be paired with (cooldown or interests)",
                id,
                partner
            );
            for &(waiting_seq, waiting) in &eligible {
                let skipped = waiting_seq < seq && waiting_seq < partner_seq && self.mm.may_pair(waiting, id, self.now);
                prop_assert!(
                    !skipped,
                    "client {} (arrival {}) was paired past {} (arrival {}), who waits",
                    id,
                    seq,
                    waiting,
                    waiting_seq
                );
            }
        }
        for (i, id) in self.ids.iter().enumerate() {
            let Some(client) = self.mm.client(*id) else { continue };
            if client.present && self.wants[i] == Wants::Partner && self.requeue && !self.banned(client) {
                prop_assert!(client.standing != Standing::Idle, "client {} asked for a partner and is idle", i);
            }
            if let Some((room, partner)) = self.heard_match.get(id) {
                if client.present {
                    let in_it = matches!(client.standing, Standing::Matched { room: r, partner: p, .. } if r == *room && p == *partner);
                    prop_assert!(in_it, "client {} heard of a match it is not in: {:?}", i, client.standing);
                }
            }
        }
        Ok(())
    }

    /// The clients a step moved into being confirmed: arrival number, id, partner's arrival.
    fn newly_paired(&self, before: &HashMap<ClientId, Standing>) -> Vec<Paired> {
        self.mm
            .clients()
            .filter_map(|(id, c)| match (before.get(id), c.standing) {
                (Some(Standing::Waiting { .. }), Standing::Confirming { seq, partner, .. }) => {
                    let partner_seq = self.mm.client(partner).and_then(|p| p.seq()).unwrap_or(0);
                    Some((seq, *id, partner_seq))
                }
                _ => None,
            })
            .collect()
    }
}

/// The address of client `i`.
fn address(i: usize) -> String {
    format!("192.0.2.{}", i % ADDRESSES)
}

/// A client paired in a step: its arrival number, its id, its partner's arrival number.
type Paired = (u64, ClientId, u64);

fn run(requeue: bool, rematch_cooldown: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut world = World::new(requeue, rematch_cooldown);
    for op in ops {
        let before: HashMap<ClientId, Standing> = world.mm.clients().map(|(id, c)| (*id, c.standing)).collect();
        world.step(op);
        let paired = world.newly_paired(&before);
        world.check(&paired)?;
    }
    // Once every check is answered and time has passed, nobody is left being confirmed.
    world.step(Op::Wait(3_000));
    let settled = world.mm.clients().all(|(_, c)| !matches!(c.standing, Standing::Confirming { .. }) || c.present);
    prop_assert!(settled, "an away client is still being confirmed");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pairing_rules_hold_with_requeue(ops in prop::collection::vec(op(), 1..120)) {
        run(true, 30_000, ops)?;
    }

    #[test]
    fn pairing_rules_hold_without_requeue(ops in prop::collection::vec(op(), 1..120)) {
        run(false, 30_000, ops)?;
    }

    #[test]
    fn pairing_rules_hold_with_instant_rematches(ops in prop::collection::vec(op(), 1..120)) {
        run(true, 0, ops)?;
    }
}
