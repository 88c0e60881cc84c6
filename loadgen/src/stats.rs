//! Latency samples with exact percentiles, and error tallies by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::ClientError;

/// Latencies in microseconds (exact: a run holds at most a few million).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u32>,
}

impl Samples {
    /// Adds one latency.
    pub fn push(&mut self, latency: Duration) {
        self.micros.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// Percentiles, in milliseconds; `None` without samples.
    pub fn summary(&mut self) -> Option<Summary> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of all samples at or below it.
            let rank = (q * self.micros.len() as f64).ceil() as usize;
            f64::from(self.micros[rank.clamp(1, self.micros.len()) - 1]) / 1_000.0
        };
        let sum: f64 = self.micros.iter().map(|&m| f64::from(m)).sum();
        Some(Summary {
            count: self.micros.len(),
            mean_ms: sum / self.micros.len() as f64 / 1_000.0,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        })
    }
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// One kind of error: how often, and the first message seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorKind {
    /// Occurrences.
    pub count: u64,
    /// The first one, in full.
    pub example: String,
}

/// Errors by kind.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tally(BTreeMap<String, ErrorKind>);

impl Tally {
    /// Counts an error.
    pub fn add(&mut self, err: &ClientError) {
        self.add_kind(err.kind(), err.to_string());
    }

    /// Counts an error given by kind and text.
    pub fn add_kind(&mut self, kind: String, example: String) {
        self.0.entry(kind).or_insert(ErrorKind { count: 0, example }).count += 1;
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: Tally) {
        for (kind, entry) in other.0 {
            self.0.entry(kind).or_insert(ErrorKind { count: 0, example: entry.example }).count += entry.count;
        }
    }

    /// Total errors.
    pub fn total(&self) -> u64 {
        self.0.values().map(|e| e.count).sum()
    }

    /// Errors of kinds starting with `prefix`.
    pub fn count_of(&self, prefix: &str) -> u64 {
        self.0.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, e)| e.count).sum()
    }

    /// Kinds with their entries, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ErrorKind)> {
        self.0.iter()
    }
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=1000u64 {
            samples.push(Duration::from_millis(ms));
        }
        let s = samples.summary().unwrap();
        assert_eq!((s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms), (500.0, 990.0, 999.0, 1000.0));
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn tally_counts_by_kind_and_keeps_the_first_example() {
        let mut tally = Tally::default();
        tally.add(&ClientError::Timeout("matched"));
        tally.add(&ClientError::Timeout("matched"));
        let mut other = Tally::default();
        other.add(&ClientError::Integrity("x".into()));
        tally.merge(other);
        assert_eq!((tally.total(), tally.count_of("timeout"), tally.count_of("integrity")), (3, 2, 1));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
