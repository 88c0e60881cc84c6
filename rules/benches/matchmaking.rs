//! The matchmaking rules' steps, with the queue and the matches at a realistic size, driven as
//! a shell drives them (presence checks answered at once).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rules::matchmaking::{Input, Matchmaking, Output, Settings};
use rules::{Conn, HomeId, Ids};

/// Rooms already open while measuring: the maps' sizes matter for hashing and growth.
const OPEN_ROOMS: [usize; 2] = [0, 10_000];
const HOME: HomeId = uuid::Uuid::from_u128(1);

struct Driver {
    mm: Matchmaking,
    next: u64,
    now: u64,
}

impl Driver {
    fn new() -> Self {
        Driver { mm: Matchmaking::new(Settings::default(), Ids::from_seed([3; 32])), next: 1, now: 1_000_000 }
    }

    fn connect(&mut self) -> Conn {
        let conn = Conn::new(HOME, self.next);
        self.next += 1;
        self.apply(Input::Connect { conn, client: uuid::Uuid::from_u128(u128::from(self.next)), address: None });
        conn
    }

    fn apply(&mut self, input: Input) {
        self.mm.apply(self.now, input);
        loop {
            let answers: Vec<Input> = self
                .mm
                .outputs()
                .filter_map(|o| match o {
                    Output::Confirm { to, check } => Some(Input::Presence { conn: to, check, present: true }),
                    _ => None,
                })
                .collect();
            if answers.is_empty() {
                return;
            }
            for answer in answers {
                self.mm.apply(self.now, answer);
            }
        }
    }

    fn with_rooms(rooms: usize) -> Self {
        let mut driver = Driver::new();
        for _ in 0..rooms * 2 {
            let conn = driver.connect();
            driver.apply(Input::Available { conn });
        }
        driver
    }
}

fn matchmaking(c: &mut Criterion) {
    let mut group = c.benchmark_group("matchmaking");
    for rooms in OPEN_ROOMS {
        // Two clients connect, are paired (presence confirmed), and disconnect: a short visit.
        group.bench_function(BenchmarkId::new("pair-and-disconnect", rooms), |b| {
            let mut driver = Driver::with_rooms(rooms);
            b.iter(|| {
                let (x, y) = (driver.connect(), driver.connect());
                driver.apply(Input::Available { conn: black_box(x) });
                driver.apply(Input::Available { conn: black_box(y) });
                driver.apply(Input::Closed { conn: x, clean: true });
                driver.apply(Input::Closed { conn: y, clean: true });
            })
        });
        // `next` in a match while another client waits: ends it, requeues both, pairs again.
        group.bench_function(BenchmarkId::new("next", rooms), |b| {
            let mut driver = Driver::with_rooms(rooms);
            let (x, y) = (driver.connect(), driver.connect());
            driver.apply(Input::Available { conn: x });
            driver.apply(Input::Available { conn: y });
            b.iter(|| driver.apply(Input::Next { conn: black_box(x) }))
        });
    }
    group.finish();
}

criterion_group!(benches, matchmaking);
criterion_main!(benches);
