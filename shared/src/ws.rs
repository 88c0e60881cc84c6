//! One WebSocket's life, the same for every service: a bounded outbox that anyone may post to,
//! keepalive pings, the frame size limit, and the close codes of the contract.
//!
//! Each socket is driven by one task that reads frames, hands text to the service's [`Session`],
//! and writes what others posted to its [`Outbox`]. Nobody else touches the socket, so a slow
//! client can only slow itself down: when its outbox is full (in messages or in bytes) it is
//! disconnected, and no write of the driver waits on it without a bound.
//!
//! The driver also applies the socket's message rate (see [`crate::limits`]): a frame beyond it
//! is dropped with `rate-limited`, and a socket that keeps at it is closed with 1008.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::config::Common;
use crate::error::{ErrorCode, Rejected};
use crate::limits::{Limits, MessageRate};
use crate::metrics::ErrorCounter;
use crate::protocol::{bad_message, encode, CommonMessage};

/// Close code: the server is going away (shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: a policy was broken: the client stopped reading and its queue filled up, or it
/// kept sending over its message rate.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a frame was over `MAX_MESSAGE_BYTES`.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: another connection presented the same ticket and took this one's place.
pub const CLOSE_REPLACED: u16 = 4000;

/// How many queued messages the writer sends before it flushes the socket.
const WRITE_BATCH: usize = 64;
/// How long a close frame may take to leave before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The socket read buffer. Most frames are small; a larger frame grows the buffer only for as
/// long as it is read, so an idle socket costs little.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Limits of one socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// The largest text frame accepted, in bytes.
    pub max_message_bytes: usize,
    /// Keepalive ping interval; a socket silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// Messages queued for the socket before it counts as too slow.
    pub outbox_capacity: usize,
    /// Bytes queued for the socket before it counts as too slow (a message into an empty queue
    /// is always taken).
    pub outbox_max_bytes: usize,
    /// How many frames the client may send.
    pub rate: MessageRate,
}

impl SocketLimits {
    /// The socket limits of a service: its common settings and its abuse limits.
    pub fn new(common: &Common, limits: &Limits) -> Self {
        SocketLimits {
            max_message_bytes: common.max_message_bytes,
            ping_interval: common.ping_interval,
            outbox_capacity: common.outbox_capacity,
            outbox_max_bytes: limits.outbox_max_bytes,
            rate: limits.message_rate(),
        }
    }

    /// The tungstenite configuration these limits imply.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_message_bytes.saturating_mul(4).max(1 << 20))
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

/// The longest `message` an error reply carries, in bytes as sent (JSON-escaped). Longer ones
/// are cut: a message may quote what the client sent (a ticket's header, say), and an answer
/// should not echo a frame at length.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 256;

/// The error reply to a rejection, exactly as sent: its message cut, at a character boundary
/// and ending in `…`, so that it takes at most [`MAX_ERROR_MESSAGE_BYTES`] once JSON-escaped.
pub fn error_reply(rejected: &Rejected) -> String {
    let text = &rejected.message;
    if text.chars().map(escaped_len).sum::<usize>() <= MAX_ERROR_MESSAGE_BYTES {
        return encode(&CommonMessage::from(rejected));
    }
    let mut message = String::new();
    let mut len = '…'.len_utf8();
    for c in text.chars() {
        len += escaped_len(c);
        if len > MAX_ERROR_MESSAGE_BYTES {
            break;
        }
        message.push(c);
    }
    message.push('…');
    encode(&CommonMessage::Error { code: rejected.code, message: &message })
}

/// The bytes a character takes in a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{08}' | '\u{0C}' | '\n' | '\r' | '\t' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

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
pub struct Outbox {
    id: ConnId,
    tx: mpsc::Sender<Message>,
    /// Bytes of text queued and not yet taken by the writer.
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// Cancelled to close the socket; a child of the server's shutdown token.
    stop: CancellationToken,
    /// The close frame to send when `stop` fires for a reason of ours.
    close: Arc<OnceLock<(u16, &'static str)>>,
    errors: ErrorCounter,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Outbox {
    /// The connection this outbox writes to.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Queues a text frame. A socket whose queue is full, in messages or in bytes, is closed
    /// (it stopped reading); returns whether the frame was queued.
    pub fn send_text(&self, text: Utf8Bytes) -> bool {
        let len = text.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before.saturating_add(len) > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            tracing::warn!(conn = %self.id, queued_bytes = before, "send queue over its byte limit; closing the slow socket");
            self.close(CLOSE_POLICY, "send queue full");
            return false;
        }
        match self.tx.try_send(Message::Text(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                tracing::warn!(conn = %self.id, "send queue full; closing the slow socket");
                self.close(CLOSE_POLICY, "send queue full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                false
            }
        }
    }

    /// Bytes queued for the socket and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Queues a typed message.
    pub fn send<T: Serialize>(&self, message: &T) -> bool {
        self.send_text(encode(message).into())
    }

    /// Answers a refused request with the contract's error message (see [`error_reply`]).
    pub fn reject(&self, rejected: &Rejected) {
        self.errors.count(rejected.code);
        self.send_text(error_reply(rejected).into());
    }

    /// Closes the socket with `code` after what is already queued... or at once if it is stuck.
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.close.set((code, reason));
        self.stop.cancel();
    }

    /// Whether the socket is still open.
    pub fn is_open(&self) -> bool {
        !self.stop.is_cancelled() && !self.tx.is_closed()
    }
}

/// What a service does with one socket. The driver calls it for every text frame, and once
/// when the socket is gone (closed by either side, dropped, or shut down).
pub trait Session: Send + 'static {
    /// A text frame within the size limit arrived.
    fn on_text(&mut self, text: &str) -> impl Future<Output = ()> + Send;
    /// The socket is gone; release everything it held.
    fn on_close(self) -> impl Future<Output = ()> + Send;
}

/// Creates the outbox of a new socket and the receiving end its driver reads.
pub fn outbox(limits: &SocketLimits, shutdown: &CancellationToken, errors: ErrorCounter) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(limits.outbox_capacity.max(1));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        id: ConnId::next(),
        tx,
        queued_bytes: queued_bytes.clone(),
        max_bytes: limits.outbox_max_bytes,
        stop: shutdown.child_token(),
        close: Arc::new(OnceLock::new()),
        errors,
    };
    let inbox = Inbox {
        queue: Queue { rx, queued_bytes },
        stop: outbox.stop.clone(),
        close: outbox.close.clone(),
        outbox: outbox.clone(),
    };
    (outbox, inbox)
}

