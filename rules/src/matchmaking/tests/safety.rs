//! Block, report and ban, one behaviour per test.

use super::*;
use crate::matchmaking::safety::{self as records, BanSource, Reason, Subject};

fn settings(threshold: usize) -> Settings {
    Settings {
        rematch_cooldown: 0,
        safety: SafetySettings { report_threshold: threshold, ..SafetySettings::default() },
        ..Settings::default()
    }
}

/// Two clients in a match; the first offers.
fn pair(sim: &mut Sim, a: (Conn, ClientId), b: (Conn, ClientId)) -> RoomId {
    sim.available(a.0);
    sim.available(b.0);
    sim.take(a.1);
    sim.take(b.1);
    sim.room_of(a.1).expect("paired")
}

fn banned(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::Refused(Refusal::Banned { retry_after_secs }) => Some(*retry_after_secs),
        _ => None,
    })
}

#[test]
fn block_ends_the_match_like_next_and_answers_blocked_before_queued() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect(), sim.connect());
    let room = pair(&mut sim, a, b);
    sim.apply(Input::Block { conn: a.0 });
    assert_eq!(sim.take(a.1), vec![Event::Blocked, Event::Queued { waiting: 1 }]);
    assert_eq!(sim.take(b.1), vec![Event::PartnerLeft { room }, Event::Queued { waiting: 2 }]);
}

#[test]
fn blocked_clients_are_never_paired_again_even_alone_and_without_a_cooldown() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect(), sim.connect());
    pair(&mut sim, a, b);
    sim.apply(Input::Block { conn: a.0 });
    sim.advance(3_600_000);
    assert_eq!(sim.room_of(a.1), None);
    assert!(!sim.mm.may_pair(a.1, b.1, sim.now));
    let c = sim.connect();
    sim.available(c.0);
    assert_eq!(sim.room_of(c.1).map(|_| ()), Some(()), "a third client is paired with one of them");
}

#[test]
fn block_right_after_a_match_ended_refers_to_the_last_partner() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect(), sim.connect());
    pair(&mut sim, a, b);
    sim.apply(Input::Leave { conn: b.0 });
    sim.take(a.1);
    sim.apply(Input::Block { conn: a.0 });
    assert_eq!(sim.take(a.1), vec![Event::Blocked]);
    assert!(!sim.mm.may_pair(a.1, b.1, sim.now));
}

#[test]
fn block_with_no_current_or_last_partner_is_refused() {
    let mut sim = Sim::with(settings(3));
    let a = sim.connect();
    sim.apply(Input::Block { conn: a.0 });
    assert_eq!(sim.take(a.1), vec![Event::Refused(Refusal::NoPartner)]);
}

#[test]
fn a_block_between_clients_survives_a_resume() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect(), sim.connect());
    pair(&mut sim, a, b);
    sim.apply(Input::Block { conn: a.0 });
    sim.apply(Input::Closed { conn: b.0, clean: false });
    let fresh = sim.connect();
    let generation = sim.mm.client(b.1).unwrap().generation;
    sim.apply(Input::Resume { conn: fresh.0, client: b.1, generation });
    sim.advance(1_000);
    assert_eq!(sim.room_of(b.1), None);
    assert!(!sim.mm.may_pair(a.1, b.1, sim.now));
}

#[test]
fn authenticated_users_stay_apart_on_new_sockets_for_the_block_time() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect(), sim.connect());
    sim.apply(Input::Identify { conn: a.0, user: "alice".into() });
    sim.apply(Input::Identify { conn: b.0, user: "bob".into() });
    pair(&mut sim, a, b);
    sim.apply(Input::Block { conn: b.0 });
    for conn in [a.0, b.0] {
        sim.apply(Input::Closed { conn, clean: true });
    }
    let (a2, b2) = (sim.connect(), sim.connect());
    sim.apply(Input::Identify { conn: a2.0, user: "alice".into() });
    sim.apply(Input::Identify { conn: b2.0, user: "bob".into() });
    sim.available(a2.0);
    sim.available(b2.0);
    assert_eq!(sim.room_of(a2.1), None, "still apart");
    sim.advance(SafetySettings::default().block_ttl);
    assert!(sim.room_of(a2.1).is_some(), "paired once the block is over");
}

