//! One WebSocket's life, the same for every service: a bounded outbox that anyone may post to,
//! keepalive pings, the frame size limit, and the close codes of the contract.
//!
//! Each socket is driven by one task that reads frames, hands text to the service's [`Session`],
//! and writes what others posted to its [`Outbox`]. A post to an empty outbox is written by the
//! poster itself when the socket takes it at once, so a relayed signal costs one task, not two;
//! nobody but the driver ever waits on the socket, so a slow client can only slow itself down:
//! when its outbox is full (in messages or in bytes) it is disconnected, and no write waits on
//! it without a bound. [`Sockets`] knows every open socket, so that shutdown can close them all.
//!
//! Layout: [`line`] (the socket and its queue under one lock, and the invariants that keep the
//! order), [`outbox`] (posting, and the driver's end), [`sockets`] (the open ones), [`poll`]
//! (the long-polling carriage: a second kind of socket under the same driver), and the driver
//! here.
//!
//! The driver also applies the socket's message rate (see [`crate::limits`]): a frame beyond it
//! is dropped with `rate-limited`, and a socket that keeps at it is closed with 1008.

mod line;
pub mod outbox;
pub mod poll;
pub mod sockets;

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use self::line::Wire;
use self::outbox::Next;
pub use self::outbox::{ConnId, Outbox, Taker};
pub use self::sockets::{Open, Sockets};
use crate::config::Common;
use crate::error::{ErrorCode, Rejected};
use crate::limits::{Limits, MessageRate};
use crate::protocol::{bad_message, encode, CommonMessage};

/// Close code: the server is going away (shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: a text frame was not valid UTF-8 (RFC 6455, 1007 "invalid frame payload data").
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code: a policy was broken: the client stopped reading and its queue filled up, or it
/// kept sending over its message rate.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a frame was over `MAX_MESSAGE_BYTES`.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: another connection presented the same ticket and took this one's place.
pub const CLOSE_REPLACED: u16 = 4000;

/// How long a close frame may take to leave before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The socket read buffer, which every idle socket keeps. ICE candidates (about 200 B) fit; an
/// offer (2 KB or more) takes a read or two more, and grows the buffer while it is read. Against
/// 2 KiB it took about 1 KiB off each idle socket and cost the relay nothing measurable.
const READ_BUFFER_BYTES: usize = 1024;

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
    /// `POLL_HOLD_SECS`: how long a long-polling GET waits for events; a session with no GET
    /// for twice as long has dropped.
    pub poll_hold: Duration,
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
            poll_hold: common.poll_hold,
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
    encode(&CommonMessage::Error {
        code: rejected.code,
        message: &message,
        retry_after_secs: rejected.retry_after_secs,
        retry_after_ms: rejected.retry_after_ms,
    })
}

/// The bytes a character takes in a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{08}' | '\u{0C}' | '\n' | '\r' | '\t' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

/// Close code: the instance is restarting; reconnect (to another one) and resume.
pub const CLOSE_RESTART: u16 = 1012;

/// The close frame (code, reason) of a drain's [`rules::Closing`].
pub fn drain_close(closing: rules::Closing) -> (u16, &'static str) {
    match closing {
        rules::Closing::Restart => (CLOSE_RESTART, "server restarting; reconnect and resume"),
        rules::Closing::GoingAway => (CLOSE_GOING_AWAY, "server shutting down"),
    }
}

/// What a service does with one socket. The driver calls it for every text frame, and once
/// when the socket is gone (closed by either side, dropped, or shut down).
pub trait Session: Send + 'static {
    /// A text frame within the size limit arrived.
    fn on_text(&mut self, text: &str) -> impl Future<Output = ()> + Send;
    /// The socket is gone, as `ending` says; release everything it held.
    fn on_close(self, ending: Ending) -> impl Future<Output = ()> + Send;

    /// Whether the client understands the contract's error messages, so that the driver answers
    /// a frame it refuses (over the rate, binary, too large) with one. A protocol without them
    /// (matchbox's) says no: the refusal is only counted, and the frame dropped as before.
    fn hears_errors(&self) -> bool {
        true
    }
}

/// How a socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent a close frame, with this code if it gave one.
    ClientClosed(Option<u16>),
    /// The connection ended without a close frame: the network, a ping timeout, an error.
    Dropped,
    /// We closed it with this code.
    ServerClosed(u16),
}

