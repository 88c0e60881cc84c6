//! The accept loop both services run: `/ws` upgrades go to the service's sessions, every other
//! request to its warp routes.
//!
//! The upgrade is done here rather than by warp's `ws()` filter so that the socket's buffers are
//! ours to size (warp's default read buffer alone costs 128 KiB per idle socket) and the origin
//! check and the connection limits run before any socket exists.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tower_service::Service as _;
use tracing::Instrument;
use warp::{Filter, Reply};

use crate::lifecycle::Lifecycle;
use crate::limits::{ConnectionGate, ConnectionSlot, Refusal, CONNECTION_RETRY_AFTER_SECS};
use crate::longpoll::{is_poll_path, PollSessions};
use crate::metrics::Metrics;
use crate::origin::AllowedOrigins;
use crate::ws::{self, Outbox, Session, SocketLimits};

/// The path that upgrades to a WebSocket on both services.
pub const WS_PATH: &str = "/ws";
/// How long a client may take to send a request's headers (or the next request on a kept-alive
/// connection) before the connection is closed, so that half-open requests cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What a service knows about a socket being opened.
#[derive(Debug, Clone)]
pub struct SocketRequest {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client: the TCP peer, or the address a trusted proxy named in `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// What the client's address counts as, for limits, reports and bans: the address (an IPv6
    /// one by its /64), or `None` when a trusted proxy named nobody (no telling users apart).
    pub address: Option<IpAddr>,
    /// The `Host` header the client used, when it sent one.
    pub host: Option<String>,
    /// Whether the client reached us over TLS (through a trusted proxy that says so).
    pub secure: bool,
    /// The path it asked for ([`WS_PATH`], or another that [`SocketService::socket_path`] took).
    pub path: String,
    /// Its query string, if any.
    pub query: Option<String>,
}

/// A service that owns WebSocket sessions.
pub trait SocketService: Send + Sync + 'static {
    /// One socket's state.
    type Session: Session;
    /// A socket was opened: register it, greet it, and return its session.
    fn open(&self, outbox: Outbox, request: SocketRequest) -> impl Future<Output = Self::Session> + Send;

    /// Whether a request for another path than [`WS_PATH`] is a socket of this service: `None`
    /// sends it to the routes; `Some(Err(why))` answers 400 with `why`; `Some(Ok(()))` upgrades
    /// it, with the same checks and limits as [`WS_PATH`].
    fn socket_path(&self, _method: &Method, _path: &str, _query: Option<&str>) -> Option<Result<(), &'static str>> {
        None
    }
}

/// Everything the accept loop needs.
pub struct Server<S, F> {
    /// The service that owns the sockets.
    pub service: Arc<S>,
    /// Its HTTP routes (`/healthz`, `/readyz`, `/metrics` and its own), ending in a `recover`.
    pub routes: F,
    /// `ALLOWED_ORIGIN`.
    pub origins: AllowedOrigins,
    /// Per-socket limits.
    pub limits: SocketLimits,
    /// Connections per client IP and per instance, and who may name the client IP.
    pub gate: ConnectionGate,
    /// Shutdown and readiness.
    pub lifecycle: Lifecycle,
    /// The instance's metrics.
    pub metrics: Arc<Metrics>,
    /// The long-polling sessions (`/lp`), this instance's own.
    pub polls: PollSessions,
}

impl<S, F, R> Server<S, F>
where
    S: SocketService,
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    /// Serves on `listener` until shutdown begins, then stops accepting. Sockets and HTTP
    /// connections end through the lifecycle's shutdown token; wait for them with
    /// [`Lifecycle::wait`].
    pub async fn run(self, listener: TcpListener) {
        let shared = Arc::new(self);
        let shutdown = shared.lifecycle.shutdown_token().clone();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    shared.lifecycle.clone().spawn(async move { shared.serve_connection(stream, peer).await });
                }
                Err(err) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        tracing::debug!("listener closed");
    }

    async fn serve_connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let warp_service = warp::service(self.routes.clone());
        let shared = self.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            let mut warp_service = warp_service.clone();
            async move {
                let uri = request.uri();
                if uri.path() == WS_PATH {
                    return Ok::<_, Infallible>(shared.upgrade(request, peer));
                }
                if is_poll_path(uri.path()) {
                    return Ok(shared.long_poll(request, peer).await);
                }
                match shared.service.socket_path(request.method(), uri.path(), uri.query()) {
                    Some(Ok(())) => Ok(shared.upgrade(request, peer)),
                    Some(Err(why)) => Ok(plain(StatusCode::BAD_REQUEST, why)),
                    None => warp_service.call(request).await,
                }
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(connection);
        let shutdown = self.lifecycle.shutdown_token().clone();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%err, "http connection ended with an error");
                }
            }
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }

    fn upgrade(self: Arc<Self>, mut request: Request<Incoming>, peer: SocketAddr) -> warp::reply::Response {
        if self.lifecycle.is_draining() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        let headers = request.headers();
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if !self.origins.allows(origin) {
            tracing::info!(%peer, origin = origin.unwrap_or("-"), "origin refused");
            return plain(StatusCode::FORBIDDEN, "origin not allowed");
        }
        let Some(key) = websocket_key(request.method(), headers) else {
            return plain(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade (version 13)");
        };
        let socket_request = self.socket_request(headers, request.uri(), peer);
        let slot = match self.admit(socket_request.client_ip, peer) {
            Ok(slot) => slot,
            Err(refusal) => return refused(refusal),
        };
        let accept = derive_accept_key(key.as_bytes());
        let on_upgrade = hyper::upgrade::on(&mut request);
        let shared = self.clone();
        self.lifecycle.spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => shared.run_socket(TokioIo::new(upgraded), socket_request, slot).await,
                Err(err) => tracing::debug!(%err, %peer, "upgrade failed"),
            }
        });
        let mut response = warp::reply::Response::new("".into());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }

    /// What the service is told about a socket (or long-polling session) being opened.
    pub(crate) fn socket_request(&self, headers: &HeaderMap, uri: &http::Uri, peer: SocketAddr) -> SocketRequest {
        let forwarded_for = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let client_ip = self.gate.client_ip(peer.ip(), forwarded_for);
        SocketRequest {
            peer,
            client_ip,
            address: self.gate.address_key(client_ip),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            host: headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned),
            secure: self.gate.trusts(peer.ip())
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https")),
        }
    }

    /// A place for one more connection of `client_ip`, or the refusal (see [`refused`]).
    pub(crate) fn admit(&self, client_ip: IpAddr, peer: SocketAddr) -> Result<ConnectionSlot, Refusal> {
        self.gate.admit(client_ip).inspect_err(|refusal| {
            tracing::info!(%peer, client = %client_ip, ?refusal, "connection refused by a limit");
        })
    }

    /// Runs one socket; its place in the gate (`_slot`) is given back when it ends.
    async fn run_socket<T>(&self, io: T, request: SocketRequest, _slot: ConnectionSlot)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (outbox, open) = self.lifecycle.sockets().open(&self.limits, self.metrics.errors.clone());
        // At debug level only: a span lives as long as its socket and is entered on every poll
        // of it, which at the default level costs relay throughput and memory per idle socket
        // (README, Performance). The few socket events logged at info or above name their
        // connection themselves.
        let span = tracing::debug_span!("ws", conn = %outbox.id(), peer = %request.peer, client = %request.client_ip);
        self.metrics.connections.inc();
        self.metrics.connections_accepted.inc();
        async {
            tracing::debug!("socket opened");
            let session = Box::pin(self.service.open(outbox, request)).await;
            ws::drive(io, open, session, self.limits).await;
            tracing::debug!("socket closed");
        }
        .instrument(span)
        .await;
        self.metrics.connections.dec();
    }
}

/// The `Sec-WebSocket-Key` of a valid version-13 upgrade request, or `None`.
fn websocket_key(method: &Method, headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let version_ok = headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    if method != Method::GET
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
        || !version_ok
    {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The answer to a connection a limit refused, with its `Retry-After`.
pub(crate) fn refused(refusal: Refusal) -> warp::reply::Response {
    let mut response = match refusal {
        Refusal::InstanceFull => plain(StatusCode::SERVICE_UNAVAILABLE, "too many connections"),
        Refusal::IpFull => plain(StatusCode::TOO_MANY_REQUESTS, "too many connections from your address"),
    };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(CONNECTION_RETRY_AFTER_SECS));
    response
}

fn plain(status: StatusCode, text: &'static str) -> warp::reply::Response {
    warp::reply::with_status(text, status).into_response()
}
