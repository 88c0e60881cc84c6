//! One matchmaker socket: decode, check, and hand the decision to the hub.

use std::sync::Arc;
use std::time::Instant;

use shared::error::Rejected;
use shared::limits::{Limits, TokenBucket};
use shared::protocol::matchmaker::{ClientMessage, ServerMessage};
use shared::protocol::CommonMessage;
use shared::ws::{Outbox, Session};
use shared::ErrorCode;

use crate::auth::Auth;
use crate::hub::{Command, Hub};
use crate::queue::ClientId;

/// A connected client.
pub struct ClientSession {
    id: ClientId,
    outbox: Outbox,
    hub: Hub,
    auth: Arc<Auth>,
    /// The user id from a successful `auth`, if any.
    user_id: Option<String>,
    /// `next` and `available` presses left (`NEXT_PER_MINUTE`, `NEXT_BURST`).
    presses: TokenBucket,
    next_per_minute: u32,
}

impl ClientSession {
    /// A session for a socket that was just registered with the hub; it may ask to be paired
    /// (`next` or `available`) as often as `limits` say.
    pub fn new(id: ClientId, outbox: Outbox, hub: Hub, auth: Arc<Auth>, limits: &Limits) -> Self {
        let presses = limits.next_bucket(Instant::now());
        ClientSession { id, outbox, hub, auth, user_id: None, presses, next_per_minute: limits.next_per_minute }
    }

    /// Forwards `available` or `next` to the hub if a press is left; else `rate-limited`.
    async fn ask_to_pair(&mut self, command: Command) {
        if self.presses.take(Instant::now()) {
            self.hub.send(command).await;
        } else {
            self.outbox.reject(&Rejected::new(
                ErrorCode::RateLimited,
                format!("over {} next/available per minute; wait a moment and press again", self.next_per_minute),
            ));
        }
    }
}

impl Session for ClientSession {
    async fn on_text(&mut self, text: &str) {
        let message = match ClientMessage::decode(text) {
            Ok(message) => message,
            Err(rejected) => return self.outbox.reject(&rejected),
        };
        match message {
            ClientMessage::Ping => {
                self.outbox.send(&CommonMessage::Pong);
            }
            ClientMessage::Auth { token } => match self.auth.user_id(&token, &self.id.to_string()) {
                Ok(user_id) => {
                    tracing::debug!(user = %user_id, "authenticated");
                    self.outbox.send(&ServerMessage::Authenticated { user_id: &user_id });
                    self.user_id = Some(user_id);
                }
                Err(rejected) => self.outbox.reject(&rejected),
            },
            ClientMessage::Available | ClientMessage::Next if self.auth.is_required() && self.user_id.is_none() => {
                self.outbox.reject(&Rejected::new(ErrorCode::Unauthorized, "send auth with a valid token first"));
            }
            ClientMessage::Available => self.ask_to_pair(Command::Available(self.id)).await,
            ClientMessage::Next => self.ask_to_pair(Command::Next(self.id)).await,
            ClientMessage::Leave => self.hub.send(Command::Leave(self.id)).await,
        }
    }

    async fn on_close(self) {
        self.hub.send(Command::Disconnect(self.id)).await;
    }
}