impl Ending {
    /// Whether the client is gone for good, rather than away and likely to come back: it said
    /// goodbye (close code 1000 or 1001, or a close frame with no code), or we sent it away for
    /// anything other than a restart (1012).
    pub fn is_goodbye(self) -> bool {
        match self {
            Ending::ClientClosed(code) => matches!(code, None | Some(1000) | Some(1001)),
            Ending::Dropped => false,
            Ending::ServerClosed(code) => code != CLOSE_RESTART,
        }
    }
}

/// Why a socket's loop ended.
enum End {
    /// The client closed or the connection broke.
    Gone(Ending),
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

    fn judge(&mut self, now: Instant) -> Verdict {
        let now = now.into_std();
        if self.bucket.take(now) {
            Verdict::Admit
        } else if self.strikes.strike(now) {
            Verdict::Close
        } else {
            Verdict::Drop
        }
    }
}

/// Runs one upgraded connection as a WebSocket until it ends, lets the session clean up, and
/// closes the socket.
///
/// The socket's task lives as long as the socket, so its size is memory per connection: the
/// stream is made here rather than passed in (a moved-in argument takes its room twice), and
/// the rare steps (closing, pings, errors) are boxed so their futures take no room meanwhile.
pub async fn drive<S, T>(io: T, open: Open, session: S, limits: SocketLimits)
where
    S: Session,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(limits.websocket_config())).await;
    open.attach(Box::new(ws));
    run(open, session, limits).await;
}

/// Runs a socket whose carriage is attached to `open` (a WebSocket, or a long-polling session)
/// until it ends, lets the session clean up, and closes the carriage.
pub(crate) async fn run<S: Session>(open: Open, mut session: S, limits: SocketLimits) {
    let outbox = open.outbox();
    let mut keepalive = tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut rate = Rate::new(limits.rate);

    let end = loop {
        tokio::select! {
            biased;
            next = open.next() => match next {
                Next::Stop => {
                    let (code, reason) = outbox.close_frame().unwrap_or((CLOSE_GOING_AWAY, "server shutting down"));
                    // Deliver what was queued before the close (a final error, say) if the socket takes it.
                    if code != CLOSE_POLICY {
                        let _ = Box::pin(flush_queued(&open)).await;
                    }
                    break End::Close(code, reason.to_owned());
                }
                Next::Write => {
                    let written = tokio::select! {
                        result = open.write_queued() => result,
                        () = open.stopped() => continue,
                    };
                    if written.is_err() {
                        break End::Gone(Ending::Dropped);
                    }
                }
            },
            frame = open.read() => {
                last_heard = Instant::now();
                let frame = match frame {
                    None => break End::Gone(Ending::Dropped),
                    Some(Ok(Message::Close(frame))) => break End::Gone(Ending::ClientClosed(frame.map(|f| u16::from(f.code)))),
                    Some(Ok(frame)) => frame,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        let rejected = Rejected::new(
                            ErrorCode::TooLarge,
                            format!("a frame of {size} bytes is over the limit of {max_size}"),
                        );
                        outbox.errors().count(rejected.code);
                        if session.hears_errors() {
                            let reply = Message::Text(error_reply(&rejected).into());
                            let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, open.send(reply))).await;
                        }
                        break End::Close(CLOSE_TOO_BIG, "message too large".to_owned());
                    }
                    // A bad payload leaves the connection intact, so the client can be told why.
                    Some(Err(WsError::Utf8(err))) => {
                        tracing::debug!(%err, "text frame is not UTF-8; closing the socket");
                        break End::Close(CLOSE_INVALID_DATA, "invalid UTF-8".to_owned());
                    }
                    Some(Err(err)) => {
                        tracing::debug!(%err, "socket error");
                        break End::Gone(Ending::Dropped);
                    }
                };
                // Every frame counts against the rate, control frames included; only data
                // frames are answered when dropped.
                let is_data = matches!(frame, Message::Text(_) | Message::Binary(_));
                match rate.judge(last_heard) {
                    Verdict::Admit => {}
                    Verdict::Drop => {
                        if is_data {
                            refuse(&session, outbox, &rate_limited(limits.rate, rate.bucket.wait_ms()));
                        }
                        continue;
                    }
                    Verdict::Close => {
                        tracing::info!(conn = %outbox.id(), "message rate exceeded again and again; closing the socket");
                        if is_data {
                            refuse(&session, outbox, &rate_limited(limits.rate, rate.bucket.wait_ms()));
                        }
                        let _ = Box::pin(flush_queued(&open)).await;
                        break End::Close(CLOSE_POLICY, "too many messages".to_owned());
                    }
                }
                match frame {
                    Message::Text(text) => session.on_text(text.as_str()).await,
                    Message::Binary(_) => {
                        refuse(&session, outbox, &bad_message("binary frames are not accepted; send JSON text"));
                    }
                    _ => {} // ping, pong: liveness is all we need from them
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= limits.ping_interval * 2 {
                    tracing::debug!("no answer to keepalive pings; dropping the socket");
                    break End::Gone(Ending::Dropped);
                }
                // A socket that cannot take a ping within an interval is as good as gone.
                let sent = tokio::select! {
                    sent = Box::pin(tokio::time::timeout(limits.ping_interval, open.send(Message::Ping(Default::default())))) => sent,
                    () = open.stopped() => continue,
                };
                if !matches!(sent, Ok(Ok(()))) {
                    break End::Gone(Ending::Dropped);
                }
            }
        }
    };

    // From here on nobody writes to the socket but this driver, and posts are dropped.
    let socket = open.detach();
    // Release what the socket held first, so that its partner hears at once even if the
    // closing handshake below takes its full timeout.
    let ending = match &end {
        End::Gone(ending) => *ending,
        End::Close(code, _) => Ending::ServerClosed(*code),
    };
    Box::pin(session.on_close(ending)).await;
    if let (End::Close(code, reason), Some(socket)) = (end, socket) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, close(socket, frame))).await;
    }
}

