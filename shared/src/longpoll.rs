//! The long-polling routes (feature `poll`), the same on both services: `POST /lp` opens a
//! session, `GET /lp/{sid}?ack=N` waits for events, `POST /lp/{sid}` carries client messages,
//! `DELETE /lp/{sid}` closes. The session behind them is the service's own [`crate::ws::Session`],
//! driven like a WebSocket over the carriage of [`crate::ws::poll`]; the origin check, the
//! connection limits and the metrics are those of `/ws`. CORS is allowed exactly for the origins
//! `ALLOWED_ORIGIN` allows.
//!
//! Sessions live on the instance that opened them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use warp::{Filter, Reply};

use crate::server::{refused, Server, SocketService};
use crate::ws::poll::{self, Answer, Carriage};

/// The path of the long-polling routes.
pub const LP_PATH: &str = "/lp";
/// How long a preflight answer may be cached by the browser, in seconds.
pub const CORS_MAX_AGE_SECS: u32 = 600;

/// The long-polling sessions of one service instance, by sid.
#[derive(Debug, Default)]
pub struct PollSessions(Mutex<HashMap<String, Arc<Carriage>>>);

impl PollSessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Carriage>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, sid: &str) -> Option<Arc<Carriage>> {
        self.map().get(sid).cloned()
    }
}

/// Whether a request is for the long-polling routes.
pub fn is_poll_path(path: &str) -> bool {
    path == LP_PATH || path.strip_prefix(LP_PATH).is_some_and(|rest| rest.starts_with('/'))
}

type Response = warp::reply::Response;

impl<S, F, R> Server<S, F>
where
    S: SocketService,
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    /// Answers one request under `/lp`.
    pub(crate) async fn long_poll(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // A browser sends no Origin on a same-origin GET; one it does send must be allowed. Opening
        // a session is held to the rule of a WebSocket upgrade.
        let opening = request.method() == Method::POST && request.uri().path() == LP_PATH;
        let allowed = if opening || origin.is_some() { self.origins.allows(origin.as_deref()) } else { true };
        if !allowed {
            tracing::info!(%peer, origin = origin.as_deref().unwrap_or("-"), "origin refused");
            return text(StatusCode::FORBIDDEN, "origin not allowed");
        }
        let mut response = self.route(request, peer).await;
        if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        response
    }

    async fn route(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Response {
        let path = request.uri().path().to_owned();
        let sid = path.strip_prefix(LP_PATH).and_then(|rest| rest.strip_prefix('/')).filter(|s| !s.is_empty());
        match (request.method().clone(), sid) {
            (Method::OPTIONS, _) => preflight(),
            (Method::POST, None) => self.open_session(&request, peer).await,
            (_, None) => text(StatusCode::METHOD_NOT_ALLOWED, "POST /lp opens a session"),
            (method, Some(sid)) => {
                let Some(carriage) = self.polls.get(sid) else {
                    return text(StatusCode::NOT_FOUND, "no such session");
                };
                match method {
                    Method::GET => {
                        let ack = ack_of(request.uri().query());
                        let stop = self.lifecycle.shutdown_token().clone();
                        events(StatusCode::OK, None, carriage.poll(ack, stop.cancelled_owned()).await)
                    }
                    Method::POST => self.post(&carriage, request).await,
                    Method::DELETE => {
                        carriage.delete();
                        self.polls.map().remove(sid);
                        empty(StatusCode::NO_CONTENT)
                    }
                    _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET, POST or DELETE"),
                }
            }
        }
    }

    /// `POST /lp`: a new session, greeted by the service like a new socket.
    async fn open_session(self: &Arc<Self>, request: &Request<Incoming>, peer: SocketAddr) -> Response {
        if self.lifecycle.is_draining() {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        let socket_request = self.socket_request(request.headers(), request.uri(), peer);
        let slot = match self.admit(socket_request.client_ip, peer) {
            Ok(slot) => slot,
            Err(refusal) => return refused(refusal),
        };
        let (outbox, carriage, open) = poll::open(self.lifecycle.sockets(), &self.limits, self.metrics.errors.clone());
        let sid = crate::random::uuid().simple().to_string();
        self.polls.map().insert(sid.clone(), carriage.clone());
        self.metrics.connections.inc();
        self.metrics.connections_accepted.inc();
        let session = Box::pin(self.service.open(outbox, socket_request)).await;
        let greeting = carriage.poll(0, std::future::ready(())).await;
        let shared = self.clone();
        let key = sid.clone();
        self.lifecycle.spawn(async move {
            let _slot = slot;
            poll::drive(carriage.clone(), open, session, shared.limits).await;
            // A session that ended keeps its last events for its client, but not past shutdown.
            tokio::select! {
                () = carriage.linger() => {}
                () = shared.lifecycle.shutdown_token().cancelled() => {}
            }
            shared.polls.map().remove(&key);
            shared.metrics.connections.dec();
        });
        events(StatusCode::OK, Some(&sid), greeting)
    }

    /// `POST /lp/{sid}`: a JSON array of messages, each handled as a WebSocket frame would be.
    async fn post(&self, carriage: &Carriage, request: Request<Incoming>) -> Response {
        let max = self.limits.max_message_bytes;
        let limited = http_body_util::Limited::new(request.into_body(), max);
        let body = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                carriage.too_large(max + 1, max);
                return text(StatusCode::PAYLOAD_TOO_LARGE, "body over MAX_MESSAGE_BYTES; the session is closed");
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "the body could not be read"),
        };
        let Ok(frames) = serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(&body) else {
            return text(StatusCode::BAD_REQUEST, "the body must be a JSON array of messages");
        };
        carriage.post(frames.into_iter().map(|frame| frame.get().to_owned()));
        empty(StatusCode::NO_CONTENT)
    }
}

/// The `ack` of a GET's query string (0 when missing or not a number: nothing seen yet).
fn ack_of(query: Option<&str>) -> u64 {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("ack="))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// `{"sid":...,"events":[{"seq":N,"msg":{...}},...],"closed":{...}}`.
fn events(status: StatusCode, sid: Option<&str>, answer: Answer) -> Response {
    let mut body = String::from("{");
    if let Some(sid) = sid {
        body.push_str(&format!("\"sid\":\"{sid}\","));
    }
    body.push_str("\"events\":[");
    for (i, (seq, msg)) in answer.events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"seq\":{seq},\"msg\":{}}}", msg.as_str()));
    }
    body.push(']');
    if let Some((code, reason)) = &answer.closed {
        let closed = serde_json::json!({"code": code, "reason": reason});
        body.push_str(&format!(",\"closed\":{closed}"));
    }
    body.push('}');
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn preflight() -> Response {
    let mut response = empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE_SECS));
    response
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new("".into());
    *response.status_mut() = status;
    response
}

fn text(status: StatusCode, message: &'static str) -> Response {
    warp::reply::with_status(message, status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_paths_are_lp_and_below() {
        assert!(is_poll_path("/lp") && is_poll_path("/lp/abc"));
        assert!(!is_poll_path("/lpx") && !is_poll_path("/ws") && !is_poll_path("/"));
    }

    #[test]
    fn ack_reads_the_query_and_defaults_to_nothing_seen() {
        assert_eq!(ack_of(Some("ack=7")), 7);
        assert_eq!(ack_of(Some("x=1&ack=12")), 12);
        assert_eq!(ack_of(Some("ack=-1")), 0);
        assert_eq!(ack_of(None), 0);
    }
}
