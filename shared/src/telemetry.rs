//! Structured logs with `tracing`, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::config_error;
use crate::error::Error;

/// Installs the global log subscriber. Later calls in the same process do nothing.
///
/// # Errors
/// [`Error::Config`] naming `RUST_LOG` when its value is not a valid filter.
pub fn init() -> Result<(), Error> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::builder().parse(&value).map_err(|err| config_error("RUST_LOG", err))?
        }
        _ => EnvFilter::new("info"),
    };
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
    Ok(())
}
