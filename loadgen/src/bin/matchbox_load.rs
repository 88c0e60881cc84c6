//! `matchbox-load`: the same load against any server that speaks matchbox's signaling protocol
//! (our signaler's `/matchbox/{room}`, or matchbox's own server at `/{room}`), so the two can be
//! compared: P pairs (`?next=2`) play ping-pong with ICE-candidate-sized signals for a while
//! (relayed messages per server CPU-second), then N idle peers are held (resident memory per
//! idle connection). Loopback targets only; every phase is bounded in time.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one step (a connect, an answer) may take.
const STEP: Duration = Duration::from_secs(10);
/// A signal's `data`: an ICE candidate as matchbox_socket sends it (about 200 bytes on the wire).
const CANDIDATE: &str = r#"{"IceCandidate":"{\"candidate\":\"candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0 ufrag abcd network-cost 999\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"}"#;

#[derive(Debug, Parser)]
#[command(name = "matchbox-load", version)]
struct Args {
    /// A room URL without query: `ws://127.0.0.1:8081/matchbox/bench` or `ws://127.0.0.1:3536/bench`.
    #[arg(long)]
    room: String,
    /// Pid of the server (its CPU time and memory are read from /proc).
    #[arg(long)]
    pid: u32,
    /// Pairs playing ping-pong.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Seconds of ping-pong.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Idle peers held for the memory figure.
    #[arg(long, default_value_t = 2_000)]
    idle: usize,
}

async fn connect(url: &str) -> Result<(Ws, String), String> {
    let (mut ws, _) = timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|err| format!("connect: {err}"))?;
    let first = next_json(&mut ws).await?;
    let id = first["IdAssigned"].as_str().ok_or_else(|| format!("expected IdAssigned, got {first}"))?.to_owned();
    Ok((ws, id))
}

async fn next_json(ws: &mut Ws) -> Result<Value, String> {
    loop {
        match timeout(STEP, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(text.as_str()).map_err(|e| e.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("socket ended: {other:?}")),
        }
    }
}

/// One pair: `a` arrives, then `b`; `a` hears `NewPeer(b)`.
async fn pair(url: &str) -> Result<(Ws, String, Ws, String), String> {
    let (mut a, a_id) = connect(url).await?;
    let (b, b_id) = connect(url).await?;
    let new = next_json(&mut a).await?;
    if new["NewPeer"] != b_id.as_str() {
        return Err(format!("expected NewPeer {b_id}, got {new}"));
    }
    Ok((a, a_id, b, b_id))
}

fn signal(to: &str) -> String {
    format!(r#"{{"Signal":{{"receiver":"{to}","data":{CANDIDATE}}}}}"#)
}

/// Ping-pong until `stop`: returns the signals relayed.
async fn play(mut a: Ws, a_id: String, mut b: Ws, b_id: String, stop: Instant) -> Result<u64, String> {
    let (to_b, to_a) = (signal(&b_id), signal(&a_id));
    let mut relayed = 0;
    while Instant::now() < stop {
        a.send(Message::text(to_b.clone())).await.map_err(|e| e.to_string())?;
        let got = next_json(&mut b).await?;
        if got["Signal"]["sender"] != a_id.as_str() {
            return Err(format!("b got {got}"));
        }
        b.send(Message::text(to_a.clone())).await.map_err(|e| e.to_string())?;
        next_json(&mut a).await?;
        relayed += 2;
    }
    Ok(relayed)
}

fn cpu(pid: u32) -> Result<f64, String> {
    loadgen::procfs::cpu_seconds(pid).ok_or_else(|| format!("cannot read /proc/{pid}"))
}

fn rss(pid: u32) -> Result<u64, String> {
    loadgen::procfs::rss_bytes(pid).ok_or_else(|| format!("cannot read /proc/{pid}"))
}

async fn run(args: Args) -> Result<(), String> {
    let host = args.room.split("://").nth(1).unwrap_or_default();
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err("only loopback targets".into());
    }
    let pool = format!("{}-relay?next=2", args.room);
    let mut pairs = Vec::new();
    for _ in 0..args.pairs {
        pairs.push(pair(&pool).await?);
    }
    let stop = Instant::now() + Duration::from_secs(args.secs);
    let cpu_before = cpu(args.pid)?;
    let started = Instant::now();
    let games: Vec<_> = pairs.into_iter().map(|(a, ai, b, bi)| tokio::spawn(play(a, ai, b, bi, stop))).collect();
    let mut relayed = 0;
    for game in games {
        relayed += game.await.map_err(|e| e.to_string())??;
    }
    let (elapsed, cpu_used) = (started.elapsed().as_secs_f64(), cpu(args.pid)? - cpu_before);
    println!("relay: {} pairs, {relayed} signals in {elapsed:.1} s: {:.0}/s", args.pairs, relayed as f64 / elapsed);
    println!(
        "relay: server CPU {cpu_used:.2} s: {:.0} relayed signals per server CPU-second",
        relayed as f64 / cpu_used
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss(args.pid)?;
    let idle_pool = format!("{}-idle?next=2", args.room);
    let mut held = Vec::new();
    for _ in 0..args.idle / 2 {
        held.push(pair(&idle_pool).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(args.pid)?;
    let per = after.saturating_sub(before) as f64 / (held.len() * 2) as f64;
    println!(
        "idle: {} peers held: resident memory {before} -> {after} bytes: {per:.0} bytes per idle connection",
        held.len() * 2
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    loadgen::limits::raise_file_limit();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("matchbox-load: {err}");
            ExitCode::FAILURE
        }
    }
}
