//! Room tickets: the matchmaker signs two per match, the signaler verifies one per join.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use shared::ticket::Tickets;
use uuid::Uuid;

/// A 32-byte secret, HMAC-SHA256's key strength.
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn tickets(c: &mut Criterion) {
    let tickets = Tickets::new(SECRET, Duration::from_secs(60));
    let (room, peer) = (Uuid::new_v4(), Uuid::new_v4());
    let ticket = tickets.issue(room, peer);
    let room_id = room.to_string();
    let mut group = c.benchmark_group("ticket");
    group.bench_function("issue", |b| b.iter(|| tickets.issue(black_box(room), black_box(peer))));
    group.bench_function("verify", |b| b.iter(|| tickets.verify(black_box(&ticket), black_box(&room_id)).is_ok()));
    group.bench_function("verify-wrong-room", |b| {
        let other = Uuid::new_v4().to_string();
        b.iter(|| tickets.verify(black_box(&ticket), black_box(&other)).is_err())
    });
    group.finish();
}

criterion_group!(benches, tickets);
criterion_main!(benches);
