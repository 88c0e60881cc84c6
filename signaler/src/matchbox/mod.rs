//! matchbox's protocol on the signaler: `GET /matchbox/{room}` sockets ([`socket`]), and the
//! same rooms over HTTP long polling ([`http`], with the mailboxes of [`polled`]). The rooms
//! are the rules core's [`rules::rooms::Kind::Matchbox`] rooms, run wherever the signaler's rooms
//! run (in memory or on Redis); [`rules::matchbox`] names them and spells the messages.

pub mod http;
pub mod polled;
pub mod socket;

use ::http::Method;
use rules::matchbox::{Address, BadAddress};

/// The path prefix of matchbox's rooms.
pub const PREFIX: &str = "/matchbox/";

/// The room a `GET /matchbox/{room}` socket asks for: `None` for any other request,
/// `Some(Err(why))` for a bad room name or `next`.
pub fn socket_address(method: &Method, path: &str, query: Option<&str>) -> Option<Result<Address, &'static str>> {
    let name = path.strip_prefix(PREFIX)?;
    if method != Method::GET || name.contains('/') {
        return None;
    }
    Some(Address::parse(name, query).map_err(socket_error))
}

/// The answer to a bad address.
pub fn socket_error(bad: BadAddress) -> &'static str {
    match bad {
        BadAddress::Name => "the matchbox room name must be 1 to 128 bytes",
        BadAddress::Next => "`next` must be a whole number of at least 1",
    }
}