#[test]
fn report_is_a_block_plus_a_report_kept_for_operators() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect_from("198.51.100.1"), sim.connect_from("203.0.113.9"));
    let room = pair(&mut sim, a, b);
    sim.apply(Input::Report { conn: a.0, reason: Reason::Spam, note: Some("links".into()) });
    assert_eq!(sim.take(a.1), vec![Event::Reported { reason: Reason::Spam }, Event::Queued { waiting: 1 }]);
    assert!(!sim.mm.may_pair(a.1, b.1, sim.now));
    let (reports, total) = sim.mm.safety().reports(0, 10);
    assert_eq!(total, 1);
    assert_eq!((reports[0].room, reports[0].reason, reports[0].note.as_deref()), (room, Reason::Spam, Some("links")));
    assert_eq!(reports[0].reported.address.as_deref(), Some("203.0.113.9"));
    assert_eq!(reports[0].reporter.address.as_deref(), Some("198.51.100.1"));
}

/// `abuser` is matched with and reported by a client from each of `reporters`.
fn reported_by(sim: &mut Sim, abuser: (Conn, ClientId), reporters: &[&str]) {
    for address in reporters {
        let r = sim.connect_from(address);
        sim.available(abuser.0);
        sim.available(r.0);
        assert_eq!(sim.room_of(r.1), sim.room_of(abuser.1), "paired with the abuser");
        sim.apply(Input::Report { conn: r.0, reason: Reason::Harassment, note: None });
        sim.apply(Input::Leave { conn: r.0 });
    }
}

#[test]
fn reports_from_the_threshold_of_different_addresses_ban_the_reported() {
    let mut sim = Sim::with(settings(2));
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1"]);
    assert_eq!(sim.mm.safety().bans(sim.now).len(), 0, "one reporter is not enough");
    sim.take(abuser.1);
    reported_by(&mut sim, abuser, &["198.51.100.2"]);
    let bans = sim.mm.safety().bans(sim.now);
    assert_eq!(bans.len(), 1);
    assert_eq!((bans[0].subject.clone(), bans[0].source), (Subject::Address("203.0.113.9".into()), BanSource::Reports));
    assert_eq!(banned(&sim.take(abuser.1)), Some(3_600));
}

#[test]
fn one_address_reporting_many_times_counts_once() {
    let mut sim = Sim::with(settings(2));
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1", "198.51.100.1", "198.51.100.1"]);
    assert!(sim.mm.safety().bans(sim.now).is_empty());
}

#[test]
fn reports_older_than_the_window_do_not_count() {
    let mut sim = Sim::with(settings(2));
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1"]);
    sim.advance(SafetySettings::default().report_window + 1);
    reported_by(&mut sim, abuser, &["198.51.100.2"]);
    assert!(sim.mm.safety().bans(sim.now).is_empty());
}

#[test]
fn a_banned_client_loses_its_match_and_its_requests_are_refused_until_the_ban_ends() {
    let mut sim = Sim::with(settings(3));
    let (a, b) = (sim.connect_from("203.0.113.9"), sim.connect());
    let room = pair(&mut sim, a, b);
    let ban = records::Ban {
        id: uuid::Uuid::from_u128(5),
        subject: Subject::Address("203.0.113.9".into()),
        since: sim.now,
        until: sim.now + 60_000,
        reason: "operator".into(),
        source: BanSource::Operator,
    };
    sim.apply(Input::Ban { ban });
    assert_eq!(sim.take(a.1), vec![Event::Refused(Refusal::Banned { retry_after_secs: 60 })]);
    assert_eq!(sim.take(b.1), vec![Event::PartnerLeft { room }, Event::Queued { waiting: 1 }]);
    sim.advance(30_500);
    sim.available(a.0);
    sim.apply(Input::Next { conn: a.0 });
    let heard = sim.take(a.1);
    assert_eq!(heard, vec![Event::Refused(Refusal::Banned { retry_after_secs: 30 }); 2]);
    assert_eq!(sim.mm.stats().waiting, 1, "the banned client did not queue");
    sim.advance(29_500);
    sim.available(a.0);
    assert!(sim.room_of(a.1).is_some(), "paired after the ban");
}

