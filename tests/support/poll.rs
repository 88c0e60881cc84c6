//! The contract tests' client over the long-polling transport (`TEST_TRANSPORT=poll`): the same
//! [`super::Client`], a second carriage. One GET at a time runs in a task of its own and hands
//! each event to the client once, in order; a POST is made by the send itself, so that what a
//! test sends has reached the server when the send returns, as over a WebSocket.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::http_request;

/// Whether the tests talk to the services over long polling.
pub fn selected() -> bool {
    std::env::var("TEST_TRANSPORT").is_ok_and(|v| v == "poll")
}

/// A long-polling session, read as a stream of frames.
pub struct PollSocket {
    addr: SocketAddr,
    sid: String,
    frames: mpsc::UnboundedReceiver<Result<Message, WsError>>,
    poller: tokio::task::JoinHandle<()>,
}

impl PollSocket {
    /// `POST /lp` on the service a `ws://addr/ws` URL names.
    pub async fn open(url: &str) -> PollSocket {
        let host = url.trim_start_matches("ws://").trim_end_matches("/ws");
        let addr =
            tokio::net::lookup_host(host).await.expect("a ws://host:port/ws URL").find(SocketAddr::is_ipv4).unwrap();
        let (status, _, body) = http_request(addr, "POST", "/lp", &[("Host", host)], Some("")).await;
        assert_eq!(status, 200, "POST /lp: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        let sid = answer["sid"].as_str().unwrap().to_owned();
        let (tx, frames) = mpsc::unbounded_channel();
        let mut seen = 0;
        deliver(&answer, &mut seen, &tx);
        let path = format!("/lp/{sid}");
        let poller = tokio::spawn(async move {
            loop {
                let (status, _, body) = http_request(addr, "GET", &format!("{path}?ack={seen}"), &[], None).await;
                if status != 200 {
                    return; // the session is gone: the stream ends
                }
                let answer: Value = serde_json::from_str(&body).unwrap();
                if !deliver(&answer, &mut seen, &tx) {
                    return;
                }
            }
        });
        PollSocket { addr, sid, frames, poller }
    }

    /// `POST /lp/{sid}` with one message.
    pub async fn post(&self, text: &str) {
        let body = format!("[{text}]");
        let (status, _, _) = http_request(self.addr, "POST", &format!("/lp/{}", self.sid), &[], Some(&body)).await;
        assert!(status == 204 || status == 404, "POST answered {status}");
    }

    /// `DELETE /lp/{sid}`: a goodbye.
    pub async fn delete(&self) {
        http_request(self.addr, "DELETE", &format!("/lp/{}", self.sid), &[], Some("")).await;
    }
}

/// Hands the unseen events of `answer` on as text frames, and its close as a close frame;
/// returns whether the session goes on.
fn deliver(answer: &Value, seen: &mut u64, tx: &mpsc::UnboundedSender<Result<Message, WsError>>) -> bool {
    for event in answer["events"].as_array().into_iter().flatten() {
        let seq = event["seq"].as_u64().unwrap();
        if seq > *seen {
            assert_eq!(seq, *seen + 1, "an event went missing: {answer}");
            *seen = seq;
            let _ = tx.send(Ok(Message::text(event["msg"].to_string())));
        }
    }
    match answer.get("closed") {
        Some(closed) => {
            let code = u16::try_from(closed["code"].as_u64().unwrap_or(1006)).unwrap_or(1006);
            let reason = closed["reason"].as_str().unwrap_or("").to_owned();
            let _ =
                tx.send(Ok(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))));
            false
        }
        None => true,
    }
}

impl Stream for PollSocket {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.frames.poll_recv(cx)
    }
}

impl Drop for PollSocket {
    /// Like a network drop: the GETs just stop.
    fn drop(&mut self) {
        self.poller.abort();
    }
}
