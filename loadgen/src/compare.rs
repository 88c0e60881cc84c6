//! Reads many runs' JSON reports and prints, per scenario and figure, the median against
//! Strangers, the median against the bare relay, their ratio, and the capacity issue's target.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::report::{format_value, Report};
use crate::stats::median;

/// A target of the capacity issue.
#[derive(Debug, Clone, Copy)]
pub struct Goal {
    /// The scenario the figure comes from.
    pub scenario: &'static str,
    /// The figure.
    pub key: &'static str,
    /// What it must satisfy.
    pub rule: Rule,
}

/// What a figure must satisfy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// At least this fraction of the bare relay's figure.
    RatioAtLeast(f64),
    /// At most this multiple of the bare relay's figure.
    RatioAtMost(f64),
    /// At most this value, whatever the bare relay does.
    AtMost(f64),
}

/// At most 8 KiB per idle connection on each service.
const MAX_BYTES_PER_IDLE_CONNECTION: f64 = 8.0 * 1024.0;

/// The targets of the capacity issue.
pub const GOALS: &[Goal] = &[
    Goal { scenario: "relay", key: "msgs_per_server_cpu_s", rule: Rule::RatioAtLeast(0.8) },
    Goal { scenario: "relay", key: "rtt_p99_ms", rule: Rule::RatioAtMost(1.3) },
    Goal { scenario: "pairing", key: "pairs_per_s", rule: Rule::RatioAtLeast(0.7) },
    Goal { scenario: "pairing", key: "ttm_p99_ms", rule: Rule::RatioAtMost(1.5) },
    Goal { scenario: "idle", key: "matchmaker_bytes_per_conn", rule: Rule::AtMost(MAX_BYTES_PER_IDLE_CONNECTION) },
    Goal { scenario: "idle", key: "signaler_bytes_per_conn", rule: Rule::AtMost(MAX_BYTES_PER_IDLE_CONNECTION) },
    Goal { scenario: "idle", key: "process_bytes_per_conn", rule: Rule::AtMost(MAX_BYTES_PER_IDLE_CONNECTION) },
];

