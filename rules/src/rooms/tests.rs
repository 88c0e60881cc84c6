//! One room's rules, one behaviour per test.

use super::*;
use crate::ids::{Conn, HomeId, PeerId};
use crate::time::Millis;
use crate::Closing;

const HOME: HomeId = uuid::Uuid::from_u128(1);
pub(crate) const NOW: Millis = 1_000_000;
const ADMITS: Millis = NOW + 60_000;

pub(crate) fn conn(n: u64) -> Conn {
    Conn::new(HOME, n)
}

pub(crate) fn peer(n: u128) -> PeerId {
    uuid::Uuid::from_u128(n)
}

fn matched() -> Room<String> {
    Room::new(uuid::Uuid::from_u128(77), Kind::Matched, RoomSettings::default(), NOW)
}

fn code_room(capacity: usize) -> Room<String> {
    Room::new(uuid::Uuid::from_u128(78), Kind::Code { code: "123456".into(), capacity }, RoomSettings::default(), NOW)
}

pub(crate) fn join(room: &mut Room<String>, n: u64) -> Vec<Output<String>> {
    room.apply(NOW, Input::Join { conn: conn(n), peer: peer(u128::from(n)), admits_until: ADMITS });
    room.outputs().collect()
}

fn relay(room: &mut Room<String>, from: u64, to: Option<u64>, text: &str) -> Vec<Output<String>> {
    room.apply(NOW, Input::Relay { conn: conn(from), to: to.map(|t| peer(u128::from(t))), text: text.into() });
    room.outputs().collect()
}

fn relayed_to(outputs: &[Output<String>], n: u64) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Relay { to, text } if *to == conn(n) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn notices_to(outputs: &[Output<String>], n: u64) -> Vec<Notice> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Notice { to, notice } if *to == conn(n) => Some(notice.clone()),
            _ => None,
        })
        .collect()
}

fn refused(outputs: &[Output<String>]) -> Vec<Refusal> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Refuse { refusal, .. } => Some(*refusal),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_peer_joins_an_empty_room() {
    let mut room = matched();
    let out = join(&mut room, 1);
    assert_eq!(notices_to(&out, 1), vec![Notice::Joined { room: room.id(), peer: peer(1), peers: vec![] }]);
}

#[test]
fn the_second_peer_sees_the_first_and_the_first_hears_peer_joined() {
    let mut room = matched();
    join(&mut room, 1);
    let out = join(&mut room, 2);
    assert_eq!(notices_to(&out, 2), vec![Notice::Joined { room: room.id(), peer: peer(2), peers: vec![peer(1)] }]);
    assert_eq!(notices_to(&out, 1), vec![Notice::PeerJoined { peer: peer(2) }]);
}

#[test]
fn a_relay_reaches_the_other_peer_in_order() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    let mut got = Vec::new();
    for i in 0..100 {
        got.extend(relayed_to(&relay(&mut room, 1, None, &i.to_string()), 2));
    }
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn what_is_said_before_the_partner_joins_is_held_and_follows_its_joined() {
    let mut room = matched();
    join(&mut room, 1);
    assert!(relay(&mut room, 1, None, "offer").is_empty());
    relay(&mut room, 1, None, "ice");
    let out = join(&mut room, 2);
    let to_two: Vec<&Output<String>> = out
        .iter()
        .filter(|o| matches!(o, Output::Relay { to, .. } | Output::Notice { to, .. } if *to == conn(2)))
        .collect();
    assert!(matches!(to_two[0], Output::Notice { notice: Notice::Joined { .. }, .. }));
    assert_eq!(relayed_to(&out, 2), vec!["offer".to_owned(), "ice".to_owned()]);
}

#[test]
fn sixty_four_held_messages_are_kept_and_the_next_is_refused() {
    let mut room = matched();
    join(&mut room, 1);
    for i in 0..64 {
        assert!(refused(&relay(&mut room, 1, None, &i.to_string())).is_empty());
    }
    assert_eq!(refused(&relay(&mut room, 1, None, "65")), vec![Refusal::HoldFull]);
    assert_eq!(relayed_to(&join(&mut room, 2), 2).len(), 64);
}

#[test]
fn held_messages_are_capped_at_64_kib() {
    let mut room = matched();
    join(&mut room, 1);
    let big = "x".repeat(32 * 1024);
    assert!(refused(&relay(&mut room, 1, None, &big)).is_empty());
    assert!(refused(&relay(&mut room, 1, None, &big)).is_empty());
    assert_eq!(refused(&relay(&mut room, 1, None, "y")), vec![Refusal::HoldFull]);
}

#[test]
fn held_messages_are_dropped_once_no_ticket_can_collect_them() {
    let mut room = matched();
    join(&mut room, 1);
    relay(&mut room, 1, None, "offer");
    room.tick(ADMITS + 1);
    assert_eq!(room.held(), 0);
}

#[test]
fn a_relay_from_a_socket_not_in_the_room_is_not_joined() {
    let mut room = matched();
    join(&mut room, 1);
    assert_eq!(refused(&relay(&mut room, 9, None, "x")), vec![Refusal::NotJoined]);
}

