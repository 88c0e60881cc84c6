//! Progress bars on stderr (indicatif hides them when stderr is not a terminal), so stdout stays
//! clean for the table or the JSON.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar redraws by itself, so elapsed time moves while nothing completes.
const TICK: Duration = Duration::from_millis(200);

/// A bar of `len` steps named `prefix`; hidden when `quiet`.
pub fn bar(len: u64, prefix: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target(quiet));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:32}] {pos}/{len} {msg} ({elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar without length that counts down a phase of known duration.
pub fn timed(duration: Duration, prefix: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(duration.as_secs().max(1)), target(quiet));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:32}] {pos}/{len} s {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(prefix.to_owned());
    bar.enable_steady_tick(TICK);
    bar
}

fn target(quiet: bool) -> ProgressDrawTarget {
    if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}