impl Rule {
    fn describe(self) -> String {
        match self {
            Rule::RatioAtLeast(r) => format!(">= {r}x bare"),
            Rule::RatioAtMost(r) => format!("<= {r}x bare"),
            Rule::AtMost(v) => format!("<= {}", format_value(v)),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> Option<bool> {
        match self {
            Rule::RatioAtLeast(r) => ratio.map(|x| x >= r),
            Rule::RatioAtMost(r) => ratio.map(|x| x <= r),
            Rule::AtMost(v) => Some(value <= v),
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario.
    pub scenario: String,
    /// Figure key.
    pub key: String,
    /// Figure label.
    pub label: String,
    /// Unit.
    pub unit: String,
    /// Median against Strangers, and how many runs.
    pub strangers: Option<f64>,
    /// Runs against Strangers.
    pub strangers_runs: usize,
    /// Median of the bare relay's matching figure, and how many runs.
    pub bare: Option<f64>,
    /// Runs against the bare relay.
    pub bare_runs: usize,
    /// Strangers / bare.
    pub ratio: Option<f64>,
    /// The target, if any.
    pub target: Option<String>,
    /// Whether the target is met.
    pub met: Option<bool>,
}

/// Reads reports from files.
///
/// # Errors
/// The first file that cannot be read or parsed.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Vec<Report>, String> {
    paths
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// The comparison rows, scenario by scenario, figures in report order.
pub fn rows(reports: &[Report]) -> Vec<Row> {
    let order = ["pairing", "relay", "session", "idle"];
    let mut scenarios: Vec<&str> = reports.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.sort_by_key(|s| (order.iter().position(|o| o == s).unwrap_or(order.len()), s.to_string()));
    scenarios.dedup();
    let mut rows = Vec::new();
    for scenario in scenarios {
        let runs =
            |target: &str| reports.iter().filter(|r| r.scenario == scenario && r.target == target).collect::<Vec<_>>();
        let (strangers, bare) = (runs("strangers"), runs("bare"));
        let lead = if strangers.is_empty() { &bare } else { &strangers };
        let Some(first) = lead.first() else { continue };
        for figure in &first.figures {
            let values = |runs: &[&Report], key: &str| {
                let mut v: Vec<f64> = runs.iter().filter_map(|r| r.value(key)).collect();
                (median(&mut v), v.len())
            };
            let (s, s_runs) = if strangers.is_empty() { (None, 0) } else { values(&strangers, &figure.key) };
            let baseline = figure.baseline.as_deref().unwrap_or(&figure.key);
            let (b, b_runs) = values(&bare, if strangers.is_empty() { &figure.key } else { baseline });
            let ratio = s.zip(b).filter(|(_, b)| *b != 0.0).map(|(s, b)| s / b);
            let goal = GOALS.iter().find(|g| g.scenario == scenario && g.key == figure.key);
            rows.push(Row {
                scenario: scenario.to_owned(),
                key: figure.key.clone(),
                label: figure.label.clone(),
                unit: figure.unit.clone(),
                strangers: s,
                strangers_runs: s_runs,
                bare: b,
                bare_runs: b_runs,
                ratio,
                target: goal.map(|g| g.rule.describe()),
                met: goal.and_then(|g| s.and_then(|v| g.rule.met(v, ratio))),
            });
        }
    }
    rows
}

/// Runs whose checks failed, as lines for people.
pub fn failures(reports: &[Report]) -> Vec<String> {
    reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{} against {} ({}): {}", r.scenario, r.target, r.label, r.failures.join("; ")))
        .collect()
}

/// The rows as an aligned table, or Markdown.
pub fn render(rows: &[Row], markdown: bool) -> String {
    let cell = |v: Option<f64>| v.map_or("-".to_owned(), format_value);
    let verdict = |m: Option<bool>| match m {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    let header = ["scenario", "figure", "unit", "strangers", "bare", "ratio", "target", ""];
    let lines: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.label.clone(),
                r.unit.clone(),
                format!("{} (n={})", cell(r.strangers), r.strangers_runs),
                format!("{} (n={})", cell(r.bare), r.bare_runs),
                r.ratio.map_or("-".to_owned(), |x| format!("{x:.2}x")),
                r.target.clone().unwrap_or_default(),
                verdict(r.met).to_owned(),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for line in &lines {
            let _ = writeln!(out, "| {} |", line.join(" | "));
        }
        return out;
    }
    let mut widths = header.map(str::len);
    for line in &lines {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.len());
        }
    }
    let mut push = |cells: &[String]| {
        let text: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    push(&header.map(str::to_owned));
    for line in &lines {
        push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Better;

    fn run(scenario: &str, target: &str, key: &str, value: f64) -> Report {
        let mut r = Report::new(scenario, target, "ws://x", "", serde_json::Value::Null);
        r.figure(key, key, value, "x", Better::Higher);
        r
    }

    #[test]
    fn medians_ratios_and_targets() {
        let reports = vec![
            run("relay", "strangers", "msgs_per_server_cpu_s", 30.0),
            run("relay", "strangers", "msgs_per_server_cpu_s", 40.0),
            run("relay", "strangers", "msgs_per_server_cpu_s", 90.0),
            run("relay", "bare", "msgs_per_server_cpu_s", 50.0),
        ];
        let rows = rows(&reports);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].strangers, rows[0].bare, rows[0].ratio), (Some(40.0), Some(50.0), Some(0.8)));
        assert_eq!(rows[0].met, Some(true));
        assert!(render(&rows, false).contains("0.80x"));
        assert!(render(&rows, true).starts_with("| scenario"));
    }

    #[test]
    fn a_figure_can_name_its_baseline() {
        let mut strangers = run("idle", "strangers", "signaler_bytes_per_conn", 9_000.0);
        strangers.compare_with("signaler_bytes_per_conn", "bytes_per_conn");
        let rows = rows(&[strangers, run("idle", "bare", "bytes_per_conn", 6_000.0)]);
        assert_eq!(rows[0].ratio, Some(1.5));
        assert_eq!(rows[0].met, Some(false));
    }
}
