//! matchbox's messages, as its protocol crate spells them (serde's externally tagged enums):
//! `{"Signal":{"receiver":..,"data":..}}` and `"KeepAlive"` from a peer; `{"IdAssigned":..}`,
//! `{"NewPeer":..}`, `{"PeerLeft":..}` and `{"Signal":{"sender":..,"data":..}}` to it. `data`
//! is kept as the raw JSON the sender wrote, so that it is relayed byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::PeerId;

/// What a matchbox peer sends.
#[derive(Debug, Deserialize)]
pub enum Request<'a> {
    /// A signal for one peer of the room.
    Signal {
        /// Who it is for.
        receiver: PeerId,
        /// What it says, untouched.
        #[serde(borrow)]
        data: &'a RawValue,
    },
    /// Keeps proxies from closing an idle socket; ignored.
    KeepAlive,
}

impl<'a> Request<'a> {
    /// Reads one request.
    ///
    /// # Errors
    /// serde's, for anything that is not one of matchbox's requests.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// What a matchbox peer is told.
#[derive(Debug, Serialize)]
pub enum Event<'a> {
    /// Your id; the first thing a peer hears.
    IdAssigned(PeerId),
    /// Someone joined your room (or group): make them an offer.
    NewPeer(PeerId),
    /// Someone left.
    PeerLeft(PeerId),
    /// A signal for you.
    Signal {
        /// Who sent it.
        sender: PeerId,
        /// What it says, as the sender wrote it.
        data: &'a RawValue,
    },
}

impl Event<'_> {
    /// The event as JSON text.
    pub fn text(&self) -> String {
        // Serializing these types cannot fail: ids and raw JSON only.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The answer to a poll over HTTP: the peer's id and its events, each as JSON text.
#[derive(Debug, Serialize, Deserialize)]
pub struct PollAnswer {
    /// Who polled.
    pub peer_id: PeerId,
    /// What waits for it, in order: each event as matchbox's JSON text.
    pub events: Vec<String>,
}

impl PollAnswer {
    /// The answer as JSON text.
    pub fn text(&self) -> String {
        // Ids and strings only: this cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The `peer_id` a poll's query string names, if any: `Ok(None)` for a first poll, `Err(())`
/// for one that is not a UUID.
#[allow(clippy::result_unit_err)]
pub fn poll_peer(query: Option<&str>) -> Result<Option<PeerId>, ()> {
    let value = query.unwrap_or_default().split('&').find_map(|pair| pair.strip_prefix("peer_id="));
    value.map(|id| uuid::Uuid::parse_str(id).map_err(|_| ())).transpose()
}