/// The driver's end of an [`Outbox`].
pub struct Inbox {
    queue: Queue,
    stop: CancellationToken,
    close: Arc<OnceLock<(u16, &'static str)>>,
    /// For the driver's own answers (rejections), queued behind what others posted.
    outbox: Outbox,
}

/// The receiving end of the send queue, keeping the byte count in step.
struct Queue {
    rx: mpsc::Receiver<Message>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Queue {
    async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        Some(self.taken(message))
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.rx.try_recv().ok().map(|message| self.taken(message))
    }

    fn taken(&self, message: Message) -> Message {
        if let Message::Text(text) = &message {
            self.queued_bytes.fetch_sub(text.len(), Ordering::AcqRel);
        }
        message
    }
}

/// Why a socket's loop ended.
enum End {
    /// The client closed or the connection broke.
    Gone,
    /// We close it with this frame.
    Close(u16, String),
}

/// What the rate limit says about one incoming frame.
enum Verdict {
    /// Within the rate: handle it.
    Admit,
    /// Over the rate: drop it.
    Drop,
    /// Over the rate too often: close the socket.
    Close,
}

/// The message rate of one socket: a token bucket, and the drops counted against it.
struct Rate {
    bucket: crate::limits::TokenBucket,
    strikes: crate::limits::Strikes,
}

impl Rate {
    fn new(rate: MessageRate) -> Self {
        let (bucket, strikes) = rate.start(Instant::now().into_std());
        Rate { bucket, strikes }
    }

    fn judge(&mut self) -> Verdict {
        let now = Instant::now().into_std();
        if self.bucket.take(now) {
            Verdict::Admit
        } else if self.strikes.strike(now) {
            Verdict::Close
        } else {
            Verdict::Drop
        }
    }
}

/// Runs one socket until it ends, lets the session clean up, and closes the socket.
pub async fn drive<S, T>(mut ws: WebSocketStream<T>, mut inbox: Inbox, mut session: S, limits: SocketLimits)
where
    S: Session,
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut keepalive = tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut rate = Rate::new(limits.rate);

