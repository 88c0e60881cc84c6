//! One WebSocket client over plain TCP: resolve once, connect (from a chosen source address when
//! many connections must not share one), send text, receive text before a deadline.

use std::net::{IpAddr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// A client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// The client's read buffer. Tungstenite's default (128 KiB, zero-filled) would make tens of
/// thousands of idle client sockets cost gigabytes; our frames are at most a few KiB.
const CLIENT_READ_BUFFER_BYTES: usize = 4 * 1024;

/// What went wrong for one client. The variant name is the error's kind in reports.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not a `ws://host:port/path` this tool can reach.
    #[error("bad URL `{url}`: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// TCP connect or bind failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The WebSocket upgrade failed.
    #[error("handshake: {0}")]
    Handshake(tungstenite::Error),
    /// Reading or writing the socket failed.
    #[error("socket: {0}")]
    Socket(tungstenite::Error),
    /// Nothing (or not the expected message) came in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server closed the socket.
    #[error("closed by the server while waiting for {0}")]
    Closed(&'static str),
    /// A frame that is not valid JSON of the expected shape.
    #[error("malformed frame while waiting for {expected}: {detail}")]
    Malformed {
        /// What the client waited for.
        expected: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A well-formed message that does not belong here.
    #[error("unexpected `{got}` while waiting for {expected}")]
    Unexpected {
        /// What the client waited for.
        expected: &'static str,
        /// The message type that came.
        got: String,
    },
    /// The server answered with an error message.
    #[error("server error `{code}`: {message}")]
    Server {
        /// The contract's error code.
        code: String,
        /// Its explanation.
        message: String,
    },
    /// A relayed signal was altered, lost, duplicated or reordered.
    #[error("integrity: {0}")]
    Integrity(String),
}

impl ClientError {
    /// A short stable name for tallies.
    pub fn kind(&self) -> String {
        match self {
            ClientError::Url { .. } => "url".into(),
            ClientError::Connect(_) => "connect".into(),
            ClientError::Handshake(_) => "handshake".into(),
            ClientError::Socket(_) => "socket".into(),
            ClientError::Timeout(what) => format!("timeout ({what})"),
            ClientError::Closed(what) => format!("closed ({what})"),
            ClientError::Malformed { .. } => "malformed".into(),
            ClientError::Unexpected { got, .. } => format!("unexpected ({got})"),
            ClientError::Server { code, .. } => format!("server error ({code})"),
            ClientError::Integrity(_) => "integrity".into(),
        }
    }
}

/// A WebSocket URL resolved to one socket address.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    addr: SocketAddr,
}

impl Endpoint {
    /// Resolves `url` (`ws://` only: the targets are local). Unless `allow_remote`, the address
    /// must be a loopback one, so a mistyped URL cannot turn this tool on someone else's server.
    ///
    /// # Errors
    /// [`ClientError::Url`] when the URL is not usable.
    pub async fn resolve(url: &str, allow_remote: bool) -> Result<Endpoint, ClientError> {
        let bad = |reason: &str| ClientError::Url { url: url.to_owned(), reason: reason.to_owned() };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("ws") {
            return Err(bad("only ws:// URLs are supported"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| bad(&format!("cannot resolve: {err}")))?
            .collect();
        // Prefer IPv4: the source-address spreading works on 127.0.0.x.
        let addr = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| bad("no address"))?;
        if !allow_remote && !addr.ip().is_loopback() {
            return Err(bad("not a loopback address (pass --allow-remote to load a remote server)"));
        }
        Ok(Endpoint { url: url.to_owned(), addr })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a WebSocket, from `source` when given (bound before connecting, so connections can be
    /// spread over several local addresses and their port ranges).
    ///
    /// # Errors
    /// [`ClientError::Connect`] or [`ClientError::Handshake`].
    pub async fn connect(&self, source: Option<IpAddr>) -> Result<Ws, ClientError> {
        let stream = match source {
            None => TcpStream::connect(self.addr).await.map_err(ClientError::Connect)?,
            Some(ip) => {
                let socket = if self.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
                    .map_err(ClientError::Connect)?;
                socket.bind(SocketAddr::new(ip, 0)).map_err(ClientError::Connect)?;
                socket.connect(self.addr).await.map_err(ClientError::Connect)?
            }
        };
        // Signals are small and latency-bound: never wait for Nagle.
        stream.set_nodelay(true).map_err(ClientError::Connect)?;
        if source.is_some() {
            // Explicitly bound ports are not reused while in TIME_WAIT, so thousands of them
            // would block the next run for a minute: close these with a reset instead.
            stream.set_zero_linger().map_err(ClientError::Connect)?;
        }
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES).write_buffer_size(0);
        let (ws, _response) = tokio_tungstenite::client_async_with_config(self.url.as_str(), stream, Some(config))
            .await
            .map_err(ClientError::Handshake)?;
        Ok(ws)
    }
}

/// Sends one text frame and flushes it.
///
/// # Errors
/// [`ClientError::Socket`].
pub async fn send(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<(), ClientError> {
    ws.send(Message::Text(text.into())).await.map_err(ClientError::Socket)
}

/// Queues one text frame without flushing (see [`flush`]).
///
/// # Errors
/// [`ClientError::Socket`].
pub async fn feed(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<(), ClientError> {
    ws.feed(Message::Text(text.into())).await.map_err(ClientError::Socket)
}

/// Flushes fed frames.
///
/// # Errors
/// [`ClientError::Socket`].
pub async fn flush(ws: &mut Ws) -> Result<(), ClientError> {
    ws.flush().await.map_err(ClientError::Socket)
}

/// The next text frame, skipping control frames, before `deadline`.
///
/// # Errors
/// [`ClientError::Timeout`], [`ClientError::Closed`], [`ClientError::Socket`], or
/// [`ClientError::Malformed`] for a binary frame.
pub async fn recv(ws: &mut Ws, deadline: Instant, waiting_for: &'static str) -> Result<Utf8Bytes, ClientError> {
    loop {
        let frame =
            tokio::time::timeout_at(deadline, ws.next()).await.map_err(|_| ClientError::Timeout(waiting_for))?;
        match frame {
            None | Some(Ok(Message::Close(_))) => return Err(ClientError::Closed(waiting_for)),
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Binary(_))) => {
                return Err(ClientError::Malformed { expected: waiting_for, detail: "binary frame".into() })
            }
            Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
            Some(Err(err)) => return Err(ClientError::Socket(err)),
        }
    }
}
