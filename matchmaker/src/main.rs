//! `matchmaker`: the matchmaker service on its own.

/// mimalloc: a relayed message allocates and frees a few small buffers on every hop, and the
/// Redis build's inbox batches are large; the system allocator spends measurably more on both.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use matchmaker::Config;

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = shared::healthcheck::run_if_asked(matchmaker::config::DEFAULT_PORT) {
        return code;
    }
    shared::process::run("matchmaker", |vars, lifecycle| async move {
        let config = Config::from_vars(vars)?;
        config.common.require_ticket_secret()?;
        let listener = shared::process::bind(config.common.host, config.port(), "PORT").await?;
        tracing::info!(address = %listener.local_addr()?, "matchmaker listening");
        matchmaker::serve(config, listener, lifecycle).await
    })
    .await
}
