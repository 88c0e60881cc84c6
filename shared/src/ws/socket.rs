//! The WebSocket itself, behind a short lock, so that a message can go out by the fastest way
//! there is: the sender writes it straight to the socket when nothing is queued before it and
//! the socket takes it without waiting; otherwise it is queued and the socket's driver writes it.
//!
//! A relayed signal then costs one task (the sender's) instead of two: no wake-up of the
//! receiver's driver, no second poll of everything it waits on. The lock is never held across
//! an await: each operation is one non-blocking poll under it. Senders only ever `try_lock`, so
//! a busy or stuck socket makes them queue, never wait; the driver is the only one that waits
//! on the socket, with its own waker, so a slow client still slows nobody but itself.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{ready, Context, Poll, Waker};

use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::outbox::Taker;

/// How many queued messages the driver writes before it flushes the socket.
const WRITE_BATCH: usize = 64;

/// What a direct write did.
pub(super) enum Direct {
    /// Written and flushed (or the socket is broken, which its driver will find on its next
    /// read: a message to a dying socket is lost either way).
    Done,
    /// Taken, but the socket could not take all of it now: the driver must finish the flush.
    Unflushed,
    /// Not taken: the socket is busy or full; queue it.
    Busy(Utf8Bytes),
}

/// A socket that senders may write to directly; see [`Socket`].
pub(super) trait DirectWrite: Send + Sync {
    /// Writes `text` if the socket is free and takes it without waiting.
    fn try_write(&self, text: Utf8Bytes) -> Direct;
}

/// One WebSocket, shared by its driver and the senders that write to it directly.
pub(super) struct Socket<T>(Mutex<WebSocketStream<T>>);

impl<T> Socket<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) fn new(ws: WebSocketStream<T>) -> Self {
        Socket(Mutex::new(ws))
    }

    fn lock(&self) -> MutexGuard<'_, WebSocketStream<T>> {
        // No poll panics while holding the lock; if one did, the stream is as good as before.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next frame from the client.
    pub(super) async fn next(&self) -> Option<Result<Message, WsError>> {
        poll_fn(|cx| self.lock().poll_next_unpin(cx)).await
    }

    /// Sends one frame and flushes it.
    pub(super) async fn send(&self, message: Message) -> Result<(), WsError> {
        let mut message = Some(message);
        poll_fn(|cx| {
            let mut ws = self.lock();
            if message.is_some() {
                ready!(ws.poll_ready_unpin(cx))?;
                if let Some(message) = message.take() {
                    ws.start_send_unpin(message)?;
                }
            }
            ws.poll_flush_unpin(cx)
        })
        .await
    }

    /// Writes what is queued for the socket, up to a batch, then flushes, and finishes a flush
    /// a direct write left undone. Popping and writing happen under the socket's lock, so that
    /// no direct write can slip in between a message taken from the queue and its write.
    pub(super) async fn write_queued(&self, queue: &Taker) -> Result<(), WsError> {
        poll_fn(|cx| {
            let mut ws = self.lock();
            for _ in 0..WRITE_BATCH {
                ready!(ws.poll_ready_unpin(cx))?;
                let Some(text) = queue.try_next() else { break };
                ws.start_send_unpin(Message::Text(text))?;
            }
            let flushed = ws.poll_flush_unpin(cx);
            if flushed.is_ready() {
                queue.flushed();
            }
            flushed
        })
        .await
    }

    /// Sends a close frame and waits for the client's, dropping whatever else it sends: closing
    /// a socket with unread input resets the connection, and the client would lose the close
    /// frame (and the error before it) that tell it why.
    pub(super) async fn close(&self, message: Message) -> Result<(), WsError> {
        self.send(message).await?;
        while let Some(Ok(_)) = self.next().await {}
        Ok(())
    }
}

impl<T> DirectWrite for Socket<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn try_write(&self, text: Utf8Bytes) -> Direct {
        let mut ws = match self.0.try_lock() {
            Ok(ws) => ws,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Direct::Busy(text),
        };
        // Nobody waits on a direct write: a Pending below leaves the work to the driver, which
        // is woken for it and polls again with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *ws).poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Direct::Done,
            Poll::Pending => return Direct::Busy(text),
        }
        if Pin::new(&mut *ws).start_send(Message::Text(text)).is_err() {
            return Direct::Done;
        }
        match Pin::new(&mut *ws).poll_flush(&mut cx) {
            Poll::Pending => Direct::Unflushed,
            Poll::Ready(_) => Direct::Done,
        }
    }
}
