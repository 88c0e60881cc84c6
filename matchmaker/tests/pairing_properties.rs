//! Property test of the pairing rules under random sequences of available / next / leave /
//! disconnect: never self-paired, never in two rooms, FIFO respected, nobody lost.

use std::collections::HashSet;

use matchmaker::queue::{ClientId, Event, Matchmaking};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
enum Op {
    Available(usize),
    Next(usize),
    Leave(usize),
    Disconnect(usize),
}

fn op(clients: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..clients).prop_map(Op::Available),
        3 => (0..clients).prop_map(Op::Next),
        1 => (0..clients).prop_map(Op::Leave),
        1 => (0..clients).prop_map(Op::Disconnect),
    ]
}

/// What the client asked for last: whether it should be in the queue or a match.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wants {
    Nothing,
    Partner,
    Gone,
}

fn check(requeue: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let ids: Vec<ClientId> = (0..8).map(|_| Uuid::new_v4()).collect();
    let mut wants = vec![Wants::Nothing; ids.len()];
    let mut mm = Matchmaking::new(requeue);
    // The queue as the events describe it, oldest first.
    let mut order: Vec<ClientId> = Vec::new();
    let mut rooms = HashSet::new();
    let mut events = Vec::new();
    for op in ops {
        let (i, before) = match op {
            Op::Available(i) | Op::Next(i) | Op::Leave(i) | Op::Disconnect(i) => (i, wants[i]),
        };
        if before == Wants::Gone {
            continue; // a disconnected client sends nothing more
        }
        let partner_before = mm.partner_of(ids[i]);
        events.clear();
        match op {
            Op::Available(_) => {
                mm.available(ids[i], &mut events);
                wants[i] = Wants::Partner;
            }
            Op::Next(_) => {
                mm.next(ids[i], &mut events);
                wants[i] = Wants::Partner;
            }
            Op::Leave(_) => {
                mm.leave(ids[i], &mut events);
                wants[i] = Wants::Nothing;
            }
            Op::Disconnect(_) => {
                mm.disconnect(ids[i], &mut events);
                wants[i] = Wants::Gone;
            }
        }
        if !matches!(op, Op::Available(_)) {
            if let Some(partner) = partner_before {
                let p = ids.iter().position(|id| *id == partner).unwrap();
                let told = events.iter().any(|e| matches!(e, Event::PartnerLeft { to, .. } if *to == partner));
                prop_assert!(told, "the partner was not told");
                if !requeue {
                    wants[p] = Wants::Nothing;
                }
            }
        }
        if matches!(op, Op::Leave(_) | Op::Disconnect(_)) {
            order.retain(|id| *id != ids[i]);
        }
        for event in &events {
            match *event {
                Event::Queued(id) if !order.contains(&id) => order.push(id),
                Event::Matched { room, initiator, responder } => {
                    prop_assert_ne!(initiator, responder, "paired with itself");
                    prop_assert!(rooms.insert(room), "room id reused");
                    prop_assert!(
                        order.len() >= 2 && order[0] == initiator && order[1] == responder,
                        "not FIFO: {order:?} -> {initiator} {responder}"
                    );
                    order.drain(..2);
                }
                _ => {}
            }
        }
        // Invariants after every step.
        prop_assert!(mm.waiting() <= 1, "two clients wait but were not paired");
        let mut seen = HashSet::new();
        for (k, id) in ids.iter().enumerate() {
            let waiting = mm.is_waiting(*id);
            let partner = mm.partner_of(*id);
            prop_assert!(!(waiting && partner.is_some()), "both waiting and matched");
            if let Some(partner) = partner {
                prop_assert_ne!(partner, *id);
                prop_assert_eq!(mm.partner_of(partner), Some(*id), "pairs are not symmetric");
                prop_assert!(seen.insert(*id), "in two rooms");
            }
            // Nobody lost: whoever wants a partner waits or has one; nobody else does.
            let placed = waiting || partner.is_some();
            match wants[k] {
                Wants::Partner => prop_assert!(placed, "client {k} was lost"),
                Wants::Nothing | Wants::Gone => prop_assert!(!placed, "client {k} is placed but did not ask"),
            }
        }
        prop_assert_eq!(mm.rooms() * 2, seen.len());
        prop_assert_eq!(order.len(), mm.waiting());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pairing_rules_hold_with_requeue(ops in prop::collection::vec(op(8), 1..200)) {
        check(true, ops)?;
    }

    #[test]
    fn pairing_rules_hold_without_requeue(ops in prop::collection::vec(op(8), 1..200)) {
        check(false, ops)?;
    }
}
