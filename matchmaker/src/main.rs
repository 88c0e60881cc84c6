//! `matchmaker`: the matchmaker service on its own.

use std::process::ExitCode;

use matchmaker::Config;

#[tokio::main]
async fn main() -> ExitCode {
    shared::process::run("matchmaker", |vars, lifecycle| async move {
        let config = Config::from_vars(vars)?;
        config.common.require_ticket_secret()?;
        let listener = shared::process::bind(config.common.host, config.port(), "PORT").await?;
        tracing::info!(address = %listener.local_addr()?, "matchmaker listening");
        matchmaker::serve(config, listener, lifecycle).await
    })
    .await
}
