//! The queue shared by every instance through Redis. One instance at a time owns the rules (a
//! lease with a fencing token, renewed every heartbeat, taken over within a few seconds when
//! its holder dies); the others forward their sockets' inputs to it, and it sends each instance
//! what that instance's sockets must hear. No rule is written here: the owner runs
//! [`rules::matchmaking`], exactly as the in-memory build does.
//!
//! Layout: [`keys`] (what lives where in Redis), [`task`] (owner or follower), [`events`]
//! (this instance's deliveries from the owner), [`safety`] (reports, bans and blocks kept).

pub mod events;
pub mod keys;
pub mod safety;
pub mod task;

use std::sync::{Arc, Mutex};

use redis::AsyncCommands;
use rules::matchmaking::Output;
use rules::HomeId;
use shared::lifecycle::Lifecycle;
use shared::redis::lease::Lease;
use shared::redis::liveness::{Health, Liveness};
use shared::redis::{RedisLink, COMMAND_TIMEOUT};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::keys::{Keys, TAG};
use crate::config::Config;
use crate::delivery::Signaling;
use crate::queue::shell::Shell;
use crate::queue::{Command, QueueHandle, Stats};

/// The running Redis side of one matchmaker instance.
pub struct Backend {
    link: RedisLink,
    keys: Keys,
    home: HomeId,
    liveness: Liveness,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Connects to Redis and starts this instance's queue task, its deliveries and its heartbeat.
///
/// # Errors
/// [`shared::Error::Config`] naming `REDIS_URL` when Redis stays unreachable.
pub async fn start(
    config: &Config,
    home: HomeId,
    shell: Shell,
    queue: QueueHandle,
    commands: mpsc::Receiver<Command>,
    lifecycle: &Lifecycle,
) -> Result<Backend, shared::Error> {
    let url = config.common.redis_url.as_deref().unwrap_or_default();
    let link = RedisLink::connect(url, config.common.redis_cluster, &config.common.redis_key_prefix).await?;
    let keys = Keys::new(&link);
    let health = Health::new(lifecycle);
    let liveness = Liveness::new(&link, TAG, home);
    let stop = CancellationToken::new();
    let mut conn = link.conn();
    let registered: redis::RedisResult<()> = async {
        liveness.beat(&mut conn).await?;
        conn.hset::<_, _, _, ()>(&keys.signaling, home.to_string(), &config.signaling_url).await
    }
    .await;
    if let Err(err) = registered {
        return Err(shared::config::config_error("REDIS_URL", format!("cannot register with Redis: {err}")));
    }
    liveness.spawn_heartbeat(health.clone(), stop.clone());
    events::spawn(
        link.clone(),
        keys.events(home),
        events::Events {
            locals: shell.locals.clone(),
            delivery: shell.delivery.clone(),
            figures: shell.figures.clone(),
            queue,
            signaling_key: keys.signaling.clone(),
        },
        health.clone(),
        stop.clone(),
    );
    let settings = shell.core_settings();
    let task = task::QueueTask {
        shell,
        settings,
        commands,
        link: link.clone(),
        keys: keys.clone(),
        lease: Lease::new(keys.lease.clone(), keys.fence.clone(), home.to_string()),
        liveness: liveness.clone(),
        health,
        stop: stop.clone(),
        stats: Arc::new(Mutex::new(Stats::default())),
    };
    let task = tokio::spawn(task.run());
    Ok(Backend { link, keys, home, liveness, stop, task })
}

impl Backend {
    /// Stops: the queue task applies what is left and gives the lease back, then this instance
    /// leaves the list of the living.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(COMMAND_TIMEOUT * 2, self.task).await;
        let mut conn = self.link.conn();
        self.liveness.leave(&mut conn).await;
        let _: Result<redis::RedisResult<()>, _> =
            tokio::time::timeout(COMMAND_TIMEOUT, conn.hdel(&self.keys.signaling, self.home.to_string())).await;
    }
}

/// Looks up the signaling templates of instances that `outputs` send clients to and that this
/// instance has not heard of yet (one that started since the last heartbeat). A rare read,
/// made before those outputs are delivered; if Redis does not answer, the clients are sent to
/// this instance's own signaler, which works too (their signals then cross Redis once).
pub(crate) async fn learn_templates(link: &RedisLink, key: &str, signaling: &Signaling, outputs: &[Output]) {
    let unknown = signaling.unknown_in(outputs);
    if unknown.is_empty() {
        return;
    }
    let fields: Vec<String> = unknown.iter().map(ToString::to_string).collect();
    let mut conn = link.conn();
    let found: Result<redis::RedisResult<Vec<Option<String>>>, _> =
        tokio::time::timeout(COMMAND_TIMEOUT, redis::cmd("HMGET").arg(key).arg(&fields).query_async(&mut conn)).await;
    if let Ok(Ok(found)) = found {
        for (home, template) in unknown.iter().zip(found) {
            if let Some(template) = template {
                signaling.learn(*home, &template);
            }
        }
    }
}
