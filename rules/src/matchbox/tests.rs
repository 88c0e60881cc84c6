//! matchbox rooms and pools, one rule per test.

use super::*;
use crate::ids::PeerId;
use crate::rooms::tests::{conn, join, notices_to, NOW};
use crate::rooms::{Input, Notice, Output, Refusal, Room, RoomSettings};

fn peer(n: u64) -> PeerId {
    crate::rooms::tests::peer(u128::from(n))
}

fn room(next: Option<usize>) -> Room<String> {
    let address = Address { name: "game".into(), next };
    Room::new(address.room(), address.kind(), RoomSettings::default(), NOW)
}

/// The peers that notices to `n` name, picked by `pick`.
fn named_to(outputs: &[Output<String>], n: u64, pick: fn(Notice) -> Option<PeerId>) -> Vec<PeerId> {
    notices_to(outputs, n).into_iter().filter_map(pick).collect()
}

fn new_peers_to(outputs: &[Output<String>], n: u64) -> Vec<PeerId> {
    named_to(outputs, n, |notice| if let Notice::PeerJoined { peer } = notice { Some(peer) } else { None })
}

fn left_to(outputs: &[Output<String>], n: u64) -> Vec<PeerId> {
    named_to(outputs, n, |notice| if let Notice::PeerLeft { peer } = notice { Some(peer) } else { None })
}

fn relay(room: &mut Room<String>, from: u64, to: u64) -> Vec<Output<String>> {
    room.apply(NOW, Input::Relay { conn: conn(from), to: Some(peer(to)), text: format!("{from}->{to}") });
    room.outputs().collect()
}

fn closed(room: &mut Room<String>, n: u64, clean: bool) -> Vec<Output<String>> {
    room.apply(NOW, Input::Closed { conn: conn(n), clean });
    room.outputs().collect()
}

#[test]
fn the_newcomer_is_answered_first_and_hears_of_nobody() {
    let mut room = room(None);
    join(&mut room, 1);
    let outputs = join(&mut room, 2);
    let first = outputs.iter().find(|o| o.to() == conn(2));
    assert!(matches!(first, Some(Output::Notice { notice: Notice::Joined { peer: who, .. }, .. }) if *who == peer(2)));
    assert!(new_peers_to(&outputs, 2).is_empty(), "the newcomer waits for offers: {outputs:?}");
}

#[test]
fn a_newcomer_is_a_new_peer_to_everyone_already_there_who_make_the_offers() {
    let mut room = room(None);
    join(&mut room, 1);
    join(&mut room, 2);
    let outputs = join(&mut room, 3);
    assert_eq!(new_peers_to(&outputs, 1), vec![peer(3)]);
    assert_eq!(new_peers_to(&outputs, 2), vec![peer(3)]);
    assert!(new_peers_to(&outputs, 3).is_empty());
}

#[test]
fn without_next_everyone_in_the_room_is_together() {
    let mut room = room(None);
    for n in 1..=5 {
        join(&mut room, n);
    }
    assert_eq!(relay(&mut room, 5, 1).len(), 1);
    assert_eq!(new_peers_to(&join(&mut room, 6), 1), vec![peer(6)]);
}

#[test]
fn next_2_pairs_arrivals_in_arrival_order() {
    let mut room = room(Some(2));
    join(&mut room, 1);
    assert_eq!(new_peers_to(&join(&mut room, 2), 1), vec![peer(2)]);
    let third = join(&mut room, 3);
    assert!(new_peers_to(&third, 1).is_empty() && new_peers_to(&third, 2).is_empty(), "{third:?}");
    assert_eq!(new_peers_to(&join(&mut room, 4), 3), vec![peer(4)]);
}

#[test]
fn next_3_groups_three_arrivals_in_arrival_order() {
    let mut room = room(Some(3));
    join(&mut room, 1);
    assert_eq!(new_peers_to(&join(&mut room, 2), 1), vec![peer(2)]);
    let third = join(&mut room, 3);
    assert_eq!(new_peers_to(&third, 1), vec![peer(3)]);
    assert_eq!(new_peers_to(&third, 2), vec![peer(3)]);
    let fourth = join(&mut room, 4);
    assert!((1..=3).all(|n| new_peers_to(&fourth, n).is_empty()), "{fourth:?}");
    join(&mut room, 5);
    let sixth = join(&mut room, 6);
    assert_eq!(new_peers_to(&sixth, 4), vec![peer(6)]);
    assert_eq!(new_peers_to(&sixth, 5), vec![peer(6)]);
}

#[test]
fn groups_are_kept_apart_and_a_signal_across_them_is_unknown_peer() {
    let mut room = room(Some(2));
    for n in 1..=4 {
        join(&mut room, n);
    }
    assert_eq!(relay(&mut room, 1, 2), vec![Output::Relay { to: conn(2), text: "1->2".into() }]);
    assert_eq!(relay(&mut room, 1, 3), vec![Output::Refuse { to: conn(1), refusal: Refusal::UnknownPeer }]);
    assert_eq!(relay(&mut room, 4, 3), vec![Output::Relay { to: conn(3), text: "4->3".into() }]);
}

