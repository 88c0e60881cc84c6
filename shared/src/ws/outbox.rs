//! One socket's outbox: anyone may post to it, and only the socket's driver waits on it.
//!
//! A post goes to the socket's [`Line`] (the WebSocket and its queue under one lock): written
//! at once when nothing waits before it and the socket takes it, with no wake-up of the driver;
//! queued for the driver otherwise. See [`super::line`] for the invariants that keep the order.
//!
//! The queue is bounded in messages and in bytes; a post that would go over either closes the
//! socket (its client stopped reading), so nobody ever waits on a slow client.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use serde::Serialize;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::line::{Bounds, Line, Posted, Wire};
use super::{error_reply, SocketLimits, CLOSE_POLICY};
use crate::error::Rejected;
use crate::metrics::ErrorCounter;
use crate::protocol::encode;

/// A connection's id, unique within the process; tells a socket from its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The way to send to one socket from anywhere. Cheap to clone; never blocks for long (the
/// line's lock is only ever held for one non-blocking poll).
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

/// What an outbox and its driver share: one allocation per socket.
struct Shared {
    id: ConnId,
    bounds: Bounds,
    /// The one lock: the socket and its queue.
    line: Mutex<Line>,
    /// The driver, waiting for something to write.
    writer: AtomicWaker,
    /// Set to close the socket (by us, by shutdown, or because its driver is gone).
    stopping: AtomicBool,
    /// The close frame to send; the first reason given wins.
    close: OnceLock<(u16, &'static str)>,
    errors: ErrorCounter,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("id", &self.0.id).finish_non_exhaustive()
    }
}

impl Shared {
    fn line(&self) -> MutexGuard<'_, Line> {
        // No poll panics under the lock; if one did, the line is as good as before.
        self.line.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

impl Outbox {
    /// The connection this outbox writes to.
    pub fn id(&self) -> ConnId {
        self.0.id
    }

    /// Sends a text frame. A socket whose queue is full, in messages or in bytes, is closed
    /// (it stopped reading); a message into an empty queue is always taken, however large.
    /// Returns whether the frame was taken.
    pub fn send_text(&self, text: Utf8Bytes) -> bool {
        let direct = !self.0.is_stopping();
        let mut line = self.0.line();
        let posted = line.post(text, self.0.bounds, direct);
        let queued = if posted == Posted::Full { line.queued() } else { (0, 0) };
        drop(line);
        if posted.wakes_driver() {
            self.0.writer.wake();
        }
        match posted {
            Posted::Written | Posted::Unflushed | Posted::Queued => true,
            Posted::Closed => false,
            Posted::Full => {
                let (messages, bytes) = queued;
                tracing::warn!(conn = %self.0.id, messages, bytes, "send queue full; closing the slow socket");
                self.close(CLOSE_POLICY, "send queue full");
                false
            }
        }
    }

    /// Bytes queued for the socket and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.0.line().queued().1
    }

    /// Queues a typed message.
    pub fn send<T: Serialize>(&self, message: &T) -> bool {
        self.send_text(encode(message).into())
    }

    /// Answers a refused request with the contract's error message (see [`error_reply`]).
    pub fn reject(&self, rejected: &Rejected) {
        self.0.errors.count(rejected.code);
        self.send_text(error_reply(rejected).into());
    }

    /// Closes the socket with `code` after what is already queued... or at once if it is stuck.
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.0.close.set((code, reason));
        self.0.stopping.store(true, Ordering::Release);
        self.0.writer.wake();
    }

    /// Whether the socket is still open.
    pub fn is_open(&self) -> bool {
        !self.0.is_stopping()
    }

    /// The instance's error counter, for errors the driver answers itself.
    pub(super) fn errors(&self) -> &ErrorCounter {
        &self.0.errors
    }

    /// The close frame asked for by [`Outbox::close`], if any.
    pub(super) fn close_frame(&self) -> Option<(u16, &'static str)> {
        self.0.close.get().copied()
    }
}

