//! What the component answers, given the request, the time and the state: no I/O here, so the
//! host's tests check it and the component only carries bytes.

use rules::matchbox::{poll_peer, Address, BadAddress, PollAnswer, PolledRooms, Request};
use rules::{Millis, PeerId};

/// Default `POLL_HOLD_SECS`: how long a poll is held when nothing waits (as on the signaler).
pub const DEFAULT_POLL_HOLD_SECS: u64 = 25;

/// The largest request body read, in bytes (the signaler's `MAX_MESSAGE_BYTES` default); a
/// longer one is answered 413.
pub const MAX_BODY_BYTES: usize = 65_536;

/// The answer to a body over [`MAX_BODY_BYTES`].
pub fn too_large() -> Answer {
    Answer::text(413, "the body is over 65,536 bytes")
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its content type.
    pub content_type: &'static str,
    /// Its body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: &str) -> Self {
        Answer { status, content_type: "text/plain; charset=utf-8", body: body.to_owned() }
    }

    fn events(peer: PeerId, events: Vec<String>) -> Self {
        Answer { status: 200, content_type: "application/json", body: PollAnswer { peer_id: peer, events }.text() }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer now.
    Answer(Answer),
    /// A poll of `peer` with nothing waiting: look again (with [`look`]) until the hold ends,
    /// then answer with [`look`]'s events, empty or not.
    Hold(PeerId),
}

/// One request, as the component read it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// `GET`, `POST`, ….
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// `X-Peer-Id`, if sent.
    pub peer_header: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Handles a request at `now` against `rooms`; `fresh` is the id a joining peer gets. Peers idle
/// for twice `hold` have left first.
pub fn handle(rooms: &mut PolledRooms, request: Incoming<'_>, now: Millis, hold: Millis, fresh: PeerId) -> Step {
    rooms.expire(now, hold.saturating_mul(2));
    let (path, query) = match request.path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.path, None),
    };
    match (request.method, path) {
        ("GET", "/health") => Step::Answer(Answer::text(200, "OK")),
        ("GET", _) if path.starts_with("/poll/") => poll(rooms, &path["/poll/".len()..], query, now, fresh),
        ("POST", "/signal") => Step::Answer(signal(rooms, request.peer_header, request.body, now)),
        (_, "/health" | "/signal") => Step::Answer(Answer::text(405, "method not allowed")),
        _ => Step::Answer(Answer::text(404, "not found")),
    }
}

/// What waits for a held poll's `peer` (kept until its next poll): `Some` once there is any.
pub fn look(rooms: &mut PolledRooms, peer: PeerId) -> Option<Answer> {
    rooms.waiting(peer).then(|| Answer::events(peer, rooms.take(peer)))
}

/// The answer at the end of a hold.
pub fn held_out(rooms: &mut PolledRooms, peer: PeerId) -> Answer {
    Answer::events(peer, rooms.take(peer))
}

fn poll(rooms: &mut PolledRooms, name: &str, query: Option<&str>, now: Millis, fresh: PeerId) -> Step {
    let address = match Address::parse(name, query) {
        Ok(address) if !name.contains('/') => address,
        Ok(_) | Err(BadAddress::Name) => {
            return Step::Answer(Answer::text(400, "the room name must be 1 to 128 bytes"))
        }
        Err(BadAddress::Next) => return Step::Answer(Answer::text(400, "`next` must be a whole number of at least 1")),
    };
    match poll_peer(query) {
        Err(()) => Step::Answer(Answer::text(400, "`peer_id` is not a UUID")),
        Ok(None) => {
            rooms.join(&address, fresh, now);
            Step::Answer(Answer::events(fresh, rooms.take(fresh)))
        }
        Ok(Some(peer)) if !rooms.poll(peer, now) => {
            Step::Answer(Answer::text(404, "no such peer (it never joined, or it left)"))
        }
        Ok(Some(peer)) => look(rooms, peer).map_or(Step::Hold(peer), Step::Answer),
    }
}

fn signal(rooms: &mut PolledRooms, peer: Option<&str>, body: &[u8], now: Millis) -> Answer {
    let Some(sender) = peer.and_then(|p| p.trim().parse::<PeerId>().ok()) else {
        return Answer::text(400, "`X-Peer-Id` must name your peer id");
    };
    let request = std::str::from_utf8(body).ok().and_then(|text| Request::parse(text).ok());
    match request {
        Some(Request::Signal { receiver, data }) => match rooms.signal(sender, receiver, data, now) {
            Ok(()) => Answer::text(204, ""),
            Err(_) => Answer::text(404, "no such peer (it never joined, or it left)"),
        },
        Some(Request::KeepAlive) => Answer::text(204, ""),
        _ => Answer::text(400, "expected {\"Signal\":{\"receiver\":\"<uuid>\",\"data\":…}}"),
    }
}
