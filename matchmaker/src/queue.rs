//! The pairing rules, as plain data: who waits, who is paired with whom. No sockets, no tasks;
//! the hub feeds it commands and delivers the events it returns.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

/// A connection's id on the matchmaker (the `clientId` of `ready`).
pub type ClientId = Uuid;
/// A room's id: a random UUID v4 (122 random bits).
pub type RoomId = Uuid;

/// What the rules decided; the hub turns each into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The client now waits in the queue.
    Queued(ClientId),
    /// Two clients were paired; `initiator` had waited longer and makes the offer.
    Matched {
        /// The new room.
        room: RoomId,
        /// The one that creates the WebRTC offer.
        initiator: ClientId,
        /// The other one.
        responder: ClientId,
    },
    /// The client's partner ended their match.
    PartnerLeft {
        /// Who is told.
        to: ClientId,
        /// The room that ended.
        room: RoomId,
    },
    /// The client left the queue and any match, as it asked.
    Left(ClientId),
    /// `available` while matched: refused, nothing changed.
    AlreadyMatched(ClientId),
}

#[derive(Debug, Clone, Copy)]
struct Pairing {
    room: RoomId,
    partner: ClientId,
}

/// The queue and the current pairs.
#[derive(Debug, Default)]
pub struct Matchmaking {
    /// Waiting clients by arrival number: the first entry has waited longest.
    waiting: BTreeMap<u64, ClientId>,
    /// Each waiting client's arrival number.
    arrival: HashMap<ClientId, u64>,
    /// Each matched client's room and partner (both directions).
    pairs: HashMap<ClientId, Pairing>,
    next_arrival: u64,
    requeue_on_partner_leave: bool,
}

impl Matchmaking {
    /// Empty queue. `requeue_on_partner_leave`: whether a client whose partner left is queued
    /// again by itself (`REQUEUE_ON_PARTNER_LEAVE`).
    pub fn new(requeue_on_partner_leave: bool) -> Self {
        Matchmaking { requeue_on_partner_leave, ..Default::default() }
    }

    /// How many clients wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many rooms are open.
    pub fn rooms(&self) -> usize {
        self.pairs.len() / 2
    }

    /// Whether the client waits in the queue.
    pub fn is_waiting(&self, id: ClientId) -> bool {
        self.arrival.contains_key(&id)
    }

    /// The client's partner, if matched.
    pub fn partner_of(&self, id: ClientId) -> Option<ClientId> {
        self.pairs.get(&id).map(|p| p.partner)
    }

    /// `available`: queue the client (once), then pair whoever can be paired.
    pub fn available(&mut self, id: ClientId, out: &mut Vec<Event>) {
        if self.pairs.contains_key(&id) {
            out.push(Event::AlreadyMatched(id));
            return;
        }
        self.enqueue(id, out);
        self.pair_waiting(out);
    }

    /// `next`: end the match (the partner is told), queue the sender again; unmatched, the same
    /// as `available`.
    pub fn next(&mut self, id: ClientId, out: &mut Vec<Event>) {
        let partner = self.end_match(id, out);
        self.enqueue(id, out);
        if let Some(partner) = partner {
            self.after_partner_left(partner, out);
        }
        self.pair_waiting(out);
    }

    /// `leave`: out of the queue and any match; the client is told `left`.
    pub fn leave(&mut self, id: ClientId, out: &mut Vec<Event>) {
        self.disconnect(id, out);
        out.push(Event::Left(id));
    }

    /// The socket is gone: the same as `leave`, with nobody to answer.
    pub fn disconnect(&mut self, id: ClientId, out: &mut Vec<Event>) {
        self.dequeue(id);
        if let Some(partner) = self.end_match(id, out) {
            self.after_partner_left(partner, out);
            self.pair_waiting(out);
        }
    }

    fn enqueue(&mut self, id: ClientId, out: &mut Vec<Event>) {
        if !self.arrival.contains_key(&id) {
            let n = self.next_arrival;
            self.next_arrival += 1;
            self.waiting.insert(n, id);
            self.arrival.insert(id, n);
        }
        out.push(Event::Queued(id));
    }

    fn dequeue(&mut self, id: ClientId) {
        if let Some(n) = self.arrival.remove(&id) {
            self.waiting.remove(&n);
        }
    }

