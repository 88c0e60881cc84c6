//! The matchmaking rules, one behaviour per test, driven the way a shell drives them.

use std::collections::HashMap;

use super::*;
use crate::ids::Ids;
use crate::Closing;

const HOME: HomeId = uuid::Uuid::from_u128(1);
const OTHER_HOME: HomeId = uuid::Uuid::from_u128(2);

/// A shell in miniature: sockets by number, presence confirmed at once unless told otherwise.
struct Sim {
    mm: Matchmaking,
    now: Millis,
    next_socket: u64,
    /// Events per client, in order.
    heard: HashMap<ClientId, Vec<Event>>,
    /// Sockets closed as replaced.
    replaced: Vec<Conn>,
    /// Sockets closed by a drain, and how.
    drained: Vec<(Conn, Closing)>,
    /// Presence checks left unanswered (for tests that answer them by hand).
    pending: Vec<(Conn, u64)>,
    auto_confirm: bool,
    /// Sockets the "instances" consider closed.
    closed: Vec<Conn>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(Settings::default())
    }

    fn with(settings: Settings) -> Sim {
        Sim {
            mm: Matchmaking::new(settings, Ids::from_seed([9; 32])),
            now: 1_000_000,
            next_socket: 1,
            heard: HashMap::new(),
            replaced: Vec::new(),
            drained: Vec::new(),
            pending: Vec::new(),
            auto_confirm: true,
            closed: Vec::new(),
        }
    }

    fn open(&mut self, home: HomeId, address: Option<&str>) -> (Conn, ClientId) {
        let conn = Conn::new(home, self.next_socket);
        let id = uuid::Uuid::from_u128(1000 + u128::from(self.next_socket));
        self.next_socket += 1;
        self.apply(Input::Connect { conn, client: id, address: address.map(str::to_owned) });
        (conn, id)
    }

    fn connect_at(&mut self, home: HomeId) -> (Conn, ClientId) {
        self.open(home, None)
    }

    fn connect(&mut self) -> (Conn, ClientId) {
        self.open(HOME, None)
    }

    /// A client whose address the shell knows.
    fn connect_from(&mut self, address: &str) -> (Conn, ClientId) {
        self.open(HOME, Some(address))
    }

    fn apply(&mut self, input: Input) {
        self.mm.apply(self.now, input);
        self.drain();
    }

    fn advance(&mut self, ms: Millis) {
        self.now += ms;
        self.mm.tick(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            let outputs: Vec<Output> = self.mm.outputs().collect();
            if outputs.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::Send { client, event, .. } => self.heard.entry(client).or_default().push(event),
                    Output::Replace { to } => self.replaced.push(to),
                    Output::Close { to, code } => self.drained.push((to, code)),
                    Output::Confirm { to, check } => {
                        if self.auto_confirm {
                            let present = !self.closed.contains(&to);
                            self.mm.apply(self.now, Input::Presence { conn: to, check, present });
                        } else {
                            self.pending.push((to, check));
                        }
                    }
                }
            }
        }
    }

    fn available(&mut self, conn: Conn) {
        self.apply(Input::Available { conn });
    }

    fn take(&mut self, id: ClientId) -> Vec<Event> {
        self.heard.remove(&id).unwrap_or_default()
    }

    fn matched_with(&mut self, id: ClientId) -> Option<ClientId> {
        self.take(id).into_iter().rev().find_map(|e| match e {
            Event::Matched { partner, .. } => Some(partner),
            _ => None,
        })
    }

    fn room_of(&self, id: ClientId) -> Option<RoomId> {
        match self.mm.client(id)?.standing {
            Standing::Matched { room, .. } => Some(room),
            _ => None,
        }
    }
}

/// The rules rebuilt from client records alone, as a new owner of the queue rebuilds them.
fn restore(now: Millis, records: Vec<(ClientId, Client)>) -> Matchmaking {
    Matchmaking::restore(
        Settings::default(),
        Ids::from_seed([2; 32]),
        now,
        records,
        crate::matchmaking::safety::Records::default(),
    )
}