#[test]
fn peer_left_goes_only_within_the_group() {
    let mut room = room(Some(2));
    for n in 1..=4 {
        join(&mut room, n);
    }
    let outputs = closed(&mut room, 3, true);
    assert_eq!(left_to(&outputs, 4), vec![peer(3)]);
    assert!(left_to(&outputs, 1).is_empty() && left_to(&outputs, 2).is_empty(), "{outputs:?}");
}

#[test]
fn a_dropped_matchbox_socket_has_left_at_once() {
    let mut room = room(None);
    join(&mut room, 1);
    join(&mut room, 2);
    let outputs = closed(&mut room, 2, false);
    assert_eq!(left_to(&outputs, 1), vec![peer(2)]);
    assert_eq!(room.len(), 1);
}

#[test]
fn a_full_group_is_not_refilled_when_one_of_it_leaves() {
    let mut room = room(Some(2));
    join(&mut room, 1);
    join(&mut room, 2);
    closed(&mut room, 2, true);
    let third = join(&mut room, 3);
    assert!(new_peers_to(&third, 1).is_empty(), "{third:?}");
    assert_eq!(new_peers_to(&join(&mut room, 4), 3), vec![peer(4)]);
}

#[test]
fn a_forming_group_takes_the_next_arrival_in_place_of_one_who_left() {
    let mut room = room(Some(3));
    join(&mut room, 1);
    join(&mut room, 2);
    closed(&mut room, 2, true);
    assert_eq!(new_peers_to(&join(&mut room, 3), 1), vec![peer(3)]);
    assert_eq!(new_peers_to(&join(&mut room, 4), 1), vec![peer(4)]);
    assert!(new_peers_to(&join(&mut room, 5), 1).is_empty());
}

#[test]
fn an_empty_matchbox_room_is_over() {
    let mut room = room(None);
    join(&mut room, 1);
    closed(&mut room, 1, false);
    assert!(room.is_finished(NOW));
}

#[test]
fn groups_survive_a_record_and_a_restore() {
    let mut room = room(Some(2));
    for n in 1..=3 {
        join(&mut room, n);
    }
    let mut restored = Room::<String>::restore(room.id(), RoomSettings::default(), room.record());
    assert_eq!(new_peers_to(&join(&mut restored, 4), 3), vec![peer(4)]);
    assert_eq!(relay(&mut restored, 4, 1), vec![Output::Refuse { to: conn(4), refusal: Refusal::UnknownPeer }]);
}

#[test]
fn one_name_and_next_lead_to_one_room_and_others_elsewhere() {
    let at = |name: &str, query: Option<&str>| Address::parse(name, query).unwrap().room();
    assert_eq!(at("game", Some("next=2")), at("game", Some("next=2")));
    assert_ne!(at("game", Some("next=2")), at("game", None));
    assert_ne!(at("game", Some("next=2")), at("game", Some("next=3")));
    assert_ne!(at("game", None), at("other", None));
    assert_eq!(at("game", Some("x=1&next=2")), at("game", Some("next=2")));
}

#[test]
fn a_bad_next_or_name_names_no_room() {
    assert_eq!(Address::parse("game", Some("next=0")), Err(BadAddress::Next));
    assert_eq!(Address::parse("game", Some("next=two")), Err(BadAddress::Next));
    assert_eq!(Address::parse("game", Some("next=")), Err(BadAddress::Next));
    assert_eq!(Address::parse("", None), Err(BadAddress::Name));
    assert_eq!(Address::parse(&"x".repeat(MAX_ROOM_NAME_BYTES + 1), None), Err(BadAddress::Name));
    assert!(Address::parse(&"x".repeat(MAX_ROOM_NAME_BYTES), Some("next=1")).is_ok());
}

#[test]
fn signal_data_is_relayed_byte_for_byte() {
    let data = r#"{ "sdp" : "v=0\r\n", "n": 1.50, "u":"\u00e9" }"#;
    let text = format!(r#"{{"Signal":{{"receiver":"{}","data":{data}}}}}"#, peer(9));
    let Ok(Request::Signal { receiver, data: raw }) = Request::parse(&text) else { panic!("{text}") };
    assert_eq!(receiver, peer(9));
    let event = Event::Signal { sender: peer(1), data: raw }.text();
    assert_eq!(event, format!(r#"{{"Signal":{{"sender":"{}","data":{data}}}}}"#, peer(1)));
}

#[test]
fn events_are_spelled_as_matchbox_spells_them() {
    let id = peer(7);
    assert_eq!(Event::IdAssigned(id).text(), format!(r#"{{"IdAssigned":"{id}"}}"#));
    assert_eq!(Event::NewPeer(id).text(), format!(r#"{{"NewPeer":"{id}"}}"#));
    assert_eq!(Event::PeerLeft(id).text(), format!(r#"{{"PeerLeft":"{id}"}}"#));
    assert!(matches!(Request::parse(r#""KeepAlive""#), Ok(Request::KeepAlive)));
    assert!(Request::parse(r#"{"Signal":{"receiver":"nope","data":1}}"#).is_err());
    assert!(Request::parse(r#"{"type":"offer"}"#).is_err());
}
