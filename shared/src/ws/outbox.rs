//! One socket's send queue: anyone may post to it, only the socket's driver takes from it.
//!
//! A post to an empty queue first tries the socket itself (see [`super::socket`]): written at
//! once when the socket is free, in order, with no wake-up of the driver. Everything else is
//! queued for the driver.
//!
//! It is a plain queue under a short lock plus the driver's waker, rather than a channel,
//! because most sockets sit idle with nothing queued: an empty outbox holds no buffer at all,
//! and one that emptied after a burst gives its buffer back. The queue is bounded in messages
//! and in bytes; a post that would go over either closes the socket (its client stopped
//! reading), so nobody ever waits on a slow client.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::socket::{Direct, DirectWrite};
use super::{error_reply, SocketLimits, CLOSE_POLICY};
use crate::error::Rejected;
use crate::metrics::ErrorCounter;
use crate::protocol::encode;

/// An emptied queue keeps a buffer for this many messages; a larger one is given back.
const KEPT_SLOTS: usize = 4;

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

/// The way to send to one socket from anywhere. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

/// What an outbox and its driver share: one allocation per socket.
struct Shared {
    id: ConnId,
    capacity: usize,
    max_bytes: usize,
    queue: Mutex<Queue>,
    /// How many messages the queue holds, readable without the lock: the driver looks at an
    /// empty queue far more often than it finds something in it.
    queued: AtomicUsize,
    /// The driver, waiting for something to write.
    writer: AtomicWaker,
    /// Set to close the socket (by us, by shutdown, or because its driver is gone).
    stopping: AtomicBool,
    /// A direct write left bytes the socket could not take yet: the driver must flush them.
    unflushed: AtomicBool,
    /// The close frame to send; the first reason given wins.
    close: OnceLock<(u16, &'static str)>,
    errors: ErrorCounter,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Utf8Bytes>,
    /// The socket, while its driver runs, for direct writes.
    socket: Option<Arc<dyn DirectWrite>>,
    /// Bytes of text queued and not yet taken by the writer.
    bytes: usize,
    /// The driver is gone: nothing posted now would be written.
    closed: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("id", &self.0.id).finish_non_exhaustive()
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; if something did, the queue is still whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    /// The connection this outbox writes to.
    pub fn id(&self) -> ConnId {
        self.0.id
    }

    /// Queues a text frame. A socket whose queue is full, in messages or in bytes, is closed
    /// (it stopped reading); a message into an empty queue is always taken, however large.
    /// Returns whether the frame was queued.
    pub fn send_text(&self, mut text: Utf8Bytes) -> bool {
        let len = text.len();
        let mut queue = self.0.queue();
        if queue.closed {
            return false;
        }
        // Nothing waits before this message: try the socket itself. Under the queue's lock, so
        // that no other post can overtake it.
        let free = queue.messages.is_empty()
            && !self.0.unflushed.load(Ordering::Acquire)
            && !self.0.stopping.load(Ordering::Acquire);
        if let (true, Some(socket)) = (free, &queue.socket) {
            match socket.try_write(text) {
                Direct::Done => return true,
                Direct::Unflushed => {
                    // The rest is the driver's to write, with its own waker.
                    drop(queue);
                    self.0.unflushed.store(true, Ordering::Release);
                    self.0.writer.wake();
                    return true;
                }
                Direct::Busy(back) => text = back,
            }
        }
        let over_count = queue.messages.len() >= self.0.capacity;
        let over_bytes = queue.bytes > 0 && queue.bytes.saturating_add(len) > self.0.max_bytes;
        if over_count || over_bytes {
            let (messages, bytes) = (queue.messages.len(), queue.bytes);
            drop(queue);
            tracing::warn!(conn = %self.0.id, messages, bytes, "send queue full; closing the slow socket");
            self.close(CLOSE_POLICY, "send queue full");
            return false;
        }
        queue.messages.push_back(text);
        queue.bytes += len;
        self.0.queued.fetch_add(1, Ordering::Release);
        drop(queue);
        self.0.writer.wake();
        true
    }

    /// Bytes queued for the socket and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.0.queue().bytes
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
        !self.0.stopping.load(Ordering::Acquire)
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

/// Creates the outbox of a new socket and the [`Taker`] its driver writes from. Sockets are
/// opened through [`super::Sockets::open`], which also closes them at shutdown.
pub(super) fn outbox(limits: &SocketLimits, errors: ErrorCounter) -> (Outbox, Taker) {
    let outbox = Outbox(Arc::new(Shared {
        id: ConnId::next(),
        capacity: limits.outbox_capacity.max(1),
        max_bytes: limits.outbox_max_bytes,
        queue: Mutex::new(Queue::default()),
        queued: AtomicUsize::new(0),
        writer: AtomicWaker::new(),
        stopping: AtomicBool::new(false),
        unflushed: AtomicBool::new(false),
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

/// The driver's end of an [`Outbox`]: takes what others posted, in order. When it is dropped
/// the outbox closes and what was still queued is freed.
pub struct Taker(Outbox);

impl Taker {
    /// The outbox this takes from, for the driver's own answers (queued behind the rest).
    pub fn outbox(&self) -> &Outbox {
        &self.0
    }

    /// The next thing to do: close the socket if asked to, else write the next queued message,
    /// waiting for one.
    pub(super) async fn next(&self) -> Next {
        self.until(|| self.ready()).await
    }

    /// Resolves once the socket is to be closed (to cut a stuck write short).
    pub(super) async fn stopped(&self) {
        self.until(|| self.is_stopping().then_some(())).await
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

    fn is_stopping(&self) -> bool {
        self.0 .0.stopping.load(Ordering::Acquire)
    }

    fn ready(&self) -> Option<Next> {
        if self.is_stopping() {
            Some(Next::Stop)
        } else if self.has_work() {
            Some(Next::Write)
        } else {
            None
        }
    }

    /// Whether something waits to be written: queued messages, or a direct write's remainder.
    pub(super) fn has_work(&self) -> bool {
        self.0 .0.queued.load(Ordering::Acquire) > 0 || self.0 .0.unflushed.load(Ordering::Acquire)
    }

    /// The driver flushed the socket: what a direct write left is gone.
    pub(super) fn flushed(&self) {
        self.0 .0.unflushed.store(false, Ordering::Release);
    }

    /// Lets senders write to `socket` directly from now on.
    pub(super) fn attach(&self, socket: Arc<dyn DirectWrite>) {
        self.0 .0.queue().socket = Some(socket);
    }

    /// The driver is done with the socket: no more direct writes, and the socket counts as
    /// closed for everyone who still holds the outbox.
    pub(super) fn detach(&self) {
        self.0 .0.stopping.store(true, Ordering::Release);
        self.0 .0.queue().socket = None;
    }

    /// The next queued message, if there is one.
    pub fn try_next(&self) -> Option<Utf8Bytes> {
        if self.0 .0.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut queue = self.0 .0.queue();
        let text = queue.messages.pop_front()?;
        self.0 .0.queued.fetch_sub(1, Ordering::Release);
        queue.bytes -= text.len();
        if queue.messages.is_empty() && queue.messages.capacity() > KEPT_SLOTS {
            queue.messages = VecDeque::new();
        }
        Some(text)
    }
}

impl Drop for Taker {
    fn drop(&mut self) {
        self.detach();
        let mut queue = self.0 .0.queue();
        queue.closed = true;
        queue.messages = VecDeque::new();
        self.0 .0.queued.store(0, Ordering::Release);
        queue.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Common;
    use crate::limits::Limits;

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
        assert!(taker.try_next().is_some());
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
        let taken: Vec<String> = std::iter::from_fn(|| taker.try_next()).map(|t| t.as_str().to_owned()).collect();
        assert_eq!(taken, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn an_emptied_outbox_gives_its_buffer_back() {
        let (outbox, taker) = new(100, 1_000_000);
        for _ in 0..50 {
            outbox.send_text(text(10));
        }
        while taker.try_next().is_some() {}
        assert!(outbox.0.queue().messages.capacity() <= KEPT_SLOTS);
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
                Next::Write => taker.try_next().map(|text| text.as_str().to_owned()),
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
        assert_eq!(taker.try_next().as_deref(), Some("xxxxxxxxxx"), "what was queued can still be flushed");
    }
}
