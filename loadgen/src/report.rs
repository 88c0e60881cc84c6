//! One run's result: named figures, correctness checks and error tallies, printed as a table or
//! as JSON (which [`crate::compare`] reads back).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::stats::{Summary, Tally};

/// Which direction of a figure is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, memory).
    Lower,
}

/// One measured number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    /// Stable name, e.g. `rtt_p99_ms`.
    pub key: String,
    /// What it is, for people.
    pub label: String,
    /// The value (always finite).
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// Which way is good.
    pub better: Better,
    /// The bare relay's figure this one is compared with, when its key differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// A run of one scenario against one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `pairing`, `relay`, `idle` or `session`.
    pub scenario: String,
    /// `strangers` or `bare`.
    pub target: String,
    /// The URL first connected to.
    pub url: String,
    /// A free-text tag from `--label`.
    #[serde(default)]
    pub label: String,
    /// When the run started (seconds since the Unix epoch).
    pub unix_time: u64,
    /// The scenario's parameters.
    pub params: serde_json::Value,
    /// Wall time of the measured phase, in seconds.
    pub elapsed_s: f64,
    /// The figures.
    pub figures: Vec<Figure>,
    /// Whether every correctness check held.
    pub passed: bool,
    /// The checks that failed, explained.
    pub failures: Vec<String>,
    /// Errors clients met, by kind.
    pub errors: Tally,
    /// Conditions worth knowing when reading the figures.
    pub notes: Vec<String>,
    /// CPU time the load generator itself used (parent only), in seconds.
    pub loadgen_cpu_s: f64,
}

impl Report {
    /// An empty report for `scenario` against `target`.
    pub fn new(scenario: &str, target: &str, url: &str, label: &str, params: serde_json::Value) -> Self {
        Report {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            url: url.to_owned(),
            label: label.to_owned(),
            unix_time: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            params,
            elapsed_s: 0.0,
            figures: Vec::new(),
            passed: true,
            failures: Vec::new(),
            errors: Tally::default(),
            notes: Vec::new(),
            loadgen_cpu_s: 0.0,
        }
    }

    /// Adds a figure; a value that is not finite means "not measurable here" and becomes a note.
    pub fn figure(&mut self, key: &str, label: &str, value: f64, unit: &str, better: Better) {
        if !value.is_finite() {
            self.note(format!("{label}: not measurable in this run"));
            return;
        }
        self.figures.push(Figure {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit: unit.to_owned(),
            better,
            baseline: None,
        });
    }

    /// Compares figure `key` with the bare relay's `baseline` figure instead of its namesake.
    pub fn compare_with(&mut self, key: &str, baseline: &str) {
        if let Some(figure) = self.figures.iter_mut().find(|f| f.key == key) {
            figure.baseline = Some(baseline.to_owned());
        }
    }

    /// Adds p50/p99/(p99.9)/max figures of a latency summary under `prefix`.
    pub fn latency(&mut self, prefix: &str, label: &str, summary: &Summary, with_p999: bool) {
        self.figure(&format!("{prefix}_p50_ms"), &format!("{label} p50"), summary.p50_ms, "ms", Better::Lower);
        self.figure(&format!("{prefix}_p99_ms"), &format!("{label} p99"), summary.p99_ms, "ms", Better::Lower);
        if with_p999 {
            self.figure(&format!("{prefix}_p999_ms"), &format!("{label} p99.9"), summary.p999_ms, "ms", Better::Lower);
        }
        self.figure(&format!("{prefix}_max_ms"), &format!("{label} max"), summary.max_ms, "ms", Better::Lower);
    }

    /// Records a failed check.
    pub fn fail(&mut self, why: impl Into<String>) {
        self.passed = false;
        self.failures.push(why.into());
    }

    /// Records a check: fails with `why` unless `ok`.
    pub fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.fail(why());
        }
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The value of a figure by key.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} against {} ({}), {:.1} s", self.scenario, self.target, self.url, self.elapsed_s);
        let width = self.figures.iter().map(|f| f.label.len()).max().unwrap_or(0);
        for f in &self.figures {
            let _ = writeln!(out, "  {:<width$}  {:>14}  {}", f.label, format_value(f.value), f.unit);
        }
        let _ = writeln!(out, "  {:<width$}  {:>14}  s", "load generator CPU", format_value(self.loadgen_cpu_s));
        let verdict = if self.passed { "all checks passed".to_owned() } else { "CHECKS FAILED".to_owned() };
        let _ = writeln!(out, "  {verdict}");
        for failure in &self.failures {
            let _ = writeln!(out, "    - {failure}");
        }
        if self.errors.total() > 0 {
            let _ = writeln!(out, "  errors:");
            for (kind, entry) in self.errors.iter() {
                let _ = writeln!(out, "    {:>7} x {kind}: {}", entry.count, entry.example);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

/// A number with sensible precision for a table.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1_000.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_and_prints() {
        let mut report = Report::new("relay", "bare", "ws://127.0.0.1:9090/ws", "", serde_json::json!({"pairs": 2}));
        report.figure("msgs_per_s", "messages per second", 1234.5, "msg/s", Better::Higher);
        report.figure("nan", "not measurable", f64::NAN, "x", Better::Lower);
        report.fail("one message out of order");
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back.value("msgs_per_s"), Some(1234.5));
        assert_eq!(back.value("nan"), None);
        assert_eq!(back.notes.len(), 1);
        assert!(!back.passed);
        assert!(report.to_table().contains("CHECKS FAILED"));
    }
}
