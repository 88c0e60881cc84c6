//! The pairing rules' operations, with the queue and pair map at a realistic size.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use matchmaker::queue::{Event, Matchmaking};
use uuid::Uuid;

/// Rooms already open while measuring: the pair map's size matters for its hashing and growth.
const OPEN_ROOMS: [usize; 2] = [0, 10_000];

/// A queue with `rooms` matched pairs.
fn with_rooms(rooms: usize) -> Matchmaking {
    let mut mm = Matchmaking::new(true);
    let mut out = Vec::new();
    for _ in 0..rooms * 2 {
        mm.available(Uuid::new_v4(), &mut out);
        out.clear();
    }
    mm
}

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    for rooms in OPEN_ROOMS {
        // Two clients arrive and are paired, then both disconnect: a whole short visit.
        group.bench_function(BenchmarkId::new("pair-and-disconnect", rooms), |b| {
            let mut mm = with_rooms(rooms);
            let mut out: Vec<Event> = Vec::with_capacity(8);
            b.iter(|| {
                let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
                mm.available(black_box(x), &mut out);
                mm.available(black_box(y), &mut out);
                mm.disconnect(x, &mut out);
                mm.disconnect(y, &mut out);
                out.clear();
            })
        });
        // `next` in a room while others wait: ends the match, re-queues both, pairs again.
        group.bench_function(BenchmarkId::new("next", rooms), |b| {
            b.iter_batched(
                || {
                    let mut mm = with_rooms(rooms);
                    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
                    let mut out = Vec::new();
                    mm.available(x, &mut out);
                    mm.available(y, &mut out);
                    (mm, x, out)
                },
                |(mut mm, x, mut out)| {
                    mm.next(black_box(x), &mut out);
                    (mm, out)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("available-queued", rooms), |b| {
            let mut mm = with_rooms(rooms);
            let mut out = Vec::with_capacity(8);
            b.iter(|| {
                let x = Uuid::new_v4();
                mm.available(black_box(x), &mut out);
                mm.leave(x, &mut out);
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queue);
criterion_main!(benches);
