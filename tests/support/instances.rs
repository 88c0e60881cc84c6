//! Real `redis-server`s (one, or the three masters of a cluster) and real processes of the
//! runner (each one matchmaker and one signaler), for the tests of several instances.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{http_get, Client};

/// One `redis-server` of the test's own, on a free port, persisting to a temporary directory
/// with an append-only file, so that a restart keeps its data as a production Redis does.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub cluster: bool,
    pub child: Option<Child>,
}

impl Server {
    pub fn start(cluster: bool) -> Server {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("strangers-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Server { port, dir, cluster, child: None };
        server.launch();
        server
    }

    pub fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"]);
        if self.cluster {
            command.args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]);
        }
        let child = command
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (./test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Redis the instances share: one server, or the three masters of a cluster.
pub struct Redis {
    pub servers: Vec<Server>,
}

impl Redis {
    pub fn single() -> Redis {
        Redis { servers: vec![Server::start(false)] }
    }

    /// Three masters, every slot assigned, the cluster reporting `ok`.
    pub fn cluster() -> Redis {
        let servers: Vec<Server> = (0..3).map(|_| Server::start(true)).collect();
        let nodes: Vec<String> = servers.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli must be installed (it comes with redis-server)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &servers[0].port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        Redis { servers }
    }

    pub fn is_cluster(&self) -> bool {
        self.servers.len() > 1
    }

    pub fn url(&self) -> String {
        let urls: Vec<String> = self.servers.iter().map(|s| format!("redis://127.0.0.1:{}", s.port)).collect();
        urls.join(",")
    }

    pub fn stop(&mut self) {
        self.servers.iter_mut().for_each(Server::stop);
    }

    pub fn launch(&mut self) {
        self.servers.iter_mut().for_each(Server::launch);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One process of the runner: a matchmaker and a signaler instance.
pub struct Instance {
    pub child: Child,
    pub matchmaker: SocketAddr,
    pub signaler: SocketAddr,
}

/// How long a dropped client keeps its place in these tests (`RESUME_GRACE_SECS`).
pub const GRACE: Duration = Duration::from_secs(2);

impl Instance {
    pub fn start(redis: &Redis) -> Instance {
        Instance::start_with(redis, &[])
    }

    /// Starts an instance with extra settings.
    pub fn start_with(redis: &Redis, env: &[(&str, &str)]) -> Instance {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strangers"));
        command.env_clear();
        let mut child = command
            .env("PORT", "0")
            .env("SIGNALER_PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("REDIS_URL", redis.url())
            .env("REDIS_CLUSTER", redis.is_cluster().to_string())
            .env("ROOM_TICKET_SECRET", super::SECRET)
            .env("RUST_LOG", std::env::var("TEST_INSTANCE_LOG").unwrap_or_else(|_| "warn".into()))
            // This test relays hundreds of messages at once; honest browsers send far fewer.
            .env("MESSAGE_BURST", "10000")
            .env("RESUME_GRACE_SECS", GRACE.as_secs().to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_INSTANCE_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut matchmaker, mut signaler) = (None, None);
        while matchmaker.is_none() || signaler.is_none() {
            let line = lines.next().expect("the runner exited").unwrap();
            if let Some(addr) = line.strip_prefix("matchmaker listening on ") {
                matchmaker = Some(addr.parse().unwrap());
            }
            if let Some(addr) = line.strip_prefix("signaler listening on ") {
                signaler = Some(addr.parse().unwrap());
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        let show = std::env::var_os("TEST_INSTANCE_LOG").is_some();
        std::thread::spawn(move || lines.map_while(Result::ok).filter(|_| show).for_each(|line| eprintln!("{line}")));
        Instance { child, matchmaker: matchmaker.unwrap(), signaler: signaler.unwrap() }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.matchmaker)
    }

    pub fn signaler_url(&self) -> String {
        format!("ws://{}/ws", self.signaler)
    }

    /// SIGTERM: the instance drains and exits.
    pub fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no cleanup of any kind
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn connect(url: &str) -> (Client, String) {
    let mut client = Client::connect(url).await;
    let ready = client.recv_type("ready").await;
    (client, ready["clientId"].as_str().unwrap().to_owned())
}

pub async fn stats(addr: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&http_get(addr, "/api/stats").await.2).unwrap()
}

/// Retries `available` until the service answers `queued` (it says `unavailable` meanwhile).
pub async fn available_when_back(client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        client.send(json!({"type":"available"})).await;
        let reply = client.recv().await;
        if reply["type"] == "queued" {
            return;
        }
        assert_eq!(reply["code"], "unavailable", "{reply}");
        assert!(Instant::now() < deadline, "the service did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a scenario on one Redis and on a Redis Cluster, each its own test.
macro_rules! on_both {
    ($scenario:ident, $single:ident, $cluster:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $single() {
            $scenario(Redis::single()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $cluster() {
            $scenario(Redis::cluster()).await;
        }
    };
}

/// Starts an instance and waits until it is ready (so instances started in turn take the
/// queue's lease in that order).
pub async fn start_ready(redis: &Redis) -> Instance {
    start_ready_with(redis, Instance::start).await
}

/// Starts an instance with `start` and waits until it is ready.
pub async fn start_ready_with(redis: &Redis, start: impl FnOnce(&Redis) -> Instance) -> Instance {
    let instance = start(redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(instance.matchmaker, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "the instance did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    instance
}

pub(crate) use on_both;