#[test]
fn a_third_peer_finds_a_matched_room_full() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    assert_eq!(refused(&join(&mut room, 3)), vec![Refusal::RoomFull]);
}

#[test]
fn the_same_peer_on_a_new_socket_replaces_the_old_one() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    room.apply(NOW, Input::Join { conn: conn(11), peer: peer(1), admits_until: ADMITS });
    let out: Vec<_> = room.outputs().collect();
    assert!(out.contains(&Output::Replace { to: conn(1) }));
    assert_eq!(notices_to(&out, 2), vec![Notice::PeerJoined { peer: peer(1) }]);
    assert_eq!(refused(&relay(&mut room, 1, None, "x")), vec![Refusal::NotJoined], "the old socket is out");
    assert_eq!(relayed_to(&relay(&mut room, 11, None, "y"), 2), vec!["y".to_owned()]);
}

#[test]
fn the_same_socket_joining_again_changes_nothing() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    let out = join(&mut room, 1);
    assert_eq!(notices_to(&out, 1), vec![Notice::Joined { room: room.id(), peer: peer(1), peers: vec![peer(2)] }]);
    assert!(notices_to(&out, 2).is_empty());
}

#[test]
fn leave_tells_the_others_and_an_empty_matched_room_is_over() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    room.apply(NOW, Input::Leave { conn: conn(1) });
    assert_eq!(notices_to(&room.outputs().collect::<Vec<_>>(), 2), vec![Notice::PeerLeft { peer: peer(1) }]);
    room.apply(NOW, Input::Closed { conn: conn(2), clean: true });
    assert!(room.is_finished(NOW));
}

#[test]
fn a_dropped_peer_keeps_its_seat_and_what_is_sent_to_it_is_held() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    room.apply(NOW, Input::Closed { conn: conn(2), clean: false });
    assert_eq!(notices_to(&room.outputs().collect::<Vec<_>>(), 1), vec![Notice::PeerAway { peer: peer(2) }]);
    assert!(relayed_to(&relay(&mut room, 1, None, "ice-restart"), 2).is_empty());
    // It comes back on a new socket with its old (even expired) ticket.
    room.apply(NOW + 5_000, Input::Join { conn: conn(12), peer: peer(2), admits_until: NOW - 1 });
    let out: Vec<_> = room.outputs().collect();
    assert_eq!(notices_to(&out, 12), vec![Notice::Joined { room: room.id(), peer: peer(2), peers: vec![peer(1)] }]);
    assert_eq!(relayed_to(&out, 12), vec!["ice-restart".to_owned()]);
    assert_eq!(notices_to(&out, 1), vec![Notice::PeerBack { peer: peer(2) }]);
}

#[test]
fn when_the_grace_window_ends_the_away_peer_has_left() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    room.apply(NOW, Input::Closed { conn: conn(2), clean: false });
    room.outputs().for_each(drop);
    assert_eq!(room.next_deadline(), Some(NOW + RoomSettings::default().resume_grace));
    room.tick(NOW + RoomSettings::default().resume_grace - 1);
    assert!(room.outputs().next().is_none());
    room.tick(NOW + RoomSettings::default().resume_grace);
    assert_eq!(notices_to(&room.outputs().collect::<Vec<_>>(), 1), vec![Notice::PeerLeft { peer: peer(2) }]);
}

#[test]
fn an_expired_ticket_admits_only_an_away_peer() {
    let mut room = matched();
    room.apply(NOW, Input::Join { conn: conn(1), peer: peer(1), admits_until: NOW - 1 });
    assert_eq!(refused(&room.outputs().collect::<Vec<_>>()), vec![Refusal::TicketExpired]);
}

#[test]
fn a_code_room_admits_up_to_its_capacity() {
    let mut room = code_room(3);
    for n in 1..=3 {
        assert!(refused(&join(&mut room, n)).is_empty());
    }
    assert_eq!(refused(&join(&mut room, 4)), vec![Refusal::RoomFull]);
}

#[test]
fn to_reaches_one_peer_and_no_to_reaches_all_others() {
    let mut room = code_room(8);
    for n in 1..=3 {
        join(&mut room, n);
    }
    let out = relay(&mut room, 1, Some(3), "for three");
    assert_eq!((relayed_to(&out, 2).len(), relayed_to(&out, 3).len()), (0, 1));
    let out = relay(&mut room, 1, None, "for all");
    assert_eq!((relayed_to(&out, 1).len(), relayed_to(&out, 2).len(), relayed_to(&out, 3).len()), (0, 1, 1));
}

#[test]
fn to_naming_nobody_in_the_room_is_unknown_peer_and_nothing_is_relayed() {
    let mut room = code_room(8);
    join(&mut room, 1);
    join(&mut room, 2);
    let out = relay(&mut room, 1, Some(9), "x");
    assert_eq!(refused(&out), vec![Refusal::UnknownPeer]);
    assert!(relayed_to(&out, 2).is_empty());
    assert_eq!(refused(&relay(&mut room, 1, Some(1), "to myself")), vec![Refusal::UnknownPeer]);
}

