//! The matchmaker's HTTP routes.

use std::sync::Arc;

use shared::lifecycle::Lifecycle;
use shared::metrics::Metrics;
use shared::routes::{handle_rejection, operational};
use warp::{Filter, Rejection, Reply};

use crate::assets;
use crate::queue::QueueHandle;

/// Every HTTP route: operational, `/api/stats`, then the page.
pub fn all(
    lifecycle: Lifecycle,
    metrics: Arc<Metrics>,
    queue: QueueHandle,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static {
    operational(lifecycle, metrics).or(stats(queue)).or(assets::routes()).recover(handle_rejection)
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
