//! The matchmaker's HTTP routes.

use std::sync::Arc;

use shared::lifecycle::Lifecycle;
use shared::metrics::Metrics;
use shared::routes::{handle_rejection, operational};
use warp::{Filter, Rejection, Reply};

use crate::assets;
use crate::config::Config;
use crate::queue::QueueHandle;

/// Every HTTP route: operational, `/api/stats`, `/api/config`, then the page.
pub fn all(
    lifecycle: Lifecycle,
    metrics: Arc<Metrics>,
    queue: QueueHandle,
    config: Arc<Config>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static {
    operational(lifecycle, metrics)
        .or(stats(queue.clone()))
        .or(api_config(config.clone()))
        .or(crate::safety::admin::routes(config.safety.admin_token.clone(), queue.clone()))
        .or(assets::routes())
        .recover(handle_rejection)
}

/// `GET /api/config`: the signaling URL for the host the page was reached at, so not cached.
fn api_config(
    config: Arc<Config>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::path!("api" / "config").and(warp::get()).and(warp::header::optional::<String>("host")).map(
        move |host: Option<String>| {
            let reply = warp::reply::json(&config.api_config(host.as_deref()));
            warp::reply::with_header(reply, "cache-control", "no-store")
        },
    )
}

fn stats(
    queue: QueueHandle,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::path!("api" / "stats").and(warp::get()).then(move || {
        let queue = queue.clone();
        async move {
            let reply = warp::reply::json(&queue.stats().await);
            warp::reply::with_header(reply, "cache-control", "no-store")
        }
    })
}
