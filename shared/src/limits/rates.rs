//! Per-socket counting, pure: a token bucket for the message and `next` rates, and the strikes
//! that close a socket which keeps sending past its rate. Time is passed in, so the rules are
//! tested without a clock.

use std::time::Instant;

use super::ABUSE_WINDOW;

/// How many messages one socket may send: a token bucket, and how many drops end the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRate {
    /// Tokens added per second.
    pub per_sec: u32,
    /// The bucket's size.
    pub burst: u32,
    /// Drops tolerated within [`ABUSE_WINDOW`].
    pub max_dropped: u32,
}

impl MessageRate {
    /// The bucket and strike counter of a new socket.
    pub fn start(&self, now: Instant) -> (TokenBucket, Strikes) {
        (TokenBucket::new(self.burst, f64::from(self.per_sec), now), Strikes::new(self.max_dropped))
    }
}

/// A token bucket: holds up to `capacity` tokens, gains `per_sec` a second, and each admitted
/// event takes one. Time is passed in, so the rules are tested without a clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, per_sec: f64, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        TokenBucket { capacity, per_sec: per_sec.max(0.0), tokens: capacity, last: now }
    }

    /// Takes a token if there is one; returns whether the event is admitted.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Milliseconds from the last event until the next one would be admitted (0: now).
    pub fn wait_ms(&self) -> u64 {
        if self.tokens >= 1.0 || self.per_sec <= 0.0 {
            return 0;
        }
        // Whole milliseconds, rounded up; at most a day (a rate this slow is a setting's bound).
        (((1.0 - self.tokens) / self.per_sec) * 1_000.0).ceil().min(86_400_000.0) as u64
    }
}

/// Counts dropped messages in a fixed window that opens at the first drop; tells when a
/// socket has had more than it may.
#[derive(Debug, Clone)]
pub struct Strikes {
    max: u32,
    window_start: Option<Instant>,
    count: u32,
}

impl Strikes {
    /// No strikes yet; `max` drops per [`ABUSE_WINDOW`] are tolerated.
    pub fn new(max: u32) -> Self {
        Strikes { max, window_start: None, count: 0 }
    }

    /// Records one dropped message; returns whether the socket is now over the limit.
    pub fn strike(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < ABUSE_WINDOW => {
                self.count = self.count.saturating_add(1);
            }
            _ => {
                self.window_start = Some(now);
                self.count = 1;
            }
        }
        self.count > self.max
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 2.0, start);
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        // Half a second later one token (2 per second) is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
        // A long pause refills to the burst, never beyond.
        let much_later = later + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take(much_later)));
        assert!(!bucket.take(much_later));
    }

    #[test]
    fn an_empty_bucket_says_how_long_until_its_next_token() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1, 4.0, start);
        assert_eq!(bucket.wait_ms(), 0, "a token is there");
        assert!(bucket.take(start));
        assert_eq!(bucket.wait_ms(), 250);
        assert!(!bucket.take(start + Duration::from_millis(100)));
        assert_eq!(bucket.wait_ms(), 150);
        assert!(bucket.take(start + Duration::from_millis(250)));
    }

    #[test]
    fn a_bucket_ignores_time_going_backwards() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 1.0, start);
        assert!(bucket.take(start));
        assert!(!bucket.take(start - Duration::from_secs(5)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        assert!(bucket.take(start + Duration::from_secs(1)));
    }

    #[test]
    fn strikes_close_only_above_the_maximum_within_the_window() {
        let start = Instant::now();
        let mut strikes = Strikes::new(2);
        assert!(!strikes.strike(start));
        assert!(!strikes.strike(start));
        assert!(strikes.strike(start + Duration::from_secs(9)));
        let mut strikes = Strikes::new(2);
        assert!(!strikes.strike(start));
        assert!(!strikes.strike(start));
        // A new window starts after ABUSE_WINDOW.
        assert!(!strikes.strike(start + ABUSE_WINDOW));
        assert!(!strikes.strike(start + ABUSE_WINDOW));
        assert!(strikes.strike(start + ABUSE_WINDOW));
        assert!(Strikes::new(0).strike(start));
    }
}
