//! The matchmaker's HTTP routes.

use std::sync::Arc;

use serde::Serialize;
use shared::lifecycle::Lifecycle;
use shared::metrics::Metrics;
use shared::routes::{handle_rejection, operational};
use warp::{Filter, Rejection, Reply};

use crate::assets;
use crate::hub::Figures;

/// `GET /api/stats`.
#[derive(Debug, Serialize)]
struct Stats {
    online: i64,
    waiting: i64,
    rooms: i64,
}

/// Every HTTP route: operational, `/api/stats`, then the page.
pub fn all(
    lifecycle: Lifecycle,
    metrics: Arc<Metrics>,
    figures: Figures,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static {
    operational(lifecycle, metrics).or(stats(figures)).or(assets::routes()).recover(handle_rejection)
}

fn stats(figures: Figures) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::path!("api" / "stats").and(warp::get()).map(move || {
        let reply = warp::reply::json(&Stats {
            online: figures.online.get(),
            waiting: figures.waiting.get(),
            rooms: figures.rooms.get(),
        });
        warp::reply::with_header(reply, "cache-control", "no-store")
    })
}
