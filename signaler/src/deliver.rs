//! What a room decided, as wire messages on this instance's sockets.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rules::rooms::{Notice, Output, Payload, Refusal};
use shared::error::Rejected;
use shared::protocol::encode;
use shared::protocol::matchmaker::PROTOCOL_VERSION;
use shared::protocol::signaler::ServerMessage;
use shared::ws::{Outbox, CLOSE_REPLACED};
use shared::ErrorCode;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::locals::{Dialect, Locals};

/// A relayed message as the rooms keep it: the text the peers receive, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Text(#[serde(with = "utf8_bytes")] pub Utf8Bytes);

impl Payload for Text {
    fn size(&self) -> usize {
        self.0.len()
    }
}

mod utf8_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    pub fn serialize<S: Serializer>(text: &Utf8Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Utf8Bytes, D::Error> {
        String::deserialize(d).map(Utf8Bytes::from)
    }
}

/// The figures `/metrics` reports about rooms.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Rooms with at least one peer (on this instance's rules).
    pub rooms: Gauge,
    /// matchbox peers polling over HTTP on this instance.
    pub polled: Gauge,
    /// Signals delivered to a peer.
    pub relayed: Counter,
}

/// Delivers one output to a socket of this instance (if it is still open).
pub fn deliver(locals: &Locals, figures: &Figures, output: Output<Text>) {
    let Some(local) = locals.get(output.to().socket) else {
        if locals.polled.deliver(output) {
            figures.relayed.inc();
        }
        return;
    };
    match local.dialect {
        Dialect::Strangers => deliver_to(&local.outbox, figures, output),
        Dialect::Matchbox => deliver_matchbox(&local.outbox, figures, output),
    }
}

/// Tells a socket of this instance that its request could not be served (the backend is down):
/// ours hear `rejected`; matchbox has no word for it, so its socket is closed (1011), and the
/// client connects again.
pub fn unavailable(locals: &Locals, socket: u64, rejected: &Rejected) {
    let Some(local) = locals.get(socket) else { return };
    match local.dialect {
        Dialect::Strangers => local.outbox.reject(rejected),
        Dialect::Matchbox => local.outbox.close(CLOSE_UNAVAILABLE, "the room is unavailable; connect again"),
    }
}

/// Close code for a matchbox socket whose room cannot be reached (1011, internal error).
pub const CLOSE_UNAVAILABLE: u16 = 1011;

/// Delivers one output to a matchbox socket: signals as they are, `PeerJoined` as `NewPeer`,
/// `PeerLeft` as it is; the answer to its own arrival was `IdAssigned`, sent by its session, and
/// refusals (a signal for nobody in its group) are dropped, as matchbox drops them.
fn deliver_matchbox(outbox: &Outbox, figures: &Figures, output: Output<Text>) {
    let event = match output {
        Output::Notice { notice, .. } => match rules::matchbox::notice_event(&notice) {
            Some(event) => event,
            None => return,
        },
        Output::Refuse { refusal, .. } => return tracing::debug!(?refusal, "matchbox request dropped"),
        output @ (Output::Relay { .. } | Output::Replace { .. } | Output::Close { .. }) => {
            return deliver_to(outbox, figures, output);
        }
    };
    outbox.send_text(event.text().into());
}

/// Delivers one output to `outbox`.
pub fn deliver_to(outbox: &Outbox, figures: &Figures, output: Output<Text>) {
    match output {
        Output::Relay { text, .. } => {
            figures.relayed.inc();
            outbox.send_text(text.0);
        }
        Output::Notice { notice, .. } => {
            outbox.send_text(notice_text(&notice).into());
        }
        Output::Refuse { refusal, .. } => outbox.reject(&refused(refusal)),
        Output::Replace { .. } => outbox.close(CLOSE_REPLACED, "replaced by a newer connection with the same ticket"),
        Output::Close { code, .. } => {
            let (code, reason) = shared::ws::drain_close(code);
            outbox.close(code, reason);
        }
    }
}

/// A notice as the wire carries it.
pub fn notice_text(notice: &Notice) -> String {
    match notice {
        Notice::Joined { room, peer, peers } => {
            encode(&ServerMessage::Joined { room_id: *room, peer_id: *peer, peers, protocol: PROTOCOL_VERSION })
        }
        Notice::PeerJoined { peer } => encode(&ServerMessage::PeerJoined { peer_id: *peer }),
        Notice::PeerLeft { peer } => encode(&ServerMessage::PeerLeft { peer_id: *peer }),
        Notice::PeerAway { peer } => encode(&ServerMessage::PeerAway { peer_id: *peer }),
        Notice::PeerBack { peer } => encode(&ServerMessage::PeerBack { peer_id: *peer }),
    }
}

/// A refusal as the contract's error.
pub fn refused(refusal: Refusal) -> Rejected {
    match refusal {
        Refusal::RoomFull => Rejected::new(ErrorCode::RoomFull, "this room already has all its peers"),
        Refusal::NotJoined => {
            Rejected::new(ErrorCode::NotJoined, "not in a room (or this connection was replaced); join first")
        }
        Refusal::HoldFull => Rejected::new(
            ErrorCode::RateLimited,
            "the peer is not there and what waits for it is at its bound (64 messages or 64 KiB); message dropped",
        ),
        Refusal::UnknownPeer => {
            Rejected::new(ErrorCode::UnknownPeer, "`to` names nobody else in this room; nothing relayed")
        }
        Refusal::TicketExpired => Rejected::new(ErrorCode::BadTicket, "ticket refused: ExpiredSignature"),
    }
}