    /// Ends `id`'s match, if any: tells the partner, returns who it was.
    fn end_match(&mut self, id: ClientId, out: &mut Vec<Event>) -> Option<ClientId> {
        let pairing = self.pairs.remove(&id)?;
        self.pairs.remove(&pairing.partner);
        out.push(Event::PartnerLeft { to: pairing.partner, room: pairing.room });
        Some(pairing.partner)
    }

    fn after_partner_left(&mut self, partner: ClientId, out: &mut Vec<Event>) {
        if self.requeue_on_partner_leave {
            self.enqueue(partner, out);
        }
    }

    /// Pairs the two longest-waiting clients while at least two wait.
    fn pair_waiting(&mut self, out: &mut Vec<Event>) {
        while self.waiting.len() >= 2 {
            let (Some((_, initiator)), Some((_, responder))) = (self.waiting.pop_first(), self.waiting.pop_first())
            else {
                break;
            };
            self.arrival.remove(&initiator);
            self.arrival.remove(&responder);
            let room = Uuid::new_v4();
            self.pairs.insert(initiator, Pairing { room, partner: responder });
            self.pairs.insert(responder, Pairing { room, partner: initiator });
            out.push(Event::Matched { room, initiator, responder });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ClientId> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    fn matched(events: &[Event]) -> Vec<(ClientId, ClientId)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Matched { initiator, responder, .. } => Some((*initiator, *responder)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pairs_in_arrival_order() {
        let c = ids(4);
        let mut mm = Matchmaking::new(true);
        let mut out = Vec::new();
        for id in &c {
            mm.available(*id, &mut out);
        }
        assert_eq!(matched(&out), vec![(c[0], c[1]), (c[2], c[3])]);
        assert_eq!((mm.waiting(), mm.rooms()), (0, 2));
    }

    #[test]
    fn available_twice_queues_once() {
        let c = ids(2);
        let mut mm = Matchmaking::new(true);
        let mut out = Vec::new();
        mm.available(c[0], &mut out);
        mm.available(c[0], &mut out);
        assert_eq!(out, vec![Event::Queued(c[0]), Event::Queued(c[0])]);
        assert_eq!(mm.waiting(), 1);
        mm.available(c[1], &mut out);
        assert_eq!(matched(&out), vec![(c[0], c[1])]);
    }

    #[test]
    fn available_while_matched_is_refused_and_changes_nothing() {
        let c = ids(2);
        let mut mm = Matchmaking::new(true);
        let mut out = Vec::new();
        mm.available(c[0], &mut out);
        mm.available(c[1], &mut out);
        out.clear();
        mm.available(c[0], &mut out);
        assert_eq!(out, vec![Event::AlreadyMatched(c[0])]);
        assert_eq!(mm.partner_of(c[0]), Some(c[1]));
    }

    #[test]
    fn next_tells_the_partner_and_requeues_both_sender_first() {
        let c = ids(3);
        let mut mm = Matchmaking::new(true);
        let mut out = Vec::new();
        mm.available(c[0], &mut out);
        mm.available(c[1], &mut out);
        mm.available(c[2], &mut out);
        let room = match out[2] {
            Event::Matched { room, .. } => room,
            ref e => panic!("{e:?}"),
        };
        out.clear();
        mm.next(c[0], &mut out);
        assert_eq!(out[0], Event::PartnerLeft { to: c[1], room });
        assert_eq!(out[1], Event::Queued(c[0]));
        assert_eq!(out[2], Event::Queued(c[1]));
        // c[2] had waited longest, c[0] came next.
        assert_eq!(matched(&out), vec![(c[2], c[0])]);
        assert!(mm.is_waiting(c[1]));
    }

    #[test]
    fn without_requeue_the_partner_is_left_out_of_the_queue() {
        let c = ids(2);
        let mut mm = Matchmaking::new(false);
        let mut out = Vec::new();
        mm.available(c[0], &mut out);
        mm.available(c[1], &mut out);
        out.clear();
        mm.leave(c[0], &mut out);
        assert!(matches!(out[0], Event::PartnerLeft { to, .. } if to == c[1]));
        assert_eq!(out[1], Event::Left(c[0]));
        assert_eq!((mm.waiting(), mm.rooms()), (0, 0));
    }

    #[test]
    fn disconnect_removes_a_waiting_client() {
        let c = ids(2);
        let mut mm = Matchmaking::new(true);
        let mut out = Vec::new();
        mm.available(c[0], &mut out);
        mm.disconnect(c[0], &mut out);
        mm.available(c[1], &mut out);
        assert!(matched(&out).is_empty());
        assert_eq!(mm.waiting(), 1);
    }
}
