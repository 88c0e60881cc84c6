//! What this instance's sockets must hear from the owner of the queue on another instance: its
//! `ev:` list, read in order. A presence check is answered from this instance's sockets and
//! goes back to the owner like any other input.

use std::sync::Arc;

use rules::matchmaking::{Input, Output};
use shared::redis::inbox::spawn_reader;
use shared::redis::liveness::Health;
use shared::redis::{wire, RedisLink};
use tokio_util::sync::CancellationToken;

use crate::delivery::Delivery;
use crate::locals::Locals;
use crate::queue::shell::deliver;
use crate::queue::{Figures, QueueHandle};

/// Everything delivering needs.
pub struct Events {
    pub locals: Arc<Locals>,
    pub delivery: Arc<Delivery>,
    pub figures: Figures,
    pub queue: QueueHandle,
    /// Where the instances' signaling templates are.
    pub signaling_key: String,
}

/// Reads `key` (this instance's `ev:` list) until `stop`.
pub fn spawn(link: RedisLink, key: String, events: Events, health: Health, stop: CancellationToken) {
    let events = Arc::new(events);
    spawn_reader(link.clone(), key, health, "events", stop, move |entries| {
        let events = events.clone();
        let link = link.clone();
        async move {
            let mut outputs = Vec::with_capacity(entries.len());
            let mut answers = Vec::new();
            for entry in entries {
                match wire::decode::<Output>(&entry, "queue event") {
                    Some(Output::Confirm { to, check }) => {
                        answers.push(Input::Presence { conn: to, check, present: events.locals.is_open(to.socket) });
                    }
                    Some(output) => outputs.push(output),
                    None => {}
                }
            }
            super::learn_templates(&link, &events.signaling_key, &events.delivery.signaling, &outputs).await;
            deliver(&events.locals, &events.delivery, &events.figures, outputs);
            for answer in answers {
                events.queue.apply(answer).await;
            }
        }
    });
}
