//! matchbox's rooms over HTTP, as its WASI server serves them, under `/matchbox/`:
//! `GET poll/{room}` joins, `GET poll/{room}?peer_id=…` waits up to `POLL_HOLD_SECS` for events,
//! `POST signal` (header `X-Peer-Id`) relays. A peer that has not polled for twice the hold has
//! left.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rules::matchbox::{poll_peer, Address, Event, PollAnswer, Request};
use rules::{HomeId, Millis, PeerId};
use shared::lifecycle::Lifecycle;
use shared::limits::CONNECTION_RETRY_AFTER_SECS;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::socket_error;
use crate::deliver::{Figures, Text};
use crate::locals::Locals;
use crate::rooms::Rooms;

/// What the HTTP flavour needs.
#[derive(Clone)]
pub struct Polling {
    /// The rooms.
    pub rooms: Arc<Rooms>,
    /// Where the mailboxes are.
    pub locals: Arc<Locals>,
    /// This instance.
    pub home: HomeId,
    /// `POLL_HOLD_SECS`.
    pub hold: Duration,
    /// The largest body accepted (`MAX_MESSAGE_BYTES`).
    pub max_body: u64,
    /// Shutdown: held polls answer at once.
    pub lifecycle: Lifecycle,
    /// Polling peers this instance keeps at most (`MAX_CONNECTIONS`); a first poll beyond is 503.
    pub max_peers: usize,
    /// `/metrics`.
    pub figures: Figures,
}

impl Polling {
    /// How long a peer may go without polling: twice the hold.
    fn idle(&self) -> Millis {
        u64::try_from(self.hold.as_millis()).unwrap_or(u64::MAX).saturating_mul(2)
    }

    /// Forgets the peers that stopped polling, once a second, until `stop`: they leave their rooms.
    pub async fn run_expiry(self, stop: CancellationToken) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.cancelled() => return,
            }
            for seat in self.locals.polled.expire(crate::now_ms(), self.idle()) {
                self.rooms.closed(seat.room, seat.conn, true).await;
            }
            self.figures.polled.set(self.locals.polled.len() as i64);
        }
    }
}

/// The routes. A body over `MAX_MESSAGE_BYTES` (or without a length) is refused before it is read.
pub fn routes(
    polling: Polling,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    let max_body = polling.max_body;
    let with = warp::any().map(move || polling.clone());
    let poll = warp::path!("matchbox" / "poll" / String)
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with.clone())
        .then(|name: String, query: String, polling: Polling| async move { poll(polling, name, query).await });
    let signal = warp::path!("matchbox" / "signal")
        .and(warp::post())
        .and(warp::header::optional::<String>("x-peer-id"))
        .and(warp::body::content_length_limit(max_body))
        .and(warp::body::bytes())
        .and(with)
        .then(|peer: Option<String>, body: Bytes, polling: Polling| async move { signal(polling, peer, body).await });
    poll.or(signal)
}

fn answer(peer: PeerId, events: Vec<String>) -> warp::reply::Response {
    warp::reply::with_header(PollAnswer { peer_id: peer, events }.text(), "content-type", "application/json")
        .into_response()
}

fn status(code: StatusCode, text: &'static str) -> warp::reply::Response {
    warp::reply::with_status(text, code).into_response()
}

async fn poll(polling: Polling, name: String, query: String) -> warp::reply::Response {
    let query = Some(query.as_str()).filter(|q| !q.is_empty());
    let address = match Address::parse(&name, query) {
        Ok(address) => address,
        Err(bad) => return status(StatusCode::BAD_REQUEST, socket_error(bad)),
    };
    let polled = &polling.locals.polled;
    let peer = match poll_peer(query) {
        Err(()) => return status(StatusCode::BAD_REQUEST, "`peer_id` is not a UUID"),
        Ok(Some(peer)) => peer,
        Ok(None) if polled.len() >= polling.max_peers || polling.lifecycle.is_draining() => {
            let mut refused = status(StatusCode::SERVICE_UNAVAILABLE, "too many peers here, or shutting down");
            refused.headers_mut().insert("retry-after", CONNECTION_RETRY_AFTER_SECS.into());
            return refused;
        }
        Ok(None) => {
            let peer = shared::random::uuid();
            let room = address.room();
            let seat = polled.open(peer, room, polling.home, Event::IdAssigned(peer).text(), crate::now_ms());
            polling.figures.polled.set(polled.len() as i64);
            Box::pin(polling.rooms.join(room, address.kind(), seat.conn, peer, Millis::MAX)).await;
            return answer(peer, polled.take(peer));
        }
    };
    let (Some(seat), true) = (polled.seat(peer), polled.poll(peer, crate::now_ms())) else {
        return status(StatusCode::NOT_FOUND, "no such peer (it never joined, or it left)");
    };
    let held_until = tokio::time::Instant::now() + polling.hold;
    let shutdown = polling.lifecycle.shutdown_token().clone();
    loop {
        let events = polled.take(peer);
        if !events.is_empty() {
            return answer(peer, events);
        }
        tokio::select! {
            () = seat.wake.notified() => {}
            () = tokio::time::sleep_until(held_until) => return answer(peer, polled.take(peer)),
            () = shutdown.cancelled() => return answer(peer, polled.take(peer)),
        }
    }
}

async fn signal(polling: Polling, peer: Option<String>, body: Bytes) -> warp::reply::Response {
    let Some(sender) = peer.and_then(|p| uuid::Uuid::parse_str(p.trim()).ok()) else {
        return status(StatusCode::BAD_REQUEST, "`X-Peer-Id` must name your peer id");
    };
    let Some(seat) = polling.locals.polled.seat(sender) else {
        return status(StatusCode::NOT_FOUND, "no such peer (it never joined, or it left)");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return status(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    match Request::parse(text) {
        Ok(Request::Signal { receiver, data }) => {
            let text = Text(Utf8Bytes::from(Event::Signal { sender, data }.text()));
            polling.rooms.relay(seat.room, seat.conn, Some(receiver), text).await;
            status(StatusCode::NO_CONTENT, "")
        }
        Ok(Request::KeepAlive) => status(StatusCode::NO_CONTENT, ""),
        Err(_) => status(StatusCode::BAD_REQUEST, "expected {\"Signal\":{\"receiver\":\"<uuid>\",\"data\":…}}"),
    }
}
