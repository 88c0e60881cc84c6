//! The long-polling carriage (feature `poll`): a socket made of HTTP requests, driven by the same
//! driver as a WebSocket ([`super::run`]), so that sessions, limits and close codes are the ones
//! of `/ws`. Only the carriage differs:
//! - what the driver writes becomes an **event** with a sequence number (1, 2, 3, ... per
//!   session), kept until a GET acknowledges it, so a lost response loses nothing;
//! - what a POST carries becomes frames the driver reads, in order;
//! - the driver's keepalive pings are answered here at once: liveness is the GETs instead, and a
//!   session with no GET for twice the hold time reads as a dropped connection;
//! - the events not yet acknowledged are the carriage's buffer: when they reach the outbox's
//!   bounds it takes no more, and the outbox closes a client that stopped polling as one that
//!   stopped reading.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::outbox::Outbox;
use super::sockets::{Open, Sockets};
use super::{Session, SocketLimits};
use crate::metrics::ErrorCounter;

/// One long-polling session's carriage, shared by its driver and its HTTP requests.
#[derive(Debug)]
pub struct Carriage {
    state: Mutex<State>,
    /// Wakes the waiting GET: new events, a newer GET, or the end.
    changed: Notify,
    /// Events kept unacknowledged before the carriage takes no more (the outbox's bounds).
    max_events: usize,
    max_bytes: usize,
    hold: Duration,
}

#[derive(Debug)]
struct State {
    /// Events sent and not acknowledged: (seq, text).
    events: VecDeque<(u64, Utf8Bytes)>,
    bytes: usize,
    next_seq: u64,
    /// Frames from the client, for the driver.
    incoming: VecDeque<Result<Message, WsError>>,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The GET most recently begun (a newer one ends the one waiting).
    polls: u64,
    /// Whether a GET is waiting now.
    polling: bool,
    /// When the last GET ended (or the session began).
    last_poll: Instant,
    /// The server closed the session with this code and reason.
    closed: Option<(u16, String)>,
    /// The client is gone (DELETE, or no GET for too long): the driver reads the end.
    gone: bool,
}

/// What a GET answers.
#[derive(Debug)]
pub struct Answer {
    /// The events after the acknowledged one: (seq, JSON text).
    pub events: Vec<(u64, Utf8Bytes)>,
    /// Set once the server has closed the session: its close code and reason.
    pub closed: Option<(u16, String)>,
}

impl Carriage {
    fn new(limits: &SocketLimits) -> Self {
        Carriage {
            state: Mutex::new(State {
                events: VecDeque::new(),
                bytes: 0,
                next_seq: 1,
                incoming: VecDeque::new(),
                reader: None,
                writer: None,
                polls: 0,
                polling: false,
                last_poll: Instant::now(),
                closed: None,
                gone: false,
            }),
            changed: Notify::new(),
            max_events: limits.outbox_capacity.max(1),
            max_bytes: limits.outbox_max_bytes,
            hold: limits.poll_hold,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the events up to `ack`, which the client has seen.
    fn acknowledge(&self, ack: u64) {
        let mut state = self.state();
        while state.events.front().is_some_and(|(seq, _)| *seq <= ack) {
            if let Some((_, text)) = state.events.pop_front() {
                state.bytes -= text.len();
            }
        }
        if let Some(writer) = state.writer.take() {
            writer.wake();
        }
    }

    /// A GET: acknowledges `ack`, then waits up to the hold time for events after it, a newer
    /// GET, the session's end, or `stop` (shutdown).
    pub async fn poll(&self, ack: u64, stop: impl std::future::Future<Output = ()>) -> Answer {
        self.acknowledge(ack);
        let mine = {
            let mut state = self.state();
            state.polls += 1;
            state.polling = true;
            state.polls
        };
        // The GET waiting before this one answers now.
        self.changed.notify_waiters();
        let deadline = Instant::now() + self.hold;
        tokio::pin!(stop);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = self.state();
                if state.polls != mine || !state.events.is_empty() || state.closed.is_some() || state.gone {
                    break;
                }
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => break,
                () = &mut stop => break,
            }
        }
        let mut state = self.state();
        if state.polls == mine {
            state.polling = false;
        }
        state.last_poll = Instant::now();
        Answer { events: state.events.iter().cloned().collect(), closed: state.closed.clone() }
    }

    /// A POST's messages, each a frame, in order.
    pub fn post(&self, frames: impl IntoIterator<Item = String>) {
        let mut state = self.state();
        state.incoming.extend(frames.into_iter().map(|text| Ok(Message::Text(text.into()))));
        wake_reader(&mut state);
    }

