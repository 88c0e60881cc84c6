//! Helpers for the contract tests: the real services on port 0, and real WebSocket clients.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod instances;

pub mod poll;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::lifecycle::Lifecycle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The ticket secret every test stack uses.
pub const SECRET: &str = "test-ticket-secret-test-ticket-secret";
/// How long a test waits for an expected message before failing.
pub const PATIENCE: Duration = Duration::from_secs(5);
/// How long a test listens to conclude that nothing comes.
pub const QUIET: Duration = Duration::from_millis(300);

/// A matchmaker and a signaler, in this process, on free ports.
pub struct Stack {
    pub matchmaker: SocketAddr,
    pub signaler: SocketAddr,
    pub lifecycle: Lifecycle,
    tasks: Vec<JoinHandle<Result<bool, shared::Error>>>,
}

/// Default configurations with the test secret. With `TEST_REDIS_URL` set (a Redis, or with
/// `TEST_REDIS_CLUSTER=true` the nodes of a Redis Cluster, started by `test.sh`), both services use
/// it, each stack under a key prefix of its own.
pub fn configs() -> (matchmaker::Config, signaler::Config) {
    let mut mm = matchmaker::Config::default();
    mm.common.ticket_secret = Some(SECRET.into());
    let mut sig = signaler::Config::default();
    sig.common.ticket_secret = Some(SECRET.into());
    if poll::selected() {
        // Over long polling a client that stops polling has dropped after twice the hold.
        mm.common.poll_hold = Duration::from_secs(1);
        sig.common.poll_hold = Duration::from_secs(1);
    }
    if let Some(redis) = test_redis() {
        for common in [&mut mm.common, &mut sig.common] {
            common.redis_url = Some(redis.url.clone());
            common.redis_cluster = redis.cluster;
            common.redis_key_prefix = redis.prefix.clone();
        }
    }
    (mm, sig)
}

/// The Redis a test stack uses: where, whether it is a cluster, and the stack's own key prefix.
pub struct TestRedis {
    pub url: String,
    pub cluster: bool,
    pub prefix: String,
}

/// The Redis under `TEST_REDIS_URL`, with a key prefix no other stack of any test process uses.
pub fn test_redis() -> Option<TestRedis> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.is_empty())?;
    let cluster = std::env::var("TEST_REDIS_CLUSTER").is_ok_and(|v| v == "true");
    let prefix = format!("test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    Some(TestRedis { url, cluster, prefix })
}

impl Stack {
    /// Starts both services with the test configurations and no abuse limits.
    pub async fn start() -> Stack {
        let (mm, sig) = configs();
        Stack::start_with(mm, sig).await
    }

    /// Starts both services with no abuse limits: `serve` has them on, and a test of anything
    /// else opts out ([`Stack::start_with_limits`] for the tests of the limits).
    pub async fn start_with(mm: matchmaker::Config, sig: signaler::Config) -> Stack {
        Stack::start_with_limits(mm, sig, shared::limits::Limits::unlimited()).await
    }

    pub fn mm_url(&self) -> String {
        format!("ws://{}/ws", self.matchmaker)
    }

    pub fn sig_url(&self) -> String {
        format!("ws://{}/ws", self.signaler)
    }

    /// Begins shutdown and returns whether both services drained within their grace period.
    pub async fn shutdown(self) -> bool {
        self.lifecycle.begin_shutdown();
        let mut all = true;
        for task in self.tasks {
            all &= task.await.unwrap().unwrap();
        }
        all
    }
}

/// A client speaking JSON over a WebSocket, or over long polling with `TEST_TRANSPORT=poll`.
pub struct Client {
    ws: Carriage,
}

/// How a [`Client`]'s messages travel.
pub enum Carriage {
    /// A WebSocket.
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    /// A long-polling session.
    Poll(poll::PollSocket),
}

impl futures_util::Stream for Carriage {
    type Item = Result<Message, tokio_tungstenite::tungstenite::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut() {
            Carriage::Ws(ws) => ws.poll_next_unpin(cx),
            Carriage::Poll(lp) => lp.poll_next_unpin(cx),
        }
    }
}

impl Carriage {
    /// The WebSocket, for what only a WebSocket can do (binary frames, floods).
    fn socket(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        match self {
            Carriage::Ws(ws) => ws,
            Carriage::Poll(_) => panic!("this test needs a WebSocket"),
        }
    }
}

impl Client {
    /// A client over long polling, whatever `TEST_TRANSPORT` says.
    pub async fn connect_poll(url: &str) -> Client {
        Client { ws: Carriage::Poll(poll::PollSocket::open(url).await) }
    }
}

