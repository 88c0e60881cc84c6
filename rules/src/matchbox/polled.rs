//! matchbox's rooms for a process that only answers HTTP polls (the WebAssembly build): the
//! rooms, each polling peer's mailbox, and who is where, together and serializable, so that a
//! shell with no memory between requests keeps it all in a file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{notice_event, Address, Event, Mailboxes};
use crate::ids::{Conn, HomeId, PeerId, RoomId};
use crate::rooms::{Input, Output, Room, RoomRecord, RoomSettings};
use crate::time::Millis;

/// The one "instance" of a polled process.
const HOME: HomeId = uuid::Uuid::nil();

/// Why a request to the polled rooms was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRefusal {
    /// No such peer (never joined, or left).
    UnknownPeer,
}

/// Where a peer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seat {
    room: RoomId,
    conn: Conn,
}

/// Every room, mailbox and peer of a polled process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolledRooms {
    rooms: BTreeMap<RoomId, RoomRecord>,
    seats: BTreeMap<PeerId, Seat>,
    mailboxes: Mailboxes,
    next_socket: u64,
}

impl PolledRooms {
    /// No rooms.
    pub fn new() -> Self {
        PolledRooms::default()
    }

    /// A first poll: `peer` joins the room `address` names at `now`. Its mailbox starts with
    /// `IdAssigned`; those already in its room (or group) hear `NewPeer`.
    pub fn join(&mut self, address: &Address, peer: PeerId, now: Millis) {
        let room = address.room();
        self.next_socket += 1;
        let conn = Conn::new(HOME, self.next_socket);
        self.mailboxes.open(peer, now);
        self.mailboxes.push(peer, Event::IdAssigned(peer).text());
        self.seats.insert(peer, Seat { room, conn });
        let input = Input::Join { conn, peer, admits_until: Millis::MAX };
        self.apply(room, Some(address), now, input);
    }

    /// A poll of `peer` arrived at `now` (the last answer's events are gone); `false` for an
    /// unknown peer.
    pub fn poll(&mut self, peer: PeerId, now: Millis) -> bool {
        self.mailboxes.poll(peer, now)
    }

    /// What waits for `peer`, for an answer (kept until its next poll).
    pub fn take(&mut self, peer: PeerId) -> Vec<String> {
        self.mailboxes.take(peer)
    }

    /// Whether anything new waits for `peer`.
    pub fn waiting(&self, peer: PeerId) -> bool {
        self.mailboxes.waiting(peer)
    }

    /// `sender`'s signal for `receiver`, with `data` as written. A receiver outside the
    /// sender's room or group is dropped, as on the socket.
    ///
    /// # Errors
    /// [`PollRefusal::UnknownPeer`] when `sender` is not here.
    pub fn signal(
        &mut self,
        sender: PeerId,
        receiver: PeerId,
        data: &RawValue,
        now: Millis,
    ) -> Result<(), PollRefusal> {
        let seat = self.seats.get(&sender).cloned().ok_or(PollRefusal::UnknownPeer)?;
        let text = Event::Signal { sender, data }.text();
        self.apply(seat.room, None, now, Input::Relay { conn: seat.conn, to: Some(receiver), text });
        Ok(())
    }

    /// Peers that did not poll for `idle` by `now` have left: their rooms hear `PeerLeft`.
    pub fn expire(&mut self, now: Millis, idle: Millis) {
        for peer in self.mailboxes.expire(now, idle) {
            if let Some(seat) = self.seats.remove(&peer) {
                self.apply(seat.room, None, now, Input::Closed { conn: seat.conn, clean: true });
            }
        }
    }

    /// How many peers are here.
    pub fn peers(&self) -> usize {
        self.seats.len()
    }

    fn apply(&mut self, id: RoomId, create: Option<&Address>, now: Millis, input: Input<String>) {
        let settings = RoomSettings::default();
        let mut room = match (self.rooms.remove(&id), create) {
            (Some(record), _) => Room::restore(id, settings, record),
            (None, Some(address)) => Room::new(id, address.kind(), settings, now),
            (None, None) => return,
        };
        room.apply(now, input);
        let outputs: Vec<Output<String>> = room.outputs().collect();
        for output in outputs {
            let to = output.to();
            let Some(peer) = room.peer_on(to) else { continue };
            let event = match output {
                Output::Relay { text, .. } => Some(text),
                Output::Notice { notice, .. } => notice_event(&notice).map(|event| event.text()),
                _ => None,
            };
            if let Some(event) = event {
                self.mailboxes.push(peer, event);
            }
        }
        if !room.is_finished(now) {
            self.rooms.insert(id, room.record());
        }
    }
}