    let end = loop {
        tokio::select! {
            biased;
            () = inbox.stop.cancelled() => {
                let (code, reason) = inbox.close.get().copied().unwrap_or((CLOSE_GOING_AWAY, "server shutting down"));
                // Deliver what was queued before the close (a final error, say) if the socket takes it.
                if code != CLOSE_POLICY {
                    let _ = flush_queued(&mut ws, &mut inbox.queue).await;
                }
                break End::Close(code, reason.to_owned());
            }
            queued = inbox.queue.recv() => {
                let Some(first) = queued else { break End::Gone };
                let written = tokio::select! {
                    result = write_batch(&mut ws, first, &mut inbox.queue) => result,
                    () = inbox.stop.cancelled() => continue,
                };
                if written.is_err() {
                    break End::Gone;
                }
            }
            frame = ws.next() => {
                last_heard = Instant::now();
                let frame = match frame {
                    None | Some(Ok(Message::Close(_))) => break End::Gone,
                    Some(Ok(frame)) => frame,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        let rejected = Rejected::new(
                            ErrorCode::TooLarge,
                            format!("a frame of {size} bytes is over the limit of {max_size}"),
                        );
                        inbox.outbox.errors.count(rejected.code);
                        let reply = Message::Text(error_reply(&rejected).into());
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, send_now(&mut ws, reply)).await;
                        break End::Close(CLOSE_TOO_BIG, "message too large".to_owned());
                    }
                    Some(Err(err)) => {
                        tracing::debug!(%err, "socket error");
                        break End::Gone;
                    }
                };
                // Every frame counts against the rate, control frames included; only data
                // frames are answered when dropped.
                let is_data = matches!(frame, Message::Text(_) | Message::Binary(_));
                match rate.judge() {
                    Verdict::Admit => {}
                    Verdict::Drop => {
                        if is_data {
                            inbox.outbox.reject(&rate_limited(limits.rate));
                        }
                        continue;
                    }
                    Verdict::Close => {
                        tracing::info!("message rate exceeded again and again; closing the socket");
                        if is_data {
                            inbox.outbox.reject(&rate_limited(limits.rate));
                        }
                        let _ = flush_queued(&mut ws, &mut inbox.queue).await;
                        break End::Close(CLOSE_POLICY, "too many messages".to_owned());
                    }
                }
                match frame {
                    Message::Text(text) => session.on_text(text.as_str()).await,
                    Message::Binary(_) => {
                        inbox.outbox.reject(&bad_message("binary frames are not accepted; send JSON text"));
                    }
                    _ => {} // ping, pong: liveness is all we need from them
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= limits.ping_interval * 2 {
                    tracing::debug!("no answer to keepalive pings; dropping the socket");
                    break End::Gone;
                }
                // A socket that cannot take a ping within an interval is as good as gone.
                let sent = tokio::select! {
                    sent = tokio::time::timeout(limits.ping_interval, send_now(&mut ws, Message::Ping(Default::default()))) => sent,
                    () = inbox.stop.cancelled() => continue,
                };
                if !matches!(sent, Ok(Ok(()))) {
                    break End::Gone;
                }
            }
        }
    };

    // Release what the socket held first, so that its partner hears at once even if the
    // closing handshake below takes its full timeout.
    session.on_close().await;
    if let End::Close(code, reason) = end {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close_handshake(&mut ws, frame)).await;
    }
}

/// Sends our close frame, then reads (and drops) what the client still sends until its close
/// reply: closing a socket with unread input resets the connection, and the client would lose
/// the close frame (and the error before it) that tell it why.
async fn close_handshake<T>(ws: &mut WebSocketStream<T>, frame: CloseFrame) -> Result<(), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    ws.close(Some(frame)).await?;
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}

/// The answer to a frame over the rate.
fn rate_limited(rate: MessageRate) -> Rejected {
    Rejected::new(
        ErrorCode::RateLimited,
        format!(
            "over {} messages per second (burst {}); message dropped, and the socket is closed if this goes on",
            rate.per_sec, rate.burst
        ),
    )
}

/// Sends one message (or encodable value) straight to the socket.
async fn send_now<T, M>(ws: &mut WebSocketStream<T>, message: M) -> Result<(), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
    M: IntoFrame,
{
    ws.send(message.into_frame()).await
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once.
async fn write_batch<T>(ws: &mut WebSocketStream<T>, first: Message, queue: &mut Queue) -> Result<(), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(first).await?;
    for _ in 1..WRITE_BATCH {
        match queue.try_recv() {
            Some(message) => ws.feed(message).await?,
            None => break,
        }
    }
    ws.flush().await
}

/// Writes everything still queued, within the close timeout.
async fn flush_queued<T>(ws: &mut WebSocketStream<T>, queue: &mut Queue) -> Result<(), WsError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let drain = async {
        while let Some(message) = queue.try_recv() {
            ws.feed(message).await?;
        }
        ws.flush().await
    };
    tokio::time::timeout(CLOSE_TIMEOUT, drain).await.unwrap_or(Ok(()))
}

/// Things the driver writes directly.
trait IntoFrame {
    fn into_frame(self) -> Message;
}

impl IntoFrame for Message {
    fn into_frame(self) -> Message {
        self
    }
}

