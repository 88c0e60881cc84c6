//! Connection reports (`connection-report`): which rooms a socket may still report on, and the
//! `/metrics` figures the reports add up to.
//!
//! A socket may report once on each room it was told `matched` for. The rooms are kept with the
//! socket, on the instance that told it, so on Redis a client that resumed on another instance
//! reports there: the replayed `matched` it got there made the room reportable on its new socket.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use rules::RoomId;
use shared::metrics::Metrics;
use shared::protocol::report::{CandidateType, ConnectionReport, Outcome};

/// Rooms one socket remembers for reports: its last few matches (a page reports within seconds
/// of each; a socket that skips through strangers faster forgets the oldest).
pub const MAX_REPORTABLE_ROOMS: usize = 8;
/// Upper bounds of the `connect_seconds` histogram's buckets.
pub const CONNECT_SECONDS_BUCKETS: [f64; 11] = [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0];

/// The rooms a socket was matched into, and whether each was reported on.
#[derive(Debug, Default)]
pub struct Reportable(Mutex<VecDeque<(RoomId, bool)>>);

impl Reportable {
    /// The socket was told `matched` for `room` (again, after a resume: nothing changes).
    pub fn matched(&self, room: RoomId) {
        let mut rooms = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms.iter().any(|(r, _)| *r == room) {
            return;
        }
        if rooms.len() == MAX_REPORTABLE_ROOMS {
            rooms.pop_front();
        }
        rooms.push_back((room, false));
    }

    /// Whether a report on `room` counts: the socket was matched into it and has not reported on
    /// it yet. From now on it has.
    pub fn take(&self, room: RoomId) -> bool {
        let mut rooms = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match rooms.iter_mut().find(|(r, _)| *r == room) {
            Some((_, reported)) if !*reported => {
                *reported = true;
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CandidateLabel {
    candidate_type: &'static str,
}

/// What the reports add up to, in `/metrics`.
#[derive(Debug, Clone)]
pub struct ReportFigures {
    outcomes: Family<OutcomeLabel, Counter>,
    candidates: Family<CandidateLabel, Counter>,
    connect_seconds: Histogram,
}

impl ReportFigures {
    /// The figures, each label shown from the start, registered in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let figures = ReportFigures {
            outcomes: Family::default(),
            candidates: Family::default(),
            connect_seconds: Histogram::new(CONNECT_SECONDS_BUCKETS),
        };
        for outcome in Outcome::ALL {
            drop(figures.outcomes.get_or_create(&OutcomeLabel { outcome: outcome.as_str() }));
        }
        for kind in CandidateType::ALL {
            drop(figures.candidates.get_or_create(&CandidateLabel { candidate_type: kind.as_str() }));
        }
        metrics.register("connection_reports", "Connection reports of matches, by outcome", figures.outcomes.clone());
        metrics.register(
            "connected_candidates",
            "Connected matches by the local candidate type of the selected pair (relay: through TURN)",
            figures.candidates.clone(),
        );
        metrics.register(
            "connect_seconds",
            "Time from matched to the data channel open, of connected matches",
            figures.connect_seconds.clone(),
        );
        figures
    }

    /// Adds one report that counts.
    pub fn record(&self, report: &ConnectionReport) {
        self.outcomes.get_or_create(&OutcomeLabel { outcome: report.outcome.as_str() }).inc();
        if report.outcome != Outcome::Connected {
            return;
        }
        if let Some(kind) = report.candidate_type {
            self.candidates.get_or_create(&CandidateLabel { candidate_type: kind.as_str() }).inc();
        }
        if let Some(ms) = report.connect_ms {
            #[allow(clippy::cast_precision_loss)] // at most MAX_CONNECT_MS
            self.connect_seconds.observe(ms as f64 / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(n: u128) -> RoomId {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn a_room_is_reported_once_and_only_when_matched_into() {
        let rooms = Reportable::default();
        assert!(!rooms.take(room(1)), "never matched into");
        rooms.matched(room(1));
        assert!(rooms.take(room(1)));
        assert!(!rooms.take(room(1)), "already reported");
        rooms.matched(room(1)); // the replayed matched of a resume
        assert!(!rooms.take(room(1)), "still reported");
    }

    #[test]
    fn a_socket_remembers_its_last_rooms() {
        let rooms = Reportable::default();
        for n in 0..=MAX_REPORTABLE_ROOMS as u128 {
            rooms.matched(room(n));
        }
        assert!(!rooms.take(room(0)), "the oldest is forgotten");
        assert!(rooms.take(room(1)));
        assert!(rooms.take(room(MAX_REPORTABLE_ROOMS as u128)));
    }
}
