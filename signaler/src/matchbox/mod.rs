//! matchbox's protocol on the signaler: `GET /matchbox/{room}` sockets ([`socket`]). The rooms
//! are the rules core's [`rules::rooms::Kind::Matchbox`] rooms, run wherever the signaler's rooms
//! run (in memory or on Redis); [`rules::matchbox`] names them and spells the messages.

pub mod socket;

use http::Method;
use rules::matchbox::Address;

/// The path prefix of matchbox's rooms.
pub const PREFIX: &str = "/matchbox/";

/// The room a `GET /matchbox/{room}` socket asks for: `None` for any other request,
/// `Some(Err(why))` for a bad room name or `next`.
pub fn socket_address(method: &Method, path: &str, query: Option<&str>) -> Option<Result<Address, &'static str>> {
    let name = path.strip_prefix(PREFIX)?;
    if method != Method::GET || name.contains('/') {
        return None;
    }
    Some(Address::parse(name, query).map_err(|bad| match bad {
        rules::matchbox::BadAddress::Name => "the matchbox room name must be 1 to 128 bytes",
        rules::matchbox::BadAddress::Next => "`next` must be a whole number of at least 1",
    }))
}