fn matched(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Matched { .. }))
}

#[test]
fn available_is_answered_queued() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    sim.available(a);
    assert_eq!(sim.take(a_id), vec![Event::Queued { waiting: 1 }]);
}

#[test]
fn two_waiting_clients_are_paired_and_the_longer_waiting_one_offers() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    let heard_a = sim.take(a_id);
    let heard_b = sim.take(b_id);
    let Some(Event::Matched { room, partner, initiator: true, via, .. }) = heard_a.last().cloned() else {
        panic!("{heard_a:?}")
    };
    assert_eq!((partner, via), (b_id, HOME));
    assert_eq!(heard_b.last(), Some(&Event::Matched { room, partner: a_id, initiator: false, via, common: vec![] }));
    assert_eq!(sim.mm.stats(), Stats { online: 2, waiting: 0, rooms: 1 });
}

#[test]
fn the_client_that_waited_longest_is_paired_first() {
    let mut sim = Sim::new();
    let clients: Vec<_> = (0..6).map(|_| sim.connect()).collect();
    for (conn, _) in &clients {
        sim.available(*conn);
    }
    for pair in clients.chunks(2) {
        assert_eq!(sim.matched_with(pair[0].1), Some(pair[1].1));
        assert_eq!(sim.matched_with(pair[1].1), Some(pair[0].1));
    }
}

#[test]
fn available_twice_queues_once() {
    let mut sim = Sim::new();
    let (a, _) = sim.connect();
    sim.available(a);
    sim.available(a);
    assert_eq!(sim.mm.stats().waiting, 1);
}

#[test]
fn available_while_matched_is_refused_and_changes_nothing() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    let room = sim.room_of(a_id);
    sim.take(a_id);
    sim.available(a);
    assert_eq!(sim.take(a_id), vec![Event::Refused(Refusal::AlreadyMatched)]);
    assert_eq!(sim.room_of(a_id), room);
    assert_eq!(sim.room_of(b_id), room);
}

#[test]
fn next_tells_the_partner_and_requeues_both_sender_first() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    let (c, c_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    sim.available(c);
    let room = sim.room_of(a_id).unwrap();
    sim.take(a_id);
    sim.take(b_id);
    sim.apply(Input::Next { conn: a });
    // c had waited longest, a came back next; b waits.
    assert_eq!(sim.take(b_id)[0], Event::PartnerLeft { room });
    assert_eq!(sim.matched_with(c_id), Some(a_id));
    assert!(matches!(sim.mm.client(b_id).unwrap().standing, Standing::Waiting { .. }));
}

#[test]
fn without_requeue_the_partner_is_left_idle() {
    let mut sim = Sim::with(Settings { requeue_on_partner_leave: false, ..Settings::default() });
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    sim.apply(Input::Leave { conn: a });
    assert_eq!(sim.take(a_id).last(), Some(&Event::Left));
    assert!(matches!(sim.take(b_id).last(), Some(Event::PartnerLeft { .. })));
    assert_eq!(sim.mm.stats(), Stats { online: 2, waiting: 0, rooms: 0 });
}

#[test]
fn a_clean_close_is_a_leave_at_once() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    sim.take(b_id);
    sim.apply(Input::Closed { conn: a, clean: true });
    assert!(matches!(sim.take(b_id).first(), Some(Event::PartnerLeft { .. })));
    assert!(sim.mm.client(a_id).is_none());
}

#[test]
fn a_dropped_waiting_client_keeps_its_place_but_is_not_paired() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.apply(Input::Closed { conn: a, clean: false });
    sim.available(b);
    assert!(!matched(&sim.take(b_id)), "an away client is not paired");
    sim.take(a_id);
    // It comes back on a new socket and is paired at its old place, ahead of b.
    let (a2, _) = sim.connect();
    let generation = sim.mm.client(a_id).unwrap().generation;
    sim.apply(Input::Resume { conn: a2, client: a_id, generation });
    let heard = sim.take(a_id);
    assert!(matches!(heard[0], Event::Resumed { state: ResumedState::Queued, .. }), "{heard:?}");
    assert!(matches!(heard.last(), Some(Event::Matched { partner, initiator: true, .. }) if *partner == b_id));
}