impl From<WebSocketStream<MaybeTlsStream<TcpStream>>> for Client {
    fn from(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Client { ws: Carriage::Ws(Box::new(ws)) }
    }
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        if poll::selected() {
            return Client::connect_poll(url).await;
        }
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
        Client::from(ws)
    }

    pub async fn connect_with_origin(
        url: &str,
        origin: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await.map(|(ws, _)| Client::from(ws))
    }

    /// Connects to the matchmaker and reads `ready`; returns the client and its id.
    pub async fn matchmaker(stack: &Stack) -> (Client, String) {
        let mut client = Client::connect(&stack.mm_url()).await;
        let ready = client.recv_type("ready").await;
        (client, ready["clientId"].as_str().unwrap().to_owned())
    }

    pub async fn signaler(stack: &Stack) -> Client {
        Client::connect(&stack.sig_url()).await
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        match &mut self.ws {
            Carriage::Ws(ws) => ws.send(Message::text(text)).await.expect("send"),
            Carriage::Poll(lp) => lp.post(text).await,
        }
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.socket().send(Message::binary(bytes)).await.expect("send");
    }

    /// The next JSON message (pings and pongs skipped).
    pub async fn recv(&mut self) -> Value {
        self.recv_within(PATIENCE).await
    }

    /// The next JSON message, waiting at most `patience`.
    pub async fn recv_within(&mut self, patience: Duration) -> Value {
        serde_json::from_str(&self.recv_text_within(patience).await).expect("server sent invalid JSON")
    }

    /// The next text frame exactly as sent (pings and pongs skipped).
    pub async fn recv_text(&mut self) -> String {
        self.recv_text_within(PATIENCE).await
    }

    /// The next text frame exactly as sent, waiting at most `patience`.
    pub async fn recv_text_within(&mut self, patience: Duration) -> String {
        loop {
            let frame = tokio::time::timeout(patience, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("socket ended")
                .expect("socket error");
            match frame {
                Message::Text(text) => return text.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next message, which must have this `type`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "unexpected message: {message}");
        message
    }

    /// The next message, which must be an error with this code.
    pub async fn recv_error(&mut self, code: &str) -> Value {
        let message = self.recv_type("error").await;
        assert_eq!(message["code"], code, "unexpected error: {message}");
        assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {message}");
        message
    }

    /// Asserts that no message arrives for a while.
    pub async fn expect_silence(&mut self) {
        self.expect_silence_for(QUIET).await;
    }

    /// Fails if anything but a ping or pong arrives within `quiet`.
    pub async fn expect_silence_for(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Waits for the server to close the socket and returns the close frame.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("timed out waiting for close");
            match frame {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Checks the socket still answers.
    pub async fn assert_open(&mut self) {
        self.send(json!({"type":"ping"})).await;
        self.recv_type("pong").await;
    }

    pub async fn close(mut self) {
        match &mut self.ws {
            Carriage::Ws(ws) => drop((**ws).close(None).await),
            Carriage::Poll(lp) => lp.delete().await,
        }
    }
}

/// Two matchmaker clients paired with each other: (initiator, its `matched`, responder, its `matched`).
pub struct Pair {
    pub a: Client,
    pub a_id: String,
    pub a_matched: Value,
    pub b: Client,
    pub b_id: String,
    pub b_matched: Value,
}

pub async fn pair(stack: &Stack) -> Pair {
    let (mut a, a_id) = Client::matchmaker(stack).await;
    let (mut b, b_id) = Client::matchmaker(stack).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    Pair { a, a_id, a_matched, b, b_id, b_matched }
}

/// Two connected matchmaker clients say `available` in turn (each hears `queued`) and are
/// matched with each other: their `matched` messages, first `a`'s.
pub async fn match_up(a: &mut Client, b: &mut Client) -> (Value, Value) {
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    b.send(json!({"type":"available"})).await;
    b.recv_type("queued").await;
    (a.recv_type("matched").await, b.recv_type("matched").await)
}

/// Both partners of a fresh match, joined on the signaler: (first, first's id, second, second's id).
pub async fn joined_room(stack: &Stack) -> (Client, String, Client, String, String) {
    let p = pair(stack).await;
    let room = p.a_matched["roomId"].as_str().unwrap().to_owned();
    let mut a = Client::signaler(stack).await;
    a.send(join(&p.a_matched)).await;
    a.recv_type("joined").await;
    let mut b = Client::signaler(stack).await;
    b.send(join(&p.b_matched)).await;
    b.recv_type("joined").await;
    a.recv_type("peer-joined").await;
    (a, p.a_id, b, p.b_id, room)
}

/// The `join` message for a `matched` message.
pub fn join(matched: &Value) -> Value {
    json!({"type":"join","roomId":matched["roomId"],"ticket":matched["ticket"]})
}

/// A plain HTTP/1.1 GET: (status, headers text, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_request(addr, "GET", path, &[], None).await
}

/// A plain HTTP/1.1 request with these extra headers (`Host` by default the address) and a JSON
/// body: (status, headers text, body).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE * 8, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A ticket signed with the test secret for any room and peer, valid from `iat` to `exp`.
pub fn forge_ticket(room: &str, peer: &str, iat: u64, exp: u64, secret: &str) -> String {
    let claims = json!({"sub": peer, "room": room, "aud": "signaler", "iat": iat, "nbf": iat, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn now() -> u64 {
    shared::ticket::unix_now()
}

/// Waits (up to a few seconds) until `/metrics` of `addr` contains `line`.
pub async fn wait_for_metric(addr: SocketAddr, line: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    loop {
        let (_, _, metrics) = http_get(addr, "/metrics").await;
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never saw {line:?} in\n{metrics}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Stack {
    /// Starts both services with these abuse limits (the same on each). The matchmaker's
    /// signaling URL points at this signaler unless the configuration keeps its `{host}`
    /// template on purpose.
    pub async fn start_with_limits(
        mut mm: matchmaker::Config,
        mut sig: signaler::Config,
        limits: shared::limits::Limits,
    ) -> Stack {
        mm.limits = limits.clone();
        sig.limits = limits;
        let lifecycle = Lifecycle::new();
        let sig_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mm_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let signaler = sig_listener.local_addr().unwrap();
        let matchmaker = mm_listener.local_addr().unwrap();
        mm.signaling_url = mm.signaling_url.replace(":8081", &format!(":{}", signaler.port()));
        let tasks = vec![
            tokio::spawn(signaler::serve(sig, sig_listener, lifecycle.clone())),
            tokio::spawn(matchmaker::serve(mm, mm_listener, lifecycle.clone())),
        ];
        Stack { matchmaker, signaler, lifecycle, tasks }
    }
}

impl Client {
    /// Connects with extra request headers (`X-Forwarded-For`, say). A refused upgrade is
    /// `Err(Error::Http(response))` with the status.
    pub async fn connect_with_headers(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request.headers_mut().append(name, value.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await.map(|(ws, _)| Client::from(ws))
    }

    /// The next JSON message, or how the socket ended: `Err(Some(frame))` for a close frame,
    /// `Err(None)` for a socket that just ended.
    pub async fn recv_or_end(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("timed out waiting for a message");
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).expect("invalid JSON")),
                Some(Ok(Message::Close(frame))) => return Err(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Sends a frame without waiting for the socket to flush it (for floods).
    pub async fn feed_text(&mut self, text: &str) {
        let _ = self.ws.socket().feed(Message::text(text)).await;
    }

    /// Flushes what [`feed_text`](Self::feed_text) queued.
    pub async fn flush(&mut self) {
        let _ = self.ws.socket().flush().await;
    }
}

/// The HTTP status a WebSocket upgrade to `url` with these headers gets: 101 when accepted
/// (the socket is then closed), else the refusal's status.
pub async fn upgrade_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    upgrade_answer(url, headers).await.0
}

/// The status and `Retry-After` of a WebSocket upgrade to `url` with these headers (101 and none
/// when accepted; the socket is then closed).
pub async fn upgrade_answer(url: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    match Client::connect_with_headers(url, headers).await {
        Ok(client) => {
            client.close().await;
            (101, None)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (response.status().as_u16(), retry_after)
        }
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

/// A sample's value in `/metrics` text: `metric_value(text, "signaler_connections")`.
pub fn metric_value(metrics: &str, sample: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == sample).then(|| value.parse().ok()).flatten()
    })
}

/// Waits (up to [`PATIENCE`]) until a `/metrics` sample of `addr` satisfies `check`; returns
/// its last value.
pub async fn wait_for_metric_value(addr: SocketAddr, sample: &str, check: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, _, metrics) = http_get(addr, "/metrics").await;
        let value = metric_value(&metrics, sample);
        if let Some(value) = value.filter(|v| check(*v)) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sample} stayed at {value:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The all-in-one binary (`strangers`) in its own process, so that its memory is its own.
/// Killed when dropped.
pub struct Runner {
    child: std::process::Child,
    pub matchmaker: SocketAddr,
    pub signaler: SocketAddr,
}

impl Runner {
    /// Starts the runner on free loopback ports with `env` added to a clean environment.
    pub fn start(env: &[(&str, &str)]) -> Runner {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_strangers"));
        command.env_clear().env("HOST", "127.0.0.1").env("PORT", "0").env("SIGNALER_PORT", "0");
        command.env("RUST_LOG", "error");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the runner");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut matchmaker, mut signaler) = (None, None);
        while matchmaker.is_none() || signaler.is_none() {
            let line = rx.recv_timeout(Duration::from_secs(10)).expect("the runner printed no addresses");
            if let Some(addr) = line.strip_prefix("matchmaker listening on ") {
                matchmaker = addr.trim().parse().ok();
            } else if let Some(addr) = line.strip_prefix("signaler listening on ") {
                signaler = addr.trim().parse().ok();
            }
        }
        Runner { child, matchmaker: matchmaker.unwrap(), signaler: signaler.unwrap() }
    }

    pub fn mm_url(&self) -> String {
        format!("ws://{}/ws", self.matchmaker)
    }

    pub fn sig_url(&self) -> String {
        format!("ws://{}/ws", self.signaler)
    }

    /// The process's resident memory in bytes, as its `/metrics` reports it.
    pub async fn resident_memory(&self) -> u64 {
        let (_, _, metrics) = http_get(self.signaler, "/metrics").await;
        metric_value(&metrics, "signaler_process_resident_memory_bytes").expect("resident memory in /metrics") as u64
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latency samples, summarised for printing.
#[derive(Debug, Default, Clone)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    /// The sample at quantile `q` (0.0..=1.0).
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "n={} median={:.2} ms p95={:.2} ms max={:.2} ms",
            self.0.len(),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.95)),
            ms(self.quantile(1.0))
        )
    }
}

impl Client {
    /// The socket itself, for tests that read and write it from separate tasks.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        match self.ws {
            Carriage::Ws(ws) => *ws,
            Carriage::Poll(_) => panic!("this test needs a WebSocket"),
        }
    }

    /// Sends a ping and waits for its pong, skipping whatever else arrives first; returns the
    /// round trip.
    pub async fn ping_pong(&mut self) -> Duration {
        let started = std::time::Instant::now();
        self.send(json!({"type":"ping"})).await;
        while self.recv().await["type"] != "pong" {}
        started.elapsed()
    }
}

/// One-way delivery time of a relayed offer from `a` to `b` (both joined in one room).
pub async fn relay_latency(a: &mut Client, b: &mut Client, n: usize) -> Duration {
    let started = std::time::Instant::now();
    a.send(json!({"type":"offer","sdp":format!("probe {n}")})).await;
    let got = b.recv_type("offer").await;
    assert_eq!(got["sdp"], format!("probe {n}"), "relayed out of order or lost");
    started.elapsed()
}

/// Relay latencies of a joined pair, one sample every 50 ms (well within the default message
/// rate), for `duration`.
pub async fn sample_relay(a: &mut Client, b: &mut Client, duration: Duration) -> Latencies {
    let mut samples = Latencies::default();
    let deadline = std::time::Instant::now() + duration;
    let mut n = 0;
    while std::time::Instant::now() < deadline {
        samples.push(relay_latency(a, b, n).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples
}

impl Runner {
    /// A pair matched on the runner's matchmaker and joined on its signaler; each client
    /// connects as `from` names it (`X-Forwarded-For`; the runner trusts loopback proxies).
    pub async fn room(&self, from: [&str; 2]) -> (Client, Client) {
        let mut matched = Vec::new();
        let mut clients = Vec::new();
        for address in from {
            let mut client =
                Client::connect_with_headers(&self.mm_url(), &[("x-forwarded-for", address)]).await.unwrap();
            client.recv_type("ready").await;
            clients.push(client);
        }
        for client in &mut clients {
            client.send(json!({"type":"available"})).await;
            client.recv_type("queued").await;
        }
        for client in &mut clients {
            matched.push(client.recv_type("matched").await);
        }
        let mut a = Client::connect_with_headers(&self.sig_url(), &[("x-forwarded-for", from[0])]).await.unwrap();
        a.send(join(&matched[0])).await;
        a.recv_type("joined").await;
        let mut b = Client::connect_with_headers(&self.sig_url(), &[("x-forwarded-for", from[1])]).await.unwrap();
        b.send(join(&matched[1])).await;
        b.recv_type("joined").await;
        a.recv_type("peer-joined").await;
        (a, b)
    }
}
