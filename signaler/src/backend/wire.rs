//! What instances tell each other about rooms, through their inboxes.

use rules::rooms::{Input, Kind, Output};
use rules::{HomeId, RoomId};
use serde::{Deserialize, Serialize};

use crate::deliver::Text;

/// One inbox entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Entry {
    /// For a room whose rules this instance runs: apply `input` (creating the room as
    /// `create` if it does not exist yet).
    Apply {
        /// The room.
        room: RoomId,
        /// Who sent it (for a [`Entry::NotOwner`] answer).
        from: HomeId,
        /// How to create the room, for a join.
        create: Option<Kind>,
        /// The input.
        input: Input<Text>,
        /// How many times it was sent on already (a room that changed hands).
        hops: u8,
    },
    /// For a socket of this instance.
    Deliver {
        /// What to deliver.
        output: Output<Text>,
    },
    /// The instance asked does not run the room's rules (any more): look again, and apply there.
    NotOwner {
        /// The room.
        room: RoomId,
        /// How to create the room, for a join.
        create: Option<Kind>,
        /// The input that was not applied.
        input: Input<Text>,
        /// How many times it was sent on already.
        hops: u8,
    },
}