#[test]
fn a_dropped_matched_client_stays_matched_and_its_partner_hears_away_then_back() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    let room = sim.room_of(a_id).unwrap();
    sim.take(a_id);
    sim.take(b_id);
    sim.apply(Input::Closed { conn: a, clean: false });
    assert_eq!(sim.take(b_id), vec![Event::PartnerAway { room }]);
    let (a2, _) = sim.connect();
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    assert_eq!(sim.take(b_id), vec![Event::PartnerBack { room }]);
    let heard = sim.take(a_id);
    assert!(matches!(heard[0], Event::Resumed { state: ResumedState::Matched, generation: 1, .. }));
    assert!(
        matches!(heard[1], Event::Matched { room: r, partner, initiator: true, .. } if r == room && partner == b_id)
    );
    assert_eq!(sim.room_of(b_id), Some(room));
}

#[test]
fn when_the_grace_window_ends_the_away_client_has_left() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    let room = sim.room_of(a_id).unwrap();
    sim.apply(Input::Closed { conn: a, clean: false });
    sim.take(b_id);
    sim.advance(Settings::default().resume_grace - 1);
    assert!(sim.take(b_id).is_empty(), "not before the window ends");
    sim.advance(1);
    let heard = sim.take(b_id);
    assert_eq!(heard[0], Event::PartnerLeft { room });
    assert!(matches!(heard[1], Event::Queued { .. }));
    assert!(sim.mm.client(a_id).is_none());
}

#[test]
fn a_resume_after_the_window_fails_and_the_socket_goes_on_as_itself() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    sim.available(a);
    sim.apply(Input::Closed { conn: a, clean: false });
    sim.advance(Settings::default().resume_grace);
    let (a2, fresh) = sim.connect();
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    assert_eq!(sim.take(fresh), vec![Event::Refused(Refusal::ResumeFailed)]);
    assert_eq!(sim.mm.client_on(a2), Some(fresh));
}

#[test]
fn a_token_works_once() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    sim.apply(Input::Closed { conn: a, clean: false });
    let (a2, _) = sim.connect();
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    sim.apply(Input::Closed { conn: a2, clean: false });
    let (a3, fresh) = sim.connect();
    sim.apply(Input::Resume { conn: a3, client: a_id, generation: 0 });
    assert_eq!(sim.take(fresh), vec![Event::Refused(Refusal::ResumeFailed)]);
    sim.apply(Input::Resume { conn: a3, client: a_id, generation: 1 });
    assert_eq!(sim.mm.client_on(a3), Some(a_id));
}

#[test]
fn a_token_of_a_client_that_closed_cleanly_fails() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    sim.apply(Input::Closed { conn: a, clean: true });
    let (a2, fresh) = sim.connect();
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    assert_eq!(sim.take(fresh), vec![Event::Refused(Refusal::ResumeFailed)]);
}

#[test]
fn a_resume_while_the_old_socket_is_open_closes_it_as_replaced() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (a2, _) = sim.connect();
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    assert_eq!(sim.replaced, vec![a]);
    assert_eq!(sim.mm.client_on(a2), Some(a_id));
    assert_eq!(sim.mm.client_on(a), None);
    // The old socket's close changes nothing any more.
    sim.apply(Input::Closed { conn: a, clean: true });
    assert!(sim.mm.client(a_id).is_some());
}