#[test]
fn nothing_is_held_in_a_code_room_for_peers_not_there() {
    let mut room = code_room(8);
    join(&mut room, 1);
    assert!(relay(&mut room, 1, None, "anyone?").is_empty());
    assert!(relayed_to(&join(&mut room, 2), 2).is_empty());
}

#[test]
fn a_code_room_outlives_its_last_peer_by_the_idle_time_and_not_longer() {
    let mut room = code_room(8);
    join(&mut room, 1);
    room.apply(NOW, Input::Leave { conn: conn(1) });
    let idle = RoomSettings::default().idle;
    assert!(!room.is_finished(NOW + idle - 1));
    assert_eq!(room.next_deadline(), Some(NOW + idle));
    assert!(room.is_finished(NOW + idle));
}

#[test]
fn a_gone_instance_leaves_its_peers_away() {
    let mut room = matched();
    join(&mut room, 1);
    room.apply(NOW, Input::Join { conn: Conn::new(uuid::Uuid::from_u128(2), 2), peer: peer(2), admits_until: ADMITS });
    room.outputs().for_each(drop);
    room.apply(NOW, Input::HomeGone { home: uuid::Uuid::from_u128(2) });
    assert_eq!(notices_to(&room.outputs().collect::<Vec<_>>(), 1), vec![Notice::PeerAway { peer: peer(2) }]);
}

#[test]
fn a_room_rebuilt_from_its_record_knows_its_members() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    let mut rebuilt: Room<String> = Room::restore(room.id(), RoomSettings::default(), room.record());
    assert_eq!(relayed_to(&relay(&mut rebuilt, 1, None, "after takeover"), 2), vec!["after takeover".to_owned()]);
    assert_eq!(rebuilt.record(), room.record());
}

#[test]
fn a_rejoin_after_a_takeover_restores_a_member_without_telling_anyone() {
    let mut room = matched();
    join(&mut room, 1);
    let record = room.record();
    // The old owner died before it recorded the second peer; the new one hears it again.
    let mut rebuilt: Room<String> = Room::restore(room.id(), RoomSettings::default(), record);
    rebuilt.apply(NOW, Input::Rejoin { conn: conn(2), peer: peer(2), admits_until: ADMITS });
    assert!(rebuilt.outputs().next().is_none());
    assert_eq!(relayed_to(&relay(&mut rebuilt, 1, None, "hi"), 2), vec!["hi".to_owned()]);
}

// ---- drain ---------------------------------------------------------------------------------

fn closed(outputs: &[Output<String>]) -> Vec<(Conn, Closing)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Close { to, code } => Some((*to, *code)),
            _ => None,
        })
        .collect()
}

fn drain(room: &mut Room<String>) -> Vec<Output<String>> {
    room.apply(NOW, Input::Drain { home: HOME });
    room.outputs().collect()
}

#[test]
fn a_drain_closes_a_peer_alone_in_its_room_with_1012() {
    let mut room = matched();
    join(&mut room, 1);
    assert_eq!(closed(&drain(&mut room)), vec![(conn(1), Closing::Restart)]);
}

#[test]
fn a_drain_leaves_peers_in_a_chat_in_it() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    assert_eq!(closed(&drain(&mut room)), vec![]);
}

#[test]
fn during_a_drain_a_peer_whose_partner_leaves_is_closed_with_1012_once() {
    let mut room = matched();
    join(&mut room, 1);
    join(&mut room, 2);
    drain(&mut room);
    room.apply(NOW, Input::Leave { conn: conn(2) });
    assert_eq!(closed(&room.outputs().collect::<Vec<_>>()), vec![(conn(1), Closing::Restart)]);
    assert_eq!(closed(&relay(&mut room, 1, None, "still here")), vec![], "told once");
}

#[test]
fn a_drain_of_another_instance_closes_nobody_here() {
    let mut room = matched();
    join(&mut room, 1);
    room.apply(NOW, Input::Drain { home: uuid::Uuid::from_u128(2) });
    assert_eq!(closed(&room.outputs().collect::<Vec<_>>()), vec![]);
}

#[test]
fn a_peer_closed_by_a_drain_keeps_its_seat_and_takes_it_back_from_another_instance() {
    let mut room = matched();
    join(&mut room, 1);
    drain(&mut room);
    room.apply(NOW, Input::Closed { conn: conn(1), clean: false });
    room.outputs().for_each(drop);
    let elsewhere = Conn::new(uuid::Uuid::from_u128(2), 9);
    room.apply(NOW + 1_000, Input::Join { conn: elsewhere, peer: peer(1), admits_until: ADMITS });
    let out: Vec<_> = room.outputs().collect();
    assert!(matches!(out.first(), Some(Output::Notice { to, notice: Notice::Joined { .. } }) if *to == elsewhere));
    assert_eq!(closed(&out), vec![]);
}