/// Refuses a frame: with the contract's error for a client that hears them, else only counted.
fn refuse<S: Session>(session: &S, outbox: &Outbox, rejected: &Rejected) {
    if session.hears_errors() {
        outbox.reject(rejected);
    } else {
        outbox.errors().count(rejected.code);
    }
}

/// The answer to a frame over the rate.
fn rate_limited(rate: MessageRate, wait_ms: u64) -> Rejected {
    Rejected::new(
        ErrorCode::RateLimited,
        format!(
            "over {} messages per second (burst {}); message dropped, and the socket is closed if this goes on",
            rate.per_sec, rate.burst
        ),
    )
    .retry_after_ms(wait_ms)
}

/// Writes everything still queued, within the close timeout.
async fn flush_queued(queue: &Taker) -> Result<(), WsError> {
    let drain = async {
        while queue.has_work() {
            queue.write_queued().await?;
        }
        Ok(())
    };
    tokio::time::timeout(CLOSE_TIMEOUT, drain).await.unwrap_or(Ok(()))
}

/// Sends a close frame and waits for the client's, dropping whatever else it sends: closing a
/// socket with unread input resets the connection, and the client would lose the close frame
/// (and the error before it) that tell it why.
async fn close(mut socket: Box<dyn Wire>, frame: CloseFrame) -> Result<(), WsError> {
    socket.send(Message::Close(Some(frame))).await?;
    while let Some(Ok(_)) = socket.next().await {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

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

    /// A session that ignores what it hears.
    struct Quiet;

    impl Session for Quiet {
        async fn on_text(&mut self, _text: &str) {}
        async fn on_close(self, _ending: Ending) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_through_partial_writes_each_arrive_in_the_order_they_were_sent() {
        const SENDERS: usize = 4;
        const EACH: usize = 400;
        let limits = SocketLimits {
            outbox_capacity: SENDERS * EACH,
            outbox_max_bytes: usize::MAX,
            ..SocketLimits::new(&Common::default(), &Limits::unlimited())
        };
        // A pipe far smaller than most frames: nearly every write is taken in parts.
        let (server, client) = tokio::io::duplex(64);
        let (outbox, open) = Sockets::default().open(&limits, Default::default());
        let driver = tokio::spawn(drive(server, open, Quiet, limits));
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    for seq in 0..EACH {
                        let padding = "x".repeat((sender * 131 + seq * 37) % 700);
                        assert!(outbox.send_text(format!("{sender} {seq} {padding}").into()));
                        if seq % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let mut next_seq = [0; SENDERS];
        for received in 0..SENDERS * EACH {
            if received % 97 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await; // a reader that lags now and then
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), client.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = frame else { panic!("frame {received}: {frame:?}") };
            let mut fields = text.as_str().split(' ');
            let sender: usize = fields.next().unwrap().parse().unwrap();
            let seq: usize = fields.next().unwrap().parse().unwrap();
            assert_eq!(seq, next_seq[sender], "sender {sender}'s messages out of order");
            next_seq[sender] += 1;
        }
        assert_eq!(next_seq, [EACH; SENDERS]);
        for sender in senders {
            sender.await.unwrap();
        }
        outbox.close(CLOSE_GOING_AWAY, "test over");
        let close = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
        assert!(
            matches!(close, Ok(Some(Ok(Message::Close(Some(frame))))) if u16::from(frame.code) == CLOSE_GOING_AWAY)
        );
        drop(client);
        driver.await.unwrap();
    }
}