#[test]
fn the_fresh_client_of_a_resuming_socket_is_forgotten() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    sim.apply(Input::Closed { conn: a, clean: false });
    let (a2, fresh) = sim.connect();
    sim.available(a2);
    sim.apply(Input::Resume { conn: a2, client: a_id, generation: 0 });
    assert!(sim.mm.client(fresh).is_none());
    assert_eq!(sim.mm.stats(), Stats { online: 1, waiting: 0, rooms: 0 });
}

#[test]
fn with_no_grace_window_a_drop_is_a_leave() {
    let mut sim = Sim::with(Settings { resume_grace: 0, ..Settings::default() });
    let (a, a_id) = sim.connect();
    sim.available(a);
    sim.apply(Input::Closed { conn: a, clean: false });
    assert!(sim.mm.client(a_id).is_none());
}

#[test]
fn a_match_is_announced_only_after_both_presences_are_confirmed() {
    let mut sim = Sim::new();
    sim.auto_confirm = false;
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    assert_eq!(sim.pending.len(), 2);
    let (first, second) = (sim.pending[0], sim.pending[1]);
    sim.apply(Input::Presence { conn: first.0, check: first.1, present: true });
    assert!(!matched(&sim.take(a_id)) && !matched(&sim.take(b_id)));
    sim.apply(Input::Presence { conn: second.0, check: second.1, present: true });
    assert_eq!(sim.matched_with(a_id), Some(b_id));
    assert_eq!(sim.matched_with(b_id), Some(a_id));
}

#[test]
fn when_a_partner_is_not_confirmed_the_live_client_goes_back_to_the_head_and_never_hears() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect_at(HOME);
    let (ghost, ghost_id) = sim.connect_at(OTHER_HOME);
    let (c, c_id) = sim.connect();
    sim.available(a);
    sim.closed.push(ghost); // its instance closed it; the close has not reached the queue yet
    sim.available(ghost);
    let heard = sim.take(a_id);
    assert!(!matched(&heard), "a never hears of the failed match: {heard:?}");
    assert!(!sim.mm.client(ghost_id).unwrap().present);
    // a is still first in line: the next arrival is paired with it.
    sim.available(c);
    assert_eq!(sim.matched_with(a_id), Some(c_id));
}

#[test]
fn an_unanswered_presence_check_times_out_as_absent() {
    let mut sim = Sim::new();
    sim.auto_confirm = false;
    let (a, a_id) = sim.connect_at(HOME);
    let (b, b_id) = sim.connect_at(OTHER_HOME);
    sim.available(a);
    sim.available(b);
    let a_check = sim.pending.iter().find(|(conn, _)| *conn == a).copied().unwrap();
    sim.apply(Input::Presence { conn: a, check: a_check.1, present: true });
    sim.advance(Settings::default().confirm_timeout);
    assert!(!sim.mm.client(b_id).unwrap().present, "b's instance never answered");
    assert!(matches!(sim.mm.client(a_id).unwrap().standing, Standing::Waiting { .. }));
    assert!(!matched(&sim.take(a_id)));
}

#[test]
fn a_gone_instance_leaves_its_clients_away() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect_at(HOME);
    let (b, b_id) = sim.connect_at(OTHER_HOME);
    sim.available(a);
    sim.available(b);
    let room = sim.room_of(a_id).unwrap();
    sim.take(a_id);
    sim.apply(Input::HomeGone { home: OTHER_HOME });
    assert_eq!(sim.take(a_id), vec![Event::PartnerAway { room }]);
    assert!(!sim.mm.client(b_id).unwrap().present);
}

#[test]
fn records_rebuild_the_queue_in_order_and_the_matches() {
    let mut sim = Sim::new();
    let clients: Vec<_> = (0..5).map(|_| sim.connect()).collect();
    for (conn, _) in &clients {
        sim.available(*conn);
    }
    // 0-1 and 2-3 matched, 4 waits; a sixth arrives later.
    let records: Vec<(ClientId, Client)> = sim.mm.clients().map(|(id, c)| (*id, c.clone())).collect();
    let mut restored = restore(sim.now, records);
    assert_eq!(restored.stats(), Stats { online: 5, waiting: 1, rooms: 2 });
    let conn = Conn::new(HOME, 99);
    restored.apply(sim.now, Input::Connect { conn, client: uuid::Uuid::from_u128(99), address: None });
    restored.apply(sim.now, Input::Available { conn });
    let confirms: Vec<_> = restored.outputs().filter(|o| matches!(o, Output::Confirm { .. })).collect();
    assert_eq!(confirms.len(), 2, "the sixth is paired with the one that waited");
}

