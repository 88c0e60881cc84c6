//! `bare-relay`: the benchmark baseline (see `loadgen::bare_relay`), listening until SIGINT/SIGTERM.

/// mimalloc: a relayed message allocates and frees a few small buffers on every hop, and the
/// Redis build's inbox batches are large; the system allocator spends measurably more on both.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// Default listening address: loopback, next to the services' 8080/8081.
const DEFAULT_LISTEN: &str = "127.0.0.1:9090";

/// Pairs WebSocket clients in arrival order and forwards their frames unparsed.
#[derive(Debug, Parser)]
#[command(name = "bare-relay", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let limit = loadgen::limits::raise_file_limit();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("bare-relay: cannot listen on {}: {err}", args.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    println!("bare relay listening on {addr} (open-file limit {limit})");
    tokio::select! {
        () = loadgen::bare_relay::serve(listener) => {}
        () = termination() => {}
    }
    ExitCode::SUCCESS
}

/// SIGINT or SIGTERM.
async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
