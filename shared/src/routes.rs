//! HTTP routes every service has, and the one rejection handler.

use std::convert::Infallible;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;

/// `GET /healthz` (200 while the process runs), `GET /readyz` (200 when accepting work, 503
/// while draining or while a needed backend is down), `GET /metrics` (OpenMetrics text).
pub fn operational(
    lifecycle: Lifecycle,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    let healthz = warp::path!("healthz").and(warp::get()).map(|| "ok");
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        if lifecycle.is_ready() {
            warp::reply::with_status("ready", StatusCode::OK)
        } else {
            warp::reply::with_status("not ready", StatusCode::SERVICE_UNAVAILABLE)
        }
    });
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            metrics.encode(),
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    });
    healthz.or(readyz).or(metrics)
}

/// Turns rejections into plain answers with the right status, never a panic or a 500 page.
pub async fn handle_rejection(rejection: Rejection) -> Result<impl Reply, Infallible> {
    let (status, text) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "the body is over MAX_MESSAGE_BYTES")
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (StatusCode::LENGTH_REQUIRED, "a body needs a Content-Length")
    } else {
        tracing::debug!(?rejection, "request rejected");
        (StatusCode::BAD_REQUEST, "bad request")
    };
    Ok(warp::reply::with_status(text, status))
}
