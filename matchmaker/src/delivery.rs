//! What a client of this instance is told, from what the rules decided: the wire message, with
//! the ticket, the resume token and the signaling URL filled in here, where the socket is.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rules::matchmaking::{Event, Output, Refusal, ResumedState};
use rules::{ClientId, HomeId};
use serde_json::value::RawValue;
use shared::error::Rejected;
use shared::protocol::matchmaker::ServerMessage;
use shared::resume::{Claim, Domain, ResumeTokens};
use shared::ticket::Tickets;
use shared::turn::Turn;
use shared::ErrorCode;

use crate::config::render_signaling_url;
use crate::locals::Local;

/// The signaling URL templates of the instances (`SIGNALING_URL` of each), so that both
/// partners of a match are sent to the signaler the rules chose.
#[derive(Debug)]
pub struct Signaling {
    mine: HomeId,
    templates: RwLock<HashMap<HomeId, Arc<str>>>,
}

impl Signaling {
    /// This instance's template; others are learnt with [`Signaling::learn`].
    pub fn new(mine: HomeId, template: &str) -> Self {
        let templates = RwLock::new(HashMap::from([(mine, Arc::from(template))]));
        Signaling { mine, templates }
    }

    /// Records another instance's template.
    pub fn learn(&self, home: HomeId, template: &str) {
        let mut templates = self.templates.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if templates.get(&home).map(|t| &**t) != Some(template) {
            templates.insert(home, Arc::from(template));
        }
    }

    /// The instances `outputs` send clients to whose templates are not known here: an instance
    /// that started since the last heartbeat. They are looked up before the outputs are
    /// delivered, so that both partners of a match go to the same signaler from its first match.
    pub fn unknown_in(&self, outputs: &[Output]) -> Vec<HomeId> {
        let templates = self.templates.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut unknown: Vec<HomeId> = outputs
            .iter()
            .filter_map(|output| match output {
                Output::Send { event: Event::Matched { via, .. }, .. } if !templates.contains_key(via) => Some(*via),
                _ => None,
            })
            .collect();
        unknown.dedup();
        unknown
    }

    /// The template of `home`, or this instance's own if `home` is not known (yet).
    pub fn template(&self, home: HomeId) -> Arc<str> {
        let templates = self.templates.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        templates.get(&home).or_else(|| templates.get(&self.mine)).cloned().unwrap_or_else(|| Arc::from(""))
    }
}

/// Turns events into messages for this instance's sockets.
pub struct Delivery {
    /// Tickets for the signaler.
    pub tickets: Tickets,
    /// Resume tokens.
    pub resume: ResumeTokens,
    /// `ICE_SERVERS`.
    pub ice_servers: Box<RawValue>,
    /// TURN credentials, issued with every `matched` after the entries of `ICE_SERVERS`.
    pub turn: Option<Turn>,
    /// Where each instance's clients open the signaler.
    pub signaling: Signaling,
}

impl Delivery {
    /// Tells `client`, on `local`, about `event`.
    pub fn deliver(&self, local: &Local, client: ClientId, event: &Event) {
        let outbox = &local.outbox;
        match *event {
            Event::Queued { waiting } => {
                outbox.send(&ServerMessage::Queued { waiting });
            }
            Event::Matched { room, partner, initiator, via, ref common } => {
                let ticket = self.tickets.issue(room, client);
                local.rooms.matched(room);
                let url = render_signaling_url(&self.signaling.template(via), local.host.as_deref());
                let with_turn = self.turn.as_ref().map(|turn| turn.ice_servers(&self.ice_servers, &client.to_string()));
                outbox.send(&ServerMessage::Matched {
                    room_id: room,
                    partner_id: partner,
                    initiator,
                    signaling_url: &url,
                    ticket: &ticket,
                    ice_servers: with_turn.as_deref().unwrap_or(&self.ice_servers),
                    common_interests: common,
                });
            }
            Event::PartnerLeft { room } => {
                outbox.send(&ServerMessage::PartnerLeft { room_id: room });
            }
            Event::PartnerAway { room } => {
                outbox.send(&ServerMessage::PartnerAway { room_id: room });
            }
            Event::PartnerBack { room } => {
                outbox.send(&ServerMessage::PartnerBack { room_id: room });
            }
            Event::Left => {
                outbox.send(&ServerMessage::Left);
            }
            Event::Resumed { client, state, generation } => {
                let token = self.resume_token(client, generation);
                let state = match state {
                    ResumedState::Idle => "idle",
                    ResumedState::Queued => "queued",
                    ResumedState::Matched => "matched",
                };
                outbox.send(&ServerMessage::Resumed { client_id: client, state, resume_token: &token });
            }
            Event::Refused(Refusal::AlreadyMatched) => {
                outbox.reject(&Rejected::new(ErrorCode::AlreadyMatched, "already matched; send next or leave first"));
            }
            Event::Refused(Refusal::ResumeFailed) => outbox.reject(&resume_failed()),
            Event::Refused(Refusal::NoPartner) => outbox.reject(&shared::protocol::bad_message(
                "block and report need a current or last partner; there is none",
            )),
            Event::Refused(Refusal::Banned { retry_after_secs }) => outbox.reject(&Rejected::banned(retry_after_secs)),
            Event::Blocked => {
                outbox.send(&ServerMessage::Blocked);
            }
            Event::Reported { .. } => {
                outbox.send(&ServerMessage::Reported);
            }
        }
    }

    /// The resume token for `client` at `generation`.
    pub fn resume_token(&self, client: ClientId, generation: u32) -> String {
        self.resume.issue(Domain::Matchmaker, Claim { id: client, scope: uuid::Uuid::nil(), generation })
    }
}

/// The answer to a token that does not resume anything.
pub fn resume_failed() -> Rejected {
    Rejected::new(
        ErrorCode::ResumeFailed,
        "this token resumes nothing (unknown, used, expired, or its client has left); carry on as the client `ready` named",
    )
}
