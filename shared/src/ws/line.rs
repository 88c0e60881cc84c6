//! One socket's line: the WebSocket and the messages waiting to be written to it, under one
//! lock. Every way a message can take (written straight by its sender, queued and written by
//! the socket's driver) goes through this lock, so the order is simply the order in which posts
//! took it.
//!
//! The invariants, which the code below keeps and the tests check:
//! 1. **One lock.** The socket and its queue are guarded together; nothing else is locked while
//!    it is held, and no await happens under it: each operation is one non-blocking poll.
//! 2. **Order.** A sender writes straight to the socket only when nothing is queued and no
//!    earlier write is still being flushed; otherwise it queues. The driver takes from the
//!    front of the queue and writes under the same lock, so nothing can slip in between.
//! 3. **Only the driver waits.** A sender polls with a waker that wakes nobody; whenever such a
//!    poll leaves work undone (the socket is full, or a write is half flushed) the work is
//!    recorded here (`queue`, `unflushed`) and the driver is woken to finish it with its own
//!    waker. A slow client therefore slows nobody but itself.
//! 4. **The driver ends it.** Once the driver detaches the socket, nothing more is written to it
//!    by anyone else; once the driver is gone, posts are refused and the queue is freed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// How many queued messages the driver writes before it flushes the socket.
const WRITE_BATCH: usize = 64;
/// An emptied queue keeps a buffer for this many messages; a larger one is given back, since
/// most sockets sit idle most of the time.
const KEPT_SLOTS: usize = 4;

/// A WebSocket of any transport, as the line holds it.
pub(super) trait Wire:
    Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin + Send
{
}

impl<T> Wire for T where T: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin + Send {}

/// What became of a post.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Posted {
    /// Written to the socket and flushed (or the socket is broken, which its driver finds on
    /// its next read: a message to a dying socket is lost either way).
    Written,
    /// Written, but not all flushed: the driver must finish the flush.
    Unflushed,
    /// Queued for the driver.
    Queued,
    /// Refused: the queue is full in messages or in bytes.
    Full,
    /// Refused: the driver is gone.
    Closed,
}

impl Posted {
    /// Whether the driver has work to do because of this post.
    pub(super) fn wakes_driver(&self) -> bool {
        matches!(self, Posted::Unflushed | Posted::Queued)
    }
}

/// The socket, while its driver runs, and what waits to be written to it.
#[derive(Default)]
pub(super) struct Line {
    socket: Option<Box<dyn Wire>>,
    queue: VecDeque<Utf8Bytes>,
    /// Bytes of text queued.
    bytes: usize,
    /// A sender's write left bytes the socket could not take yet.
    unflushed: bool,
    /// The driver is gone.
    closed: bool,
}

/// The bounds of a queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// At most this many messages.
    pub(super) messages: usize,
    /// At most this many bytes, except that an empty queue takes any one message.
    pub(super) bytes: usize,
}

impl Line {
    /// Posts one text frame: written at once if nothing waits before it and the socket takes
    /// it, else queued within `bounds`. `direct` is false once the socket is closing, so that
    /// everything then goes through the driver.
    pub(super) fn post(&mut self, mut text: Utf8Bytes, bounds: Bounds, direct: bool) -> Posted {
        if self.closed {
            return Posted::Closed;
        }
        if direct && self.queue.is_empty() && !self.unflushed {
            if let Some(socket) = self.socket.as_mut() {
                match try_write(socket, text) {
                    Ok(Posted::Unflushed) => {
                        self.unflushed = true;
                        return Posted::Unflushed;
                    }
                    Ok(posted) => return posted,
                    Err(back) => text = back,
                }
            }
        }
        let over_count = self.queue.len() >= bounds.messages;
        let over_bytes = self.bytes > 0 && self.bytes.saturating_add(text.len()) > bounds.bytes;
        if over_count || over_bytes {
            return Posted::Full;
        }
        self.bytes += text.len();
        self.queue.push_back(text);
        Posted::Queued
    }

    /// Whether the driver has something to write: queued messages, or a flush left undone.
    pub(super) fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// Messages and bytes queued.
    pub(super) fn queued(&self) -> (usize, usize) {
        (self.queue.len(), self.bytes)
    }

    /// The driver's write: what is queued, up to a batch, then a flush (which also finishes a
    /// sender's unflushed write).
    pub(super) fn write_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let Some(socket) = self.socket.as_mut() else { return Poll::Ready(Ok(())) };
        for _ in 0..WRITE_BATCH {
            if self.queue.is_empty() {
                break;
            }
            ready!(socket.poll_ready_unpin(cx))?;
            let Some(text) = pop(&mut self.queue, &mut self.bytes) else { break };
            socket.start_send_unpin(Message::Text(text))?;
        }
        let flushed = ready!(socket.poll_flush_unpin(cx));
        self.unflushed = false;
        Poll::Ready(flushed)
    }

    /// The driver's own frame (a ping, a last error), sent ahead of the queue and flushed;
    /// `message` is taken once the socket accepts it.
    pub(super) fn send(&mut self, cx: &mut Context<'_>, message: &mut Option<Message>) -> Poll<Result<(), WsError>> {
        let Some(socket) = self.socket.as_mut() else { return Poll::Ready(Ok(())) };
        if message.is_some() {
            ready!(socket.poll_ready_unpin(cx))?;
            if let Some(message) = message.take() {
                socket.start_send_unpin(message)?;
            }
        }
        let flushed = ready!(socket.poll_flush_unpin(cx));
        self.unflushed = false;
        Poll::Ready(flushed)
    }

    /// The driver's read of the next frame from the client.
    pub(super) fn read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        match self.socket.as_mut() {
            Some(socket) => socket.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }

    /// Lets senders write to `socket` from now on.
    pub(super) fn attach(&mut self, socket: Box<dyn Wire>) {
        self.socket = Some(socket);
    }

    /// Hands the socket to the driver alone, to close it.
    pub(super) fn detach(&mut self) -> Option<Box<dyn Wire>> {
        self.socket.take()
    }

    /// The driver is gone: refuse posts from now on and free what waits.
    pub(super) fn close(&mut self) {
        self.socket = None;
        self.closed = true;
        self.queue = VecDeque::new();
        self.bytes = 0;
        self.unflushed = false;
    }

    /// The next queued message, taken without writing it.
    #[cfg(test)]
    pub(super) fn pop(&mut self) -> Option<Utf8Bytes> {
        pop(&mut self.queue, &mut self.bytes)
    }

    /// The queue's buffer, in messages.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

/// Takes the front of a queue; an emptied queue gives back a large buffer.
fn pop(queue: &mut VecDeque<Utf8Bytes>, bytes: &mut usize) -> Option<Utf8Bytes> {
    let text = queue.pop_front()?;
    *bytes -= text.len();
    if queue.is_empty() && queue.capacity() > KEPT_SLOTS {
        *queue = VecDeque::new();
    }
    Some(text)
}

/// A sender's write: `Err` gives the text back when the socket cannot take it now.
fn try_write(socket: &mut Box<dyn Wire>, text: Utf8Bytes) -> Result<Posted, Utf8Bytes> {
    // Nobody waits on this write: a Pending below leaves the work to the driver (invariant 3).
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut **socket).poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(_)) => return Ok(Posted::Written),
        Poll::Pending => return Err(text),
    }
    if Pin::new(&mut **socket).start_send(Message::Text(text)).is_err() {
        return Ok(Posted::Written);
    }
    match Pin::new(&mut **socket).poll_flush(&mut cx) {
        Poll::Pending => Ok(Posted::Unflushed),
        Poll::Ready(_) => Ok(Posted::Written),
    }
}
