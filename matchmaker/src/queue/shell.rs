//! The rules with this instance's sockets around them: inputs go in, presence checks about
//! this instance's own sockets are answered at once (no round trip), and what the rules decide
//! comes out split into what this instance delivers and what other instances must.

use std::sync::Arc;

use rules::matchmaking::safety::Change;
use rules::matchmaking::{Event, Input, Matchmaking, Output};
use rules::{HomeId, Millis};

use super::Figures;
use crate::delivery::Delivery;
use crate::locals::Locals;

/// What one step decided.
#[derive(Debug, Default)]
pub struct Outcome {
    /// For this instance's sockets, in order.
    pub local: Vec<Output>,
    /// For other instances' sockets, in order.
    pub remote: Vec<Output>,
    /// What changed in the reports, bans and blocks between users, for the store.
    pub safety: Vec<Change>,
}

/// The rules, and the sockets of the instance that runs them.
pub struct Shell {
    /// The rules.
    pub core: Matchmaking,
    /// This instance.
    pub home: HomeId,
    /// Its sockets.
    pub locals: Arc<Locals>,
    /// How its sockets are told things.
    pub delivery: Arc<Delivery>,
    /// `/metrics`.
    pub figures: Figures,
}

impl Shell {
    /// The rules' settings.
    pub fn core_settings(&self) -> rules::matchmaking::Settings {
        self.core.settings()
    }

    /// Applies `inputs` in order at `now`.
    pub fn step(&mut self, now: Millis, inputs: impl IntoIterator<Item = Input>) -> Outcome {
        for input in inputs {
            self.core.apply(now, input);
        }
        self.settle(now)
    }

    /// Acts on the deadlines due by `now`.
    pub fn tick(&mut self, now: Millis) -> Outcome {
        self.core.tick(now);
        self.settle(now)
    }

    /// Drains what the rules decided, answering presence checks about local sockets at once.
    fn settle(&mut self, now: Millis) -> Outcome {
        let mut outcome = Outcome::default();
        loop {
            let mut answers = Vec::new();
            for output in self.core.outputs() {
                let conn = output.to();
                if conn.home != self.home {
                    outcome.remote.push(output);
                } else if let Output::Confirm { to, check } = output {
                    answers.push(Input::Presence { conn: to, check, present: self.locals.is_open(to.socket) });
                } else {
                    outcome.local.push(output);
                }
            }
            if answers.is_empty() {
                outcome.safety = self.core.take_safety_changes();
                return outcome;
            }
            for answer in answers {
                self.core.apply(now, answer);
            }
        }
    }

    /// Counts the bans a step made, once it happened.
    pub fn count(&self, changes: &[Change]) {
        let bans = changes.iter().filter(|c| matches!(c, Change::Banned(_))).count();
        self.figures.bans.inc_by(bans as u64);
    }

    /// Delivers outputs for this instance's sockets.
    pub fn deliver(&self, outputs: Vec<Output>) {
        deliver(&self.locals, &self.delivery, &self.figures, outputs);
    }
}

/// Delivers outputs meant for this instance's sockets (from its own rules, or from the owner
/// on another instance). A presence check is not delivered: see [`Locals::is_open`].
pub fn deliver(locals: &Locals, delivery: &Delivery, figures: &Figures, outputs: Vec<Output>) {
    for output in outputs {
        match output {
            Output::Send { to, client, event } => {
                let Some(local) = locals.get(to.socket) else { continue };
                match &event {
                    Event::Matched { initiator: true, .. } => {
                        figures.matches.inc();
                    }
                    Event::Blocked => {
                        figures.blocks.inc();
                    }
                    Event::Reported { reason } => {
                        figures.reports.get_or_create(&super::ReasonLabel { reason: reason.as_str() }).inc();
                    }
                    _ => {}
                }
                delivery.deliver(&local, client, &event);
            }
            Output::Replace { to } => {
                if let Some(local) = locals.get(to.socket) {
                    local.outbox.close(shared::ws::CLOSE_REPLACED, "resumed on another connection");
                }
            }
            Output::Close { to, code } => {
                if let Some(local) = locals.get(to.socket) {
                    let (code, reason) = shared::ws::drain_close(code);
                    local.outbox.close(code, reason);
                }
            }
            Output::Confirm { .. } => {}
        }
    }
}