#[test]
fn a_match_only_one_record_names_is_ended_on_restore() {
    let mut sim = Sim::new();
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    let records: Vec<(ClientId, Client)> =
        sim.mm.clients().filter(|(id, _)| **id == a_id).map(|(id, c)| (*id, c.clone())).collect();
    let mut restored = restore(sim.now, records);
    let told: Vec<Output> = restored.outputs().collect();
    assert!(told
        .iter()
        .any(|o| matches!(o, Output::Send { event: Event::PartnerLeft { .. }, client, .. } if *client == a_id)));
    assert!(restored.client(b_id).is_none());
    assert_eq!(restored.stats().rooms, 0);
}

#[test]
fn changes_are_tracked_for_the_records_kept_elsewhere() {
    let mut mm = Matchmaking::new(Settings::default(), Ids::from_seed([1; 32])).track_changes();
    let conn = Conn::new(HOME, 1);
    let id = uuid::Uuid::from_u128(5);
    mm.apply(0, Input::Connect { conn, client: id, address: None });
    mm.apply(0, Input::Available { conn });
    let changes = mm.take_changes();
    assert_eq!(changes.len(), 1);
    assert!(matches!(changes[0].1.as_ref().map(|c| &c.standing), Some(Standing::Waiting { .. })));
    mm.apply(0, Input::Closed { conn, clean: true });
    assert_eq!(mm.take_changes(), vec![(id, None)]);
}

// ---- drain ---------------------------------------------------------------------------------

/// `a` on this instance and `b` on the other, matched.
fn chatting_across(sim: &mut Sim) -> ((Conn, ClientId), (Conn, ClientId)) {
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect_at(OTHER_HOME);
    sim.available(a);
    sim.available(b);
    assert_eq!(sim.matched_with(a_id), Some(b_id));
    sim.take(b_id);
    ((a, a_id), (b, b_id))
}

#[test]
fn a_drain_closes_the_idle_and_waiting_clients_of_its_instance_with_1012_at_once() {
    let mut sim = Sim::new();
    let (idle, _) = sim.connect();
    let (waiting, _) = sim.connect();
    sim.available(waiting);
    let (elsewhere, _) = sim.connect_at(OTHER_HOME);
    sim.apply(Input::Drain { home: HOME });
    sim.drained.sort();
    assert_eq!(sim.drained, vec![(idle, Closing::Restart), (waiting, Closing::Restart)]);
    assert!(!sim.drained.iter().any(|(c, _)| *c == elsewhere));
}

#[test]
fn a_drain_leaves_chatting_clients_in_their_chat() {
    let mut sim = Sim::new();
    let ((_, a_id), (_, b_id)) = chatting_across(&mut sim);
    sim.apply(Input::Drain { home: HOME });
    assert_eq!(sim.drained, vec![]);
    assert_eq!((sim.take(a_id), sim.take(b_id)), (vec![], vec![]));
}

#[test]
fn a_chatting_client_of_a_draining_instance_is_closed_with_1012_once_its_partner_leaves() {
    let mut sim = Sim::new();
    let ((a, a_id), (b, _)) = chatting_across(&mut sim);
    sim.apply(Input::Drain { home: HOME });
    sim.apply(Input::Leave { conn: b });
    assert!(sim.take(a_id).iter().any(|e| matches!(e, Event::PartnerLeft { .. })));
    assert_eq!(sim.drained, vec![(a, Closing::Restart)]);
}