impl IntoFrame for &CommonMessage<'_> {
    fn into_frame(self) -> Message {
        Message::Text(encode(self).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(capacity: usize, max_bytes: usize) -> SocketLimits {
        let limits = Limits { outbox_max_bytes: max_bytes, ..Limits::default() };
        SocketLimits { outbox_capacity: capacity, ..SocketLimits::new(&Common::default(), &limits) }
    }

    fn text(len: usize) -> Utf8Bytes {
        "x".repeat(len).into()
    }

    #[test]
    fn the_outbox_takes_messages_up_to_its_byte_limit() {
        let (outbox, _inbox) = outbox(&limits(100, 1_000), &CancellationToken::new(), ErrorCounter::default());
        assert!(outbox.send_text(text(600)));
        assert!(outbox.send_text(text(399)), "just below the limit");
        assert!(outbox.send_text(text(1)), "exactly at the limit");
        assert_eq!(outbox.queued_bytes(), 1_000);
        assert!(outbox.is_open());
    }

    #[test]
    fn one_byte_over_the_outbox_byte_limit_closes_the_socket_with_1008() {
        let (outbox, inbox) = outbox(&limits(100, 1_000), &CancellationToken::new(), ErrorCounter::default());
        assert!(outbox.send_text(text(1_000)));
        assert!(!outbox.send_text(text(1)));
        assert!(!outbox.is_open());
        assert_eq!(inbox.close.get().map(|(code, _)| *code), Some(CLOSE_POLICY));
        assert_eq!(outbox.queued_bytes(), 1_000, "the refused message is not counted");
    }

    #[test]
    fn a_message_larger_than_the_byte_limit_still_goes_into_an_empty_outbox() {
        let (outbox, _inbox) = outbox(&limits(100, 1_000), &CancellationToken::new(), ErrorCounter::default());
        assert!(outbox.send_text(text(5_000)));
        assert!(outbox.is_open());
    }

    #[test]
    fn the_outbox_takes_messages_up_to_its_capacity_and_closes_one_above() {
        let (outbox, inbox) = outbox(&limits(3, 1_000_000), &CancellationToken::new(), ErrorCounter::default());
        assert!(outbox.send_text(text(1)));
        assert!(outbox.send_text(text(1)), "just below the capacity");
        assert!(outbox.send_text(text(1)), "exactly at the capacity");
        assert!(outbox.is_open());
        assert!(!outbox.send_text(text(1)));
        assert_eq!(inbox.close.get().map(|(code, _)| *code), Some(CLOSE_POLICY));
        assert_eq!(outbox.queued_bytes(), 3);
    }

    #[test]
    fn error_replies_are_cut_to_their_maximum_at_a_character_boundary() {
        let short = Rejected::new(ErrorCode::BadTicket, "é".repeat(MAX_ERROR_MESSAGE_BYTES / 2));
        let reply: serde_json::Value = serde_json::from_str(&error_reply(&short)).unwrap();
        assert_eq!(reply["message"].as_str().unwrap().len(), MAX_ERROR_MESSAGE_BYTES, "at the limit: kept whole");
        let long = Rejected::new(ErrorCode::BadTicket, format!("x{}", "é".repeat(MAX_ERROR_MESSAGE_BYTES)));
        let reply: serde_json::Value = serde_json::from_str(&error_reply(&long)).unwrap();
        let message = reply["message"].as_str().unwrap();
        assert!(message.len() <= MAX_ERROR_MESSAGE_BYTES && message.ends_with('…'), "{message}");
        assert_eq!(reply["code"], "bad-ticket");
    }

    #[test]
    fn error_replies_are_cut_by_their_escaped_length() {
        // Backslashes and control characters take more room once escaped; the found-by-fuzzing case.
        for filler in ["\\", "\"", "\u{1}", "\n"] {
            let rejected = Rejected::new(ErrorCode::BadTicket, filler.repeat(MAX_ERROR_MESSAGE_BYTES));
            let reply = error_reply(&rejected);
            let empty = error_reply(&Rejected::new(ErrorCode::BadTicket, ""));
            assert!(reply.len() - empty.len() <= MAX_ERROR_MESSAGE_BYTES, "{filler:?}: {reply}");
            assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok());
        }
    }

    #[test]
    fn bytes_taken_by_the_writer_are_free_again() {
        let (outbox, mut inbox) = outbox(&limits(100, 1_000), &CancellationToken::new(), ErrorCounter::default());
        assert!(outbox.send_text(text(1_000)));
        assert!(inbox.queue.try_recv().is_some());
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.send_text(text(600)));
        assert!(outbox.send_text(text(400)));
        assert!(outbox.is_open());
    }
}