/// Creates the outbox of a new socket and the [`Taker`] its driver works from. Sockets are
/// opened through [`super::Sockets::open`], which also closes them at shutdown.
pub(super) fn outbox(limits: &SocketLimits, errors: ErrorCounter) -> (Outbox, Taker) {
    let outbox = Outbox(Arc::new(Shared {
        id: ConnId::next(),
        bounds: Bounds { messages: limits.outbox_capacity.max(1), bytes: limits.outbox_max_bytes },
        line: Mutex::new(Line::default()),
        writer: AtomicWaker::new(),
        stopping: AtomicBool::new(false),
        close: OnceLock::new(),
        errors,
    }));
    (outbox.clone(), Taker(outbox))
}

/// What the driver is to do next.
pub(super) enum Next {
    /// Write what is queued (or finish a flush).
    Write,
    /// Close the socket.
    Stop,
}

/// The driver's end of an [`Outbox`]: it reads from the socket, writes what others queued, and
/// closes it. When it is dropped the outbox closes and what was still queued is freed.
pub struct Taker(Outbox);

impl Taker {
    /// The outbox this takes from, for the driver's own answers (queued behind the rest).
    pub fn outbox(&self) -> &Outbox {
        &self.0
    }

    fn line(&self) -> MutexGuard<'_, Line> {
        self.0 .0.line()
    }

    /// The next thing to do: close the socket if asked to, else write what is queued, waiting
    /// until there is something.
    pub(super) async fn next(&self) -> Next {
        self.until(|| self.ready()).await
    }

    /// Resolves once the socket is to be closed (to cut a stuck write short).
    pub(super) async fn stopped(&self) {
        self.until(|| self.0 .0.is_stopping().then_some(())).await
    }

    /// Waits, as the driver, until `ready` has an answer; posts and closes wake the driver.
    async fn until<T>(&self, ready: impl Fn() -> Option<T>) -> T {
        poll_fn(|cx| {
            if let Some(answer) = ready() {
                return Poll::Ready(answer);
            }
            self.0 .0.writer.register(cx.waker());
            // A post between the look above and the registration would otherwise go unnoticed.
            ready().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    fn ready(&self) -> Option<Next> {
        if self.0 .0.is_stopping() {
            Some(Next::Stop)
        } else if self.has_work() {
            Some(Next::Write)
        } else {
            None
        }
    }

    /// Whether something waits to be written: queued messages, or a sender's unflushed write.
    pub(super) fn has_work(&self) -> bool {
        self.line().has_work()
    }

    /// Lets senders write to `socket` directly from now on.
    pub(super) fn attach(&self, socket: Box<dyn Wire>) {
        self.line().attach(socket);
    }

    /// The next frame from the client.
    pub(super) async fn read(&self) -> Option<Result<Message, WsError>> {
        poll_fn(|cx| self.line().read(cx)).await
    }

    /// Writes what is queued, up to a batch, and flushes.
    pub(super) async fn write_queued(&self) -> Result<(), WsError> {
        poll_fn(|cx| self.line().write_queued(cx)).await
    }

    /// Sends the driver's own frame ahead of the queue, and flushes.
    pub(super) async fn send(&self, message: Message) -> Result<(), WsError> {
        let mut message = Some(message);
        poll_fn(|cx| self.line().send(cx, &mut message)).await
    }

    /// The driver is done with the socket: nobody else writes to it from now on, the socket
    /// counts as closed for everyone who still holds the outbox, and the driver alone holds it.
    pub(super) fn detach(&self) -> Option<Box<dyn Wire>> {
        self.0 .0.stopping.store(true, Ordering::Release);
        self.line().detach()
    }
}

impl Drop for Taker {
    fn drop(&mut self) {
        self.0 .0.stopping.store(true, Ordering::Release);
        self.line().close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Common;
    use crate::limits::Limits;
    use futures_util::StreamExt;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::WebSocketStream;

    fn limits(capacity: usize, max_bytes: usize) -> SocketLimits {
        let limits = Limits { outbox_max_bytes: max_bytes, ..Limits::default() };
        SocketLimits { outbox_capacity: capacity, ..SocketLimits::new(&Common::default(), &limits) }
    }

    fn text(len: usize) -> Utf8Bytes {
        "x".repeat(len).into()
    }

    fn new(capacity: usize, max_bytes: usize) -> (Outbox, Taker) {
        outbox(&limits(capacity, max_bytes), ErrorCounter::default())
    }

    #[test]
    fn the_outbox_takes_messages_up_to_its_byte_limit() {
        let (outbox, _taker) = new(100, 1_000);
        assert!(outbox.send_text(text(600)));
        assert!(outbox.send_text(text(399)), "just below the limit");
        assert!(outbox.send_text(text(1)), "exactly at the limit");
        assert_eq!(outbox.queued_bytes(), 1_000);
        assert!(outbox.is_open());
    }

    #[test]
    fn one_byte_over_the_outbox_byte_limit_closes_the_socket_with_1008() {
        let (outbox, _taker) = new(100, 1_000);
        assert!(outbox.send_text(text(1_000)));
        assert!(!outbox.send_text(text(1)));
        assert!(!outbox.is_open());
        assert_eq!(outbox.close_frame().map(|(code, _)| code), Some(CLOSE_POLICY));
        assert_eq!(outbox.queued_bytes(), 1_000, "the refused message is not counted");
    }

    #[test]
    fn a_message_larger_than_the_byte_limit_still_goes_into_an_empty_outbox() {
        let (outbox, _taker) = new(100, 1_000);
        assert!(outbox.send_text(text(5_000)));
        assert!(outbox.is_open());
    }

    #[test]
    fn the_outbox_takes_messages_up_to_its_capacity_and_closes_one_above() {
        let (outbox, _taker) = new(3, 1_000_000);
        assert!(outbox.send_text(text(1)));
        assert!(outbox.send_text(text(1)), "just below the capacity");
        assert!(outbox.send_text(text(1)), "exactly at the capacity");
        assert!(outbox.is_open());
        assert!(!outbox.send_text(text(1)));
        assert_eq!(outbox.close_frame().map(|(code, _)| code), Some(CLOSE_POLICY));
        assert_eq!(outbox.queued_bytes(), 3);
    }

    #[test]
    fn bytes_taken_by_the_writer_are_free_again() {
        let (outbox, taker) = new(100, 1_000);
        assert!(outbox.send_text(text(1_000)));
        assert!(taker.line().pop().is_some());
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.send_text(text(600)));
        assert!(outbox.send_text(text(400)));
        assert!(outbox.is_open());
    }

    #[test]
    fn messages_are_taken_in_the_order_they_were_posted() {
        let (outbox, taker) = new(100, 1_000_000);
        for i in 0..50 {
            assert!(outbox.send_text(i.to_string().into()));
        }
        let taken: Vec<String> = std::iter::from_fn(|| taker.line().pop()).map(|t| t.as_str().to_owned()).collect();
        assert_eq!(taken, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn an_emptied_outbox_gives_its_buffer_back() {
        let (outbox, taker) = new(100, 1_000_000);
        for _ in 0..50 {
            outbox.send_text(text(10));
        }
        while taker.line().pop().is_some() {}
        assert!(outbox.0.line().capacity() <= 4);
    }

    #[test]
    fn nothing_is_taken_once_the_driver_is_gone() {
        let (outbox, taker) = new(100, 1_000_000);
        assert!(outbox.send_text(text(10)));
        drop(taker);
        assert!(!outbox.is_open());
        assert!(!outbox.send_text(text(10)));
        assert_eq!(outbox.queued_bytes(), 0, "what was queued is freed");
    }

    #[tokio::test]
    async fn the_driver_wakes_for_a_message_posted_while_it_waits() {
        let (outbox, taker) = new(100, 1_000_000);
        let waiting = tokio::spawn(async move {
            match taker.next().await {
                Next::Write => taker.line().pop().map(|text| text.as_str().to_owned()),
                Next::Stop => None,
            }
        });
        tokio::task::yield_now().await;
        assert!(outbox.send_text("hello".into()));
        let taken = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert_eq!(taken.ok().and_then(Result::ok).flatten().as_deref(), Some("hello"));
    }

    #[tokio::test]
    async fn a_close_wakes_the_driver_even_with_messages_queued() {
        let (outbox, taker) = new(100, 1_000_000);
        assert!(outbox.send_text(text(10)));
        outbox.close(CLOSE_POLICY, "test");
        assert!(matches!(taker.next().await, Next::Stop));
        assert_eq!(taker.line().pop().as_deref(), Some("xxxxxxxxxx"), "what was queued can still be flushed");
    }

    /// A server-side WebSocket over an in-process pipe of `buffer` bytes, so that any frame
    /// larger than that is written in parts, and the client's end.
    async fn pipe(buffer: usize) -> (Box<dyn Wire>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(buffer);
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (Box::new(server), client)
    }

    async fn read_text(client: &mut WebSocketStream<DuplexStream>) -> String {
        match tokio::time::timeout(std::time::Duration::from_secs(5), client.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_message_posted_while_a_direct_write_is_half_flushed_waits_behind_it() {
        let (outbox, taker) = new(100, 1_000_000);
        let (server, mut client) = pipe(64).await;
        taker.attach(server);
        assert!(outbox.send_text(text(1_000)), "written straight, in part");
        assert!(outbox.send_text("after".into()));
        assert_eq!(outbox.0.line().queued(), (1, 5), "queued behind the unfinished write, not written over it");
        assert!(taker.has_work());
        let driver = async {
            while taker.has_work() {
                taker.write_queued().await.unwrap();
            }
        };
        let reader = async { (read_text(&mut client).await, read_text(&mut client).await) };
        let ((), (first, second)) = tokio::join!(driver, reader);
        assert_eq!((first.len(), second.as_str()), (1_000, "after"));
    }

    #[tokio::test]
    async fn a_message_into_a_free_socket_is_written_by_its_sender_without_the_driver() {
        let (outbox, taker) = new(100, 1_000_000);
        let (server, mut client) = pipe(4_096).await;
        taker.attach(server);
        assert!(outbox.send_text("hello".into()));
        assert!(!taker.has_work(), "nothing left for the driver");
        assert_eq!(read_text(&mut client).await, "hello");
    }

    #[tokio::test]
    async fn a_post_never_waits_for_a_client_that_stopped_reading() {
        let (outbox, taker) = new(10, 1_000_000);
        let (server, _client) = pipe(64).await;
        taker.attach(server);
        let taken = (0..100).take_while(|_| outbox.send_text(text(1_000))).count();
        assert_eq!(taken, 11, "one written in part, ten queued, then the socket is closed");
        assert_eq!(outbox.close_frame().map(|(code, _)| code), Some(CLOSE_POLICY));
    }

    #[tokio::test]
    async fn a_message_posted_behind_queued_ones_waits_its_turn_even_when_the_socket_is_free() {
        let (outbox, taker) = new(100, 1_000_000);
        assert!(outbox.send_text("first".into()), "queued before the socket is attached");
        let (server, mut client) = pipe(4_096).await;
        taker.attach(server);
        assert!(outbox.send_text("second".into()));
        assert_eq!(outbox.0.line().queued(), (2, 11), "queued behind, not written past the queue");
        taker.write_queued().await.unwrap();
        assert_eq!((read_text(&mut client).await, read_text(&mut client).await), ("first".into(), "second".into()));
    }
}