#[test]
fn a_chatting_client_of_a_draining_instance_that_presses_next_is_closed_with_1012() {
    let mut sim = Sim::new();
    let ((a, _), _) = chatting_across(&mut sim);
    sim.apply(Input::Drain { home: HOME });
    sim.apply(Input::Next { conn: a });
    assert_eq!(sim.drained, vec![(a, Closing::Restart)]);
}

#[test]
fn a_chatting_client_of_a_draining_instance_that_sends_leave_hears_left_and_is_closed_with_1001() {
    let mut sim = Sim::new();
    let ((a, a_id), _) = chatting_across(&mut sim);
    sim.apply(Input::Drain { home: HOME });
    sim.apply(Input::Leave { conn: a });
    assert_eq!(sim.take(a_id).last(), Some(&Event::Left));
    assert_eq!(sim.drained, vec![(a, Closing::GoingAway)]);
}

#[test]
fn nobody_is_paired_with_a_client_of_a_draining_instance() {
    let mut sim = Sim::new();
    let (here, here_id) = sim.connect();
    sim.available(here);
    sim.apply(Input::Drain { home: HOME });
    let (there, there_id) = sim.connect_at(OTHER_HOME);
    sim.available(there);
    assert!(!matched(&sim.take(here_id)) && !matched(&sim.take(there_id)));
    assert_eq!(sim.mm.stats().waiting, 2);
    let _ = here;
}

#[test]
fn a_waiting_client_closed_by_a_drain_resumes_on_another_instance_in_its_place() {
    let mut sim = Sim::new();
    let (old, id) = sim.connect();
    sim.available(old);
    sim.apply(Input::Drain { home: HOME });
    // The 1012 is not a goodbye: the client is away, and keeps its place.
    sim.apply(Input::Closed { conn: old, clean: false });
    let (later, later_id) = sim.connect_at(OTHER_HOME);
    sim.available(later);
    let (new, _) = sim.connect_at(OTHER_HOME);
    let generation = sim.mm.client(id).map(|c| c.generation).unwrap();
    sim.apply(Input::Resume { conn: new, client: id, generation });
    let heard = sim.take(id);
    assert!(
        heard.iter().any(|e| matches!(e, Event::Matched { partner, initiator: true, .. } if *partner == later_id)),
        "{heard:?}"
    );
}

// ---- no instant rematch ------------------------------------------------------------------------

/// `a` and `b` matched; `a` presses `next`, so both wait again.
fn next_between_two(sim: &mut Sim) -> (ClientId, ClientId) {
    let (a, a_id) = sim.connect();
    let (b, b_id) = sim.connect();
    sim.available(a);
    sim.available(b);
    assert_eq!(sim.matched_with(a_id), Some(b_id));
    sim.take(b_id);
    sim.apply(Input::Next { conn: a });
    (a_id, b_id)
}

#[test]
fn after_next_the_two_are_not_paired_again_at_once_even_if_nobody_else_waits() {
    let mut sim = Sim::new();
    let (a_id, b_id) = next_between_two(&mut sim);
    assert!(!matched(&sim.take(a_id)) && !matched(&sim.take(b_id)));
    assert_eq!(sim.mm.stats().waiting, 2);
}

#[test]
fn the_two_are_paired_again_when_the_rematch_cooldown_is_over() {
    let mut sim = Sim::new();
    let (a_id, b_id) = next_between_two(&mut sim);
    sim.advance(Settings::default().rematch_cooldown - 1);
    assert!(!matched(&sim.take(a_id)), "just before the end");
    sim.advance(1);
    assert_eq!(sim.matched_with(a_id), Some(b_id));
}

#[test]
fn during_the_rematch_cooldown_each_is_paired_with_someone_else() {
    let mut sim = Sim::new();
    let (a_id, b_id) = next_between_two(&mut sim);
    let (c, c_id) = sim.connect();
    sim.available(c);
    // `a` was queued first (it pressed next), so it has waited longest.
    assert_eq!(sim.matched_with(c_id), Some(a_id));
    assert!(!matched(&sim.take(b_id)));
}

