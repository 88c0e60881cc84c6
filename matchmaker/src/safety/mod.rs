//! Block, report and ban around the rules ([`rules::matchmaking::safety`]): their settings,
//! and the operator's routes under `/admin` ([`admin`]).

pub mod admin;

use rules::matchmaking::safety::SafetySettings;
use serde::Deserialize;
use shared::config::{config_error, in_range, parse_vars, warn_if_weak};
use shared::Error;

/// Default `BLOCK_TTL_SECS`: how long a block between two authenticated users holds (7 days).
pub const DEFAULT_BLOCK_TTL_SECS: u64 = 7 * 24 * 3_600;
/// Default `REPORT_THRESHOLD`: different reporters (client addresses) that bring a ban.
pub const DEFAULT_REPORT_THRESHOLD: u64 = 3;
/// Default `REPORT_WINDOW_SECS`: within how long those reports must come.
pub const DEFAULT_REPORT_WINDOW_SECS: u64 = 3_600;
/// Default `BAN_SECS`: how long a ban by reports lasts.
pub const DEFAULT_BAN_SECS: u64 = 3_600;
/// Longest block, report window or ban a setting may ask for: a year.
pub const MAX_SAFETY_SECS: u64 = 365 * 24 * 3_600;
/// Most reporters a threshold may ask for.
pub const MAX_REPORT_THRESHOLD: u64 = 1_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Vars {
    block_ttl_secs: Option<u64>,
    report_threshold: Option<u64>,
    report_window_secs: Option<u64>,
    ban_secs: Option<u64>,
    admin_token: Option<String>,
}

/// The safety settings: the rules' and the operator's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyConfig {
    /// What the rules run with.
    pub rules: SafetySettings,
    /// `ADMIN_TOKEN`: with it, the `/admin` routes answer to `Authorization: Bearer <token>`;
    /// without it they answer 404.
    pub admin_token: Option<String>,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            rules: settings(
                DEFAULT_BLOCK_TTL_SECS,
                DEFAULT_REPORT_THRESHOLD,
                DEFAULT_REPORT_WINDOW_SECS,
                DEFAULT_BAN_SECS,
            ),
            admin_token: None,
        }
    }
}

impl SafetyConfig {
    /// Reads `BLOCK_TTL_SECS`, `REPORT_THRESHOLD`, `REPORT_WINDOW_SECS`, `BAN_SECS` and
    /// `ADMIN_TOKEN`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad variable.
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, Error> {
        let raw: Vars = parse_vars(vars)?;
        let block =
            in_range("BLOCK_TTL_SECS", raw.block_ttl_secs.unwrap_or(DEFAULT_BLOCK_TTL_SECS), 0..=MAX_SAFETY_SECS)?;
        let threshold = in_range(
            "REPORT_THRESHOLD",
            raw.report_threshold.unwrap_or(DEFAULT_REPORT_THRESHOLD),
            1..=MAX_REPORT_THRESHOLD,
        )?;
        let window = in_range(
            "REPORT_WINDOW_SECS",
            raw.report_window_secs.unwrap_or(DEFAULT_REPORT_WINDOW_SECS),
            1..=MAX_SAFETY_SECS,
        )?;
        let ban = in_range("BAN_SECS", raw.ban_secs.unwrap_or(DEFAULT_BAN_SECS), 1..=MAX_SAFETY_SECS)?;
        if let Some(token) = &raw.admin_token {
            if token.trim() != token || token.contains(char::is_whitespace) {
                return Err(config_error("ADMIN_TOKEN", "must not contain spaces"));
            }
            warn_if_weak("ADMIN_TOKEN", token);
        }
        Ok(SafetyConfig { rules: settings(block, threshold, window, ban), admin_token: raw.admin_token })
    }
}

fn settings(block_ttl_secs: u64, threshold: u64, window_secs: u64, ban_secs: u64) -> SafetySettings {
    SafetySettings {
        block_ttl: block_ttl_secs * 1_000,
        report_threshold: usize::try_from(threshold).unwrap_or(usize::MAX),
        report_window: window_secs * 1_000,
        ban: ban_secs * 1_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        let config = SafetyConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(config.rules, SafetySettings::default());
        assert_eq!(config.admin_token, None);
    }

    #[test]
    fn bad_settings_are_named() {
        for (name, value) in [
            ("REPORT_THRESHOLD", "0"),
            ("REPORT_WINDOW_SECS", "0"),
            ("BAN_SECS", "forever"),
            ("BLOCK_TTL_SECS", "99999999999"),
            ("ADMIN_TOKEN", "two words"),
        ] {
            let err = SafetyConfig::from_vars(vars(&[(name, value)])).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }
}
