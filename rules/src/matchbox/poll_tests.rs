//! Polling peers: mailboxes and the polled rooms, one rule per test.

use serde_json::value::RawValue;
use serde_json::Value;

use super::*;
use crate::ids::PeerId;

const NOW: crate::Millis = 1_000_000;
const IDLE: crate::Millis = 50_000;

fn peer(n: u128) -> PeerId {
    uuid::Uuid::from_u128(n)
}

fn events(rooms: &mut PolledRooms, who: PeerId, now: crate::Millis) -> Vec<Value> {
    assert!(rooms.poll(who, now), "{who} polls");
    rooms.take(who).iter().map(|text| serde_json::from_str(text).unwrap()).collect()
}

fn address(name: &str, next: Option<usize>) -> Address {
    Address { name: name.into(), next }
}

#[test]
fn a_poll_forgets_only_what_the_previous_answer_carried() {
    let mut mailboxes = Mailboxes::new();
    mailboxes.open(peer(1), NOW);
    mailboxes.push(peer(1), "a".into());
    assert!(mailboxes.poll(peer(1), NOW));
    assert_eq!(mailboxes.take(peer(1)), vec!["a".to_owned()]);
    mailboxes.push(peer(1), "b".into());
    // The answer carrying "a" is lost: without a new poll, "a" is still there.
    assert_eq!(mailboxes.take(peer(1)), vec!["a".to_owned(), "b".to_owned()]);
    assert!(mailboxes.poll(peer(1), NOW));
    assert!(!mailboxes.waiting(peer(1)));
    assert!(mailboxes.take(peer(1)).is_empty());
}

#[test]
fn a_mailbox_keeps_at_most_its_bound_and_an_unknown_peer_has_none() {
    let mut mailboxes = Mailboxes::new();
    mailboxes.open(peer(1), NOW);
    for n in 0..MAILBOX_MAX_EVENTS {
        assert!(mailboxes.push(peer(1), n.to_string()));
    }
    assert!(!mailboxes.push(peer(1), "one too many".into()));
    assert!(!mailboxes.push(peer(2), "nobody".into()));
    assert!(!mailboxes.poll(peer(2), NOW));
}

#[test]
fn a_polled_peer_hears_id_assigned_first_and_those_there_hear_new_peer() {
    let mut rooms = PolledRooms::new();
    rooms.join(&address("r", None), peer(1), NOW);
    assert_eq!(events(&mut rooms, peer(1), NOW), vec![serde_json::json!({"IdAssigned": peer(1)})]);
    rooms.join(&address("r", None), peer(2), NOW);
    assert_eq!(events(&mut rooms, peer(2), NOW), vec![serde_json::json!({"IdAssigned": peer(2)})]);
    assert_eq!(events(&mut rooms, peer(1), NOW), vec![serde_json::json!({"NewPeer": peer(2)})]);
}

#[test]
fn a_polled_signal_reaches_the_receiver_byte_for_byte() {
    let mut rooms = PolledRooms::new();
    rooms.join(&address("r", None), peer(1), NOW);
    rooms.join(&address("r", None), peer(2), NOW);
    let data: &RawValue = serde_json::from_str(r#"{ "x" : 1.50 }"#).unwrap();
    assert_eq!(rooms.signal(peer(1), peer(2), data, NOW), Ok(()));
    rooms.poll(peer(2), NOW);
    let texts = rooms.take(peer(2));
    assert_eq!(texts.last().unwrap(), &format!(r#"{{"Signal":{{"sender":"{}","data":{{ "x" : 1.50 }}}}}}"#, peer(1)));
    assert_eq!(rooms.signal(peer(9), peer(2), data, NOW), Err(PollRefusal::UnknownPeer));
}

#[test]
fn polled_pools_group_arrivals_in_order() {
    let mut rooms = PolledRooms::new();
    for n in 1..=4 {
        rooms.join(&address("pool", Some(2)), peer(n), NOW);
    }
    let first = events(&mut rooms, peer(1), NOW);
    assert_eq!(first.last().unwrap(), &serde_json::json!({"NewPeer": peer(2)}));
    let third = events(&mut rooms, peer(3), NOW);
    assert_eq!(third.last().unwrap(), &serde_json::json!({"NewPeer": peer(4)}));
}

#[test]
fn a_peer_that_stops_polling_has_left_after_the_idle_time() {
    let mut rooms = PolledRooms::new();
    rooms.join(&address("r", None), peer(1), NOW);
    rooms.join(&address("r", None), peer(2), NOW);
    events(&mut rooms, peer(1), NOW + IDLE - 1);
    rooms.expire(NOW + IDLE - 1, IDLE);
    assert_eq!(rooms.peers(), 2, "not idle yet");
    rooms.expire(NOW + IDLE, IDLE);
    assert_eq!(rooms.peers(), 1);
    assert!(!rooms.poll(peer(2), NOW + IDLE));
    assert_eq!(events(&mut rooms, peer(1), NOW + IDLE), vec![serde_json::json!({"PeerLeft": peer(2)})]);
}

#[test]
fn polled_rooms_survive_being_written_down_and_read_back() {
    let mut rooms = PolledRooms::new();
    rooms.join(&address("pool", Some(2)), peer(1), NOW);
    let text = serde_json::to_string(&rooms).unwrap();
    let mut rooms: PolledRooms = serde_json::from_str(&text).unwrap();
    rooms.join(&address("pool", Some(2)), peer(2), NOW);
    let first = events(&mut rooms, peer(1), NOW);
    assert_eq!(first, vec![serde_json::json!({"IdAssigned": peer(1)}), serde_json::json!({"NewPeer": peer(2)})]);
}
