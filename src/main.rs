//! `strangers`: the matchmaker and the signaler in one process, for development and demos.
//!
//! Same settings as the services, except that `PORT` is the matchmaker's (default 8080) and
//! `SIGNALER_PORT` the signaler's (default 8081); without `ROOM_TICKET_SECRET` a random one is
//! made up for the two, and without `SIGNALING_URL` clients are sent to this signaler.

/// mimalloc: a relayed message allocates and frees a few small buffers on every hop, and the
/// Redis build's inbox batches are large; the system allocator spends measurably more on both.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use shared::config::{config_error, parse_vars};
use shared::lifecycle::Lifecycle;
use shared::process::bind;

#[derive(serde::Deserialize)]
struct RunnerVars {
    signaler_port: Option<u16>,
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::process::run("strangers", |vars, lifecycle| async move {
        let mut vars = vars;
        if !vars.iter().any(|(k, v)| k == "ROOM_TICKET_SECRET" && !v.trim().is_empty()) {
            // Both services live in this process, so a secret nobody else knows is enough.
            let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            vars.push(("ROOM_TICKET_SECRET".to_owned(), secret));
        }
        let runner: RunnerVars = parse_vars(vars.clone())?;
        let mut matchmaker_config = matchmaker::Config::from_vars(vars.clone())?;
        let signaler_config = signaler::Config::from_vars(vars.clone())?;

        let signaler_port = runner.signaler_port.unwrap_or(signaler::DEFAULT_PORT);
        let signaler_listener = bind(signaler_config.common.host, signaler_port, "SIGNALER_PORT").await?;
        let matchmaker_listener = bind(matchmaker_config.common.host, matchmaker_config.port(), "PORT").await?;
        let signaler_port = signaler_listener.local_addr()?.port();
        let matchmaker_port = matchmaker_listener.local_addr()?.port();
        if !vars.iter().any(|(k, v)| k == "SIGNALING_URL" && !v.trim().is_empty()) {
            matchmaker_config.signaling_url = format!("ws://{{host}}:{signaler_port}/ws");
        }
        if signaler_port == matchmaker_port {
            return Err(config_error("SIGNALER_PORT", "must differ from PORT"));
        }

        println!("matchmaker listening on {}", matchmaker_listener.local_addr()?);
        println!("signaler listening on {}", signaler_listener.local_addr()?);
        println!("open http://localhost:{matchmaker_port}/ in two browser tabs to try it");

        let both = Lifecycle::clone(&lifecycle);
        let signaler = tokio::spawn(signaler::serve(signaler_config, signaler_listener, lifecycle.clone()));
        let matchmaker = matchmaker::serve(matchmaker_config, matchmaker_listener, lifecycle).await;
        // If the matchmaker stopped for any reason, stop the signaler too.
        both.begin_shutdown();
        let signaler = signaler.await.unwrap_or(Ok(false));
        Ok(matchmaker? && signaler?)
    })
    .await
}
