//! Every scenario, at a small size, against the real services (in this process, on free ports)
//! and against the bare relay: the load generator's own correctness checks must pass, and its
//! reports must be readable by `compare`. Timings are reported, never asserted.

use std::net::SocketAddr;
use std::path::Path;

use loadgen::report::Report;
use shared::lifecycle::Lifecycle;
use shared::limits::Limits;
use tokio::net::TcpListener;

const SECRET: &str = "loadgen-test-secret-loadgen-test-secret";

/// The services and the bare relay, each on a free loopback port.
struct Servers {
    matchmaker: SocketAddr,
    bare: SocketAddr,
    lifecycle: Lifecycle,
}

async fn start() -> Servers {
    let lifecycle = Lifecycle::new();
    let sig_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mm_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (signaler, matchmaker, bare) =
        (sig_listener.local_addr().unwrap(), mm_listener.local_addr().unwrap(), bare_listener.local_addr().unwrap());
    let mut mm = matchmaker::Config::default();
    mm.common.ticket_secret = Some(SECRET.into());
    mm.signaling_url = format!("ws://127.0.0.1:{}/ws", signaler.port());
    let mut sig = signaler::Config::default();
    sig.common.ticket_secret = Some(SECRET.into());
    // Load is all these tests send: the abuse limits, on by default, would refuse it.
    mm.limits = Limits::unlimited();
    sig.limits = Limits::unlimited();
    tokio::spawn(signaler::serve(sig, sig_listener, lifecycle.clone()));
    tokio::spawn(matchmaker::serve(mm, mm_listener, lifecycle.clone()));
    tokio::spawn(loadgen::bare_relay::serve(bare_listener));
    Servers { matchmaker, bare, lifecycle }
}

impl Servers {
    /// Runs `loadgen SCENARIO ARGS --json` against the services, or the bare relay.
    async fn run(&self, scenario: &str, bare: bool, args: &[&str]) -> Report {
        let target = if bare {
            vec!["--bare".to_owned(), format!("--bare-url=ws://{}/ws", self.bare)]
        } else {
            vec![format!("--matchmaker=ws://{}/ws", self.matchmaker)]
        };
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .arg(scenario)
            .args(target)
            .args(args)
            .args(["--json", "--step-timeout=5"])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Report = serde_json::from_str(&stdout).unwrap_or_else(|err| {
            panic!("{scenario}: no report ({err}); stderr: {}", String::from_utf8_lossy(&output.stderr))
        });
        assert!(report.passed, "{scenario} against {}: {:?} {:?}", report.target, report.failures, report.errors);
        assert_eq!(output.status.code(), Some(0));
        report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_pairs_everyone_exactly_once_on_both_targets() {
    let servers = start().await;
    for bare in [false, true] {
        let report = servers.run("pairing", bare, &["--clients=300"]).await;
        assert!(report.value("pairs_per_s").is_some_and(|v| v > 0.0));
        assert!(report.value("ttm_p99_ms").is_some());
        // The servers live in this process: its CPU time is what the run cost them.
        assert!(report.value("pairs_per_server_cpu_s").is_some());
    }
    servers.lifecycle.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_delivers_every_signal_intact_and_in_order_on_both_targets() {
    let servers = start().await;
    for bare in [false, true] {
        let report = servers.run("relay", bare, &["--pairs=10", "--duration=1", "--window=4"]).await;
        assert!(report.value("messages").is_some_and(|v| v > 0.0));
        assert!(report.value("rtt_p999_ms").is_some());
    }
    servers.lifecycle.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_complete_on_both_targets() {
    let servers = start().await;
    for bare in [false, true] {
        let args = ["--users=20", "--duration=3", "--chat-min-ms=200", "--chat-max-ms=400", "--next-percent=50"];
        let report = servers.run("session", bare, &args).await;
        assert!(report.value("sessions").is_some_and(|v| v > 0.0));
    }
    servers.lifecycle.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_held_by_helper_processes_while_new_ones_still_pair() {
    let servers = start().await;
    // Two helper processes, so the sharding path runs too.
    let args = ["--clients=200", "--processes=2", "--settle=0", "--check-pairs=2", "--hold=30"];
    let report = servers.run("idle", false, &args).await;
    assert_eq!(report.value("entry_connections"), Some(200.0));
    assert_eq!(report.value("signaler_connections"), Some(200.0));
    assert!(report.value("process_bytes_per_conn").is_some(), "{:?}", report.figures);
    let bare = servers.run("idle", true, &args).await;
    assert_eq!(bare.value("entry_connections"), Some(200.0));

    let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [("strangers", &report), ("bare", &bare)].map(|(name, r)| {
        let path = dir.join(format!("idle-{name}.json"));
        std::fs::write(&path, r.to_json()).unwrap();
        path
    });
    let table = compare(&files).await;
    assert!(table.contains("memory per idle connection"), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
    servers.lifecycle.begin_shutdown();
}

async fn compare(files: &[impl AsRef<Path>]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("compare")
        .args(files.iter().map(|f| f.as_ref()))
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}