    /// A POST over `max` bytes: the driver answers `too-large` and closes the session (1009).
    pub fn too_large(&self, size: usize, max: usize) {
        let mut state = self.state();
        state.incoming.push_back(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size: max })));
        wake_reader(&mut state);
    }

    /// DELETE: a clean close by the client (1000).
    pub fn delete(&self) {
        let mut state = self.state();
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        state.incoming.push_back(Ok(Message::Close(Some(frame))));
        wake_reader(&mut state);
    }

    /// When the session counts as dropped unless a GET comes first; `None` while one waits.
    fn idle_deadline(&self) -> Option<Instant> {
        let state = self.state();
        (!state.polling).then(|| state.last_poll + self.hold * 2)
    }

    /// Watches the GETs: with none for twice the hold time, the client has dropped (the driver
    /// reads the end of the connection, and the resume rules apply). Never returns.
    async fn watch(&self) {
        loop {
            match self.idle_deadline() {
                Some(deadline) if deadline <= Instant::now() => {
                    self.end_idle();
                    std::future::pending::<()>().await;
                }
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => tokio::time::sleep(self.hold).await,
            }
        }
    }

    fn end_idle(&self) {
        let mut state = self.state();
        state.gone = true;
        wake_reader(&mut state);
    }

    /// Whether the client has everything the server sent, or stopped polling for twice the
    /// hold time: a closed session may be forgotten.
    fn spent(&self) -> bool {
        let state = self.state();
        state.events.is_empty() || state.gone || (!state.polling && state.last_poll.elapsed() >= self.hold * 2)
    }
}

/// Wakes the driver, wherever it waits: for a frame, or for room to write.
fn wake_reader(state: &mut State) {
    if let Some(reader) = state.reader.take() {
        reader.wake();
    }
    if let Some(writer) = state.writer.take() {
        writer.wake();
    }
}

/// The carriage as the driver sees it: a socket.
struct Wire(Arc<Carriage>);

impl Stream for Wire {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.0.state();
        if let Some(frame) = state.incoming.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if state.gone || state.closed.is_some() {
            return Poll::Ready(None);
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Sink<Message> for Wire {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let carriage = &self.0;
        let mut state = carriage.state();
        // An empty buffer takes any message, however large, as an empty outbox does.
        if state.events.is_empty() || (state.events.len() < carriage.max_events && state.bytes < carriage.max_bytes) {
            return Poll::Ready(Ok(()));
        }
        // A client that is gone, or said goodbye, is no reason to wait: the write goes through
        // (one batch at most) so that the driver gets back to reading, and reads the end.
        let leaving = state.incoming.iter().any(|frame| matches!(frame, Ok(Message::Close(_))));
        if state.gone || leaving {
            return Poll::Ready(Ok(()));
        }
        state.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        let mut state = self.0.state();
        match message {
            Message::Text(text) => {
                let seq = state.next_seq;
                state.next_seq += 1;
                state.bytes += text.len();
                state.events.push_back((seq, text));
            }
            // The driver's keepalive: the GETs are this carriage's liveness.
            Message::Ping(_) => {
                state.incoming.push_back(Ok(Message::Pong(Default::default())));
                wake_reader(&mut state);
                return Ok(());
            }
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1000, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                state.closed = Some((code, reason));
                wake_reader(&mut state);
            }
            _ => return Ok(()),
        }
        drop(state);
        self.0.changed.notify_waiters();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// A new long-polling socket: its outbox (for the service's `open`), its carriage (for the HTTP
/// requests) and its driver's end, already attached, so that what `open` sends is in the
/// carriage when it returns.
pub fn open(sockets: &Sockets, limits: &SocketLimits, errors: ErrorCounter) -> (Outbox, Arc<Carriage>, Open) {
    let (outbox, open) = sockets.open(limits, errors);
    let carriage = Arc::new(Carriage::new(limits));
    open.attach(Box::new(Wire(carriage.clone())));
    (outbox, carriage, open)
}

/// Drives a long-polling session until it ends (the client's messages, its GETs' liveness and
/// the server's close all reach the driver through the carriage).
pub async fn drive<S: Session>(carriage: Arc<Carriage>, open: Open, session: S, limits: SocketLimits) {
    let outbox = open.outbox().clone();
    tokio::select! {
        () = super::run(open, session, limits) => {}
        () = carriage.watch() => {}
    }
    // A close the carriage could not take (its buffer full of events the client never fetched:
    // the slow consumer's 1008) is recorded all the same.
    if let Some((code, reason)) = outbox.close_frame() {
        let mut state = carriage.state();
        if state.closed.is_none() {
            state.closed = Some((code, reason.to_owned()));
        }
    }
    carriage.changed.notify_waiters();
}

impl Carriage {
    /// Resolves once an ended session's client has fetched what was left (its last events and
    /// the close), or stopped polling: then it may be forgotten.
    pub async fn linger(&self) {
        while !self.spent() {
            tokio::time::sleep(Duration::from_millis(250).min(self.hold)).await;
        }
    }
}