#[test]
fn a_banned_address_new_sockets_are_refused_too() {
    let mut sim = Sim::with(settings(2));
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1", "198.51.100.2"]);
    let again = sim.connect_from("203.0.113.9");
    sim.available(again.0);
    assert_eq!(banned(&sim.take(again.1)), Some(3_600));
}

#[test]
fn a_banned_client_cannot_resume_into_its_place() {
    let mut sim = Sim::with(settings(2));
    let abuser = sim.connect_from("203.0.113.9");
    sim.available(abuser.0);
    sim.apply(Input::Closed { conn: abuser.0, clean: false });
    let ban = records::Ban {
        id: uuid::Uuid::from_u128(6),
        subject: Subject::Address("203.0.113.9".into()),
        since: sim.now,
        until: sim.now + 10_000,
        reason: "operator".into(),
        source: BanSource::Operator,
    };
    sim.apply(Input::Ban { ban });
    let fresh = sim.connect_from("203.0.113.9");
    sim.apply(Input::Resume { conn: fresh.0, client: abuser.1, generation: 0 });
    assert_eq!(banned(&sim.take(fresh.1)), Some(10));
}

#[test]
fn a_user_ban_follows_the_user_to_any_address() {
    let mut sim = Sim::with(settings(1));
    let abuser = sim.connect_from("203.0.113.9");
    sim.apply(Input::Identify { conn: abuser.0, user: "mallory".into() });
    reported_by(&mut sim, abuser, &["198.51.100.1"]);
    let elsewhere = sim.connect_from("192.0.2.50");
    sim.apply(Input::Identify { conn: elsewhere.0, user: "mallory".into() });
    sim.available(elsewhere.0);
    assert_eq!(banned(&sim.take(elsewhere.1)), Some(3_600));
}

#[test]
fn an_operator_lifts_a_ban() {
    let mut sim = Sim::with(settings(1));
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1"]);
    let id = sim.mm.safety().bans(sim.now)[0].id;
    sim.apply(Input::Unban { id });
    sim.take(abuser.1);
    sim.available(abuser.0);
    assert_eq!(sim.take(abuser.1), vec![Event::Queued { waiting: 1 }]);
}

#[test]
fn the_records_restore_bans_blocks_and_strikes() {
    let mut sim = Sim::with(settings(2));
    sim.mm = Matchmaking::new(settings(2), Ids::from_seed([3; 32])).track_changes();
    let abuser = sim.connect_from("203.0.113.9");
    reported_by(&mut sim, abuser, &["198.51.100.1"]);
    let mut records = records::Records::default();
    for change in sim.mm.take_safety_changes() {
        match change {
            records::Change::Reported(r) => records.reports.push(r),
            records::Change::Strikes(s, k) if !k.is_empty() => records.strikes.push((s, k)),
            _ => {}
        }
    }
    let clients: Vec<(ClientId, Client)> = sim.mm.clients().map(|(id, c)| (*id, c.clone())).collect();
    sim.mm = Matchmaking::restore(settings(2), Ids::from_seed([4; 32]), sim.now, clients, records);
    assert_eq!(sim.mm.safety().reports(0, 10).1, 1);
    reported_by(&mut sim, abuser, &["198.51.100.2"]);
    assert_eq!(sim.mm.safety().bans(sim.now).len(), 1, "the strike before the restore counted");
}