#[test]
fn with_no_rematch_cooldown_the_two_are_paired_again_at_once() {
    let mut sim = Sim::with(Settings { rematch_cooldown: 0, ..Settings::default() });
    let (a_id, b_id) = next_between_two(&mut sim);
    assert_eq!(sim.matched_with(a_id), Some(b_id));
}

// ---- interests ---------------------------------------------------------------------------------

fn interested(sim: &mut Sim, interests: &[&str]) -> (Conn, ClientId) {
    let (conn, id) = sim.connect();
    let interests = interests.iter().map(|i| (*i).to_owned()).collect();
    sim.apply(Input::Interests { conn, interests: Some(interests), wait: None });
    sim.available(conn);
    (conn, id)
}

fn common_of(events: &[Event]) -> Option<Vec<String>> {
    events.iter().rev().find_map(|e| match e {
        Event::Matched { common, .. } => Some(common.clone()),
        _ => None,
    })
}

#[test]
fn a_client_with_interests_is_paired_with_the_longest_waiting_one_who_shares_one() {
    let mut sim = Sim::new();
    let (_, chess_id) = interested(&mut sim, &["chess"]);
    let (_, music_id) = interested(&mut sim, &["music"]);
    let (_, both_id) = interested(&mut sim, &["music", "chess"]);
    assert_eq!(sim.matched_with(both_id), Some(chess_id), "the older of the two it shares one with");
    assert_eq!(common_of(&sim.take(chess_id)), Some(vec!["chess".to_owned()]));
    assert!(!matched(&sim.take(music_id)));
}

#[test]
fn clients_with_nothing_in_common_wait_until_their_interest_wait_is_over() {
    let mut sim = Sim::new();
    let (_, chess_id) = interested(&mut sim, &["chess"]);
    let (_, music_id) = interested(&mut sim, &["music"]);
    sim.advance(Settings::default().interest_wait - 1);
    assert!(!matched(&sim.take(chess_id)), "just before the end of the wait");
    sim.advance(1);
    assert_eq!(sim.matched_with(chess_id), Some(music_id));
    assert_eq!(common_of(&sim.take(music_id)), Some(vec![]), "a random match shares nothing");
}

#[test]
fn a_client_without_interests_is_not_paired_with_one_still_in_its_interest_wait() {
    let mut sim = Sim::new();
    let (_, chess_id) = interested(&mut sim, &["chess"]);
    let (plain, plain_id) = sim.connect();
    sim.available(plain);
    assert!(!matched(&sim.take(plain_id)));
    let (other, other_id) = sim.connect();
    sim.available(other);
    assert_eq!(sim.matched_with(other_id), Some(plain_id), "two without interests meet at once");
    assert!(!matched(&sim.take(chess_id)));
}

#[test]
fn interests_last_until_an_available_or_next_carries_new_ones() {
    let mut sim = Sim::new();
    let (_, chess_id) = interested(&mut sim, &["chess"]);
    let (conn, id) = interested(&mut sim, &["music"]);
    assert!(!matched(&sim.take(id)));
    // It changes its mind while waiting: now it shares one.
    sim.apply(Input::Interests { conn, interests: Some(vec!["chess".into()]), wait: None });
    sim.available(conn);
    assert_eq!(sim.matched_with(id), Some(chess_id));
}

#[test]
fn an_interest_wait_of_zero_takes_anyone_at_once() {
    let mut sim = Sim::new();
    let (plain, plain_id) = sim.connect();
    sim.available(plain);
    let (conn, id) = sim.connect();
    sim.apply(Input::Interests { conn, interests: Some(vec!["chess".into()]), wait: Some(0) });
    sim.available(conn);
    assert_eq!(sim.matched_with(id), Some(plain_id));
}

mod safety;
