//! One matchmaker socket: decode, check, and hand the request to the queue.

use std::sync::Arc;
use std::time::Instant;

use rules::matchmaking::Input;
use rules::{ClientId, Conn};
use shared::error::Rejected;
use shared::limits::{Limits, TokenBucket};
use shared::protocol::matchmaker::{ClientMessage, ServerMessage, Wish};
use shared::protocol::CommonMessage;
use shared::resume::Domain;
use shared::ws::{Ending, Outbox, Session};
use shared::ErrorCode;

use crate::auth::Auth;
use crate::delivery::{resume_failed, Delivery};
use crate::locals::Locals;
use crate::queue::QueueHandle;
use crate::reports::{ReportFigures, Reportable};

/// A connected client.
pub struct ClientSession {
    conn: Conn,
    /// The id its `ready` named (for `auth` without a secret).
    client_id: ClientId,
    outbox: Outbox,
    queue: QueueHandle,
    locals: Arc<Locals>,
    delivery: Arc<Delivery>,
    auth: Arc<Auth>,
    /// The user id from a successful `auth`, if any.
    user_id: Option<String>,
    /// `next` and `available` presses left (`NEXT_PER_MINUTE`, `NEXT_BURST`).
    presses: TokenBucket,
    next_per_minute: u32,
    /// The rooms this socket may report on.
    rooms: Arc<Reportable>,
    reports: ReportFigures,
}

/// What a session needs from its service.
pub struct Needs {
    /// The queue.
    pub queue: QueueHandle,
    /// This instance's sockets.
    pub locals: Arc<Locals>,
    /// Tokens and messages.
    pub delivery: Arc<Delivery>,
    /// The `auth` step.
    pub auth: Arc<Auth>,
    /// What connection reports add up to.
    pub reports: ReportFigures,
}

impl ClientSession {
    /// A session for a socket already registered with the queue as `client_id`.
    pub fn new(
        conn: Conn,
        client_id: ClientId,
        outbox: Outbox,
        rooms: Arc<Reportable>,
        needs: &Needs,
        limits: &Limits,
    ) -> Self {
        ClientSession {
            conn,
            client_id,
            outbox,
            queue: needs.queue.clone(),
            locals: needs.locals.clone(),
            delivery: needs.delivery.clone(),
            auth: needs.auth.clone(),
            user_id: None,
            presses: limits.next_bucket(Instant::now()),
            next_per_minute: limits.next_per_minute,
            rooms,
            reports: needs.reports.clone(),
        }
    }

    /// Forwards `available` or `next` (after the interests it carries) if a press is left;
    /// else `rate-limited`.
    async fn ask_to_pair(&mut self, wish: Wish, input: Input) {
        if !self.presses.take(Instant::now()) {
            return self.outbox.reject(
                &Rejected::new(
                    ErrorCode::RateLimited,
                    format!("over {} next/available per minute; wait a moment and press again", self.next_per_minute),
                )
                .retry_after_ms(self.presses.wait_ms()),
            );
        }
        if self.auth.is_required() && self.user_id.is_none() {
            return self.outbox.reject(&Rejected::new(ErrorCode::Unauthorized, "send auth with a valid token first"));
        }
        if !wish.is_empty() {
            let wait = wish.interest_wait_secs.map(|secs| secs * 1_000);
            self.queue.apply(Input::Interests { conn: self.conn, interests: wish.interests, wait }).await;
        }
        self.queue.apply(input).await;
    }
}

impl Session for ClientSession {
    async fn on_text(&mut self, text: &str) {
        let message = match ClientMessage::decode(text) {
            Ok(message) => message,
            Err(rejected) => return self.outbox.reject(&rejected),
        };
        let conn = self.conn;
        match message {
            ClientMessage::Ping => {
                self.outbox.send(&CommonMessage::Pong);
            }
            ClientMessage::Auth { token } => match self.auth.user_id(&token, &self.client_id.to_string()) {
                Ok(user_id) => {
                    tracing::debug!(user = %user_id, "authenticated");
                    self.outbox.send(&ServerMessage::Authenticated { user_id: &user_id });
                    self.queue.apply(Input::Identify { conn, user: user_id.clone() }).await;
                    self.user_id = Some(user_id);
                }
                Err(rejected) => self.outbox.reject(&rejected),
            },
            // The waits on the queue are boxed: a few per match, and their state would
            // otherwise take room in every socket's task for as long as the socket lives.
            ClientMessage::Available(wish) => Box::pin(self.ask_to_pair(wish, Input::Available { conn })).await,
            ClientMessage::Next(wish) => Box::pin(self.ask_to_pair(wish, Input::Next { conn })).await,
            ClientMessage::Leave => Box::pin(self.queue.apply(Input::Leave { conn })).await,
            ClientMessage::Block => Box::pin(self.queue.apply(Input::Block { conn })).await,
            ClientMessage::Report { reason, note } => {
                Box::pin(self.queue.apply(Input::Report { conn, reason, note })).await;
            }
            ClientMessage::Resume { token } => match self.delivery.resume.verify(Domain::Matchmaker, &token) {
                Some(claim) => {
                    let input = Input::Resume { conn, client: claim.id, generation: claim.generation };
                    Box::pin(self.queue.apply(input)).await;
                }
                None => self.outbox.reject(&resume_failed()),
            },
            // No reply; a room this socket was not matched into, or reported on, is ignored.
            ClientMessage::ConnectionReport(report) => {
                if let Some(report) = report.filter(|report| self.rooms.take(report.room_id)) {
                    self.reports.record(&report);
                }
            }
        }
    }

    async fn on_close(self, ending: Ending) {
        // Off the list first: a presence check from now on finds the socket gone.
        self.locals.remove(self.conn.socket);
        self.queue.apply(Input::Closed { conn: self.conn, clean: ending.is_goodbye() }).await;
    }
}
