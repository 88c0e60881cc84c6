//! The WASI glue: `wasi:http/incoming-handler` reads the request, [`crate::api`] decides, and
//! the answer is written back. A held poll looks at the state again every [`HOLD_STEP`] until
//! something waits or the hold ends.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

use crate::api::{self, Answer, Incoming, Step};
use crate::store::Store;

/// How often a held poll looks at the state again.
const HOLD_STEP: Duration = Duration::from_millis(50);

struct Component;

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let answer = serve(&request);
        respond(out, &answer);
    }
}

wasip2::http::proxy::export!(Component with_types_in wasip2);

fn now_ms() -> rules::Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `POLL_HOLD_SECS` from the environment the host passes (`--env`), else the default.
fn hold() -> Duration {
    let secs =
        std::env::var("POLL_HOLD_SECS").ok().and_then(|v| v.parse::<u64>().ok()).filter(|s| (1..=120).contains(s));
    Duration::from_secs(secs.unwrap_or(api::DEFAULT_POLL_HOLD_SECS))
}

fn fresh_peer() -> rules::PeerId {
    let bytes = wasip2::random::random::get_random_bytes(32);
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[..32.min(bytes.len())]);
    rules::Ids::from_seed(seed).uuid()
}

fn serve(request: &IncomingRequest) -> Answer {
    let method = match request.method() {
        Method::Get => "GET",
        Method::Post => "POST",
        _ => "OTHER",
    };
    let path = request.path_with_query().unwrap_or_else(|| "/".into());
    let peer_header = request.headers().get("x-peer-id").into_iter().next().and_then(|v| String::from_utf8(v).ok());
    let Some(body) = read_body(request) else { return api::too_large() };
    let hold = hold();
    let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
    let store = Store::new(Path::new("/"));
    let incoming = Incoming { method, path: &path, peer_header: peer_header.as_deref(), body: &body };
    let fresh = fresh_peer();
    let step = store.with(|rooms| api::handle(rooms, incoming, now_ms(), hold_ms, fresh));
    let peer = match step {
        Ok(Step::Answer(answer)) => return answer,
        Ok(Step::Hold(peer)) => peer,
        Err(err) => return unavailable(&err.0),
    };
    let until = Instant::now() + hold;
    loop {
        std::thread::sleep(HOLD_STEP);
        let last = Instant::now() >= until;
        let looked = store.with(|rooms| if last { Some(api::held_out(rooms, peer)) } else { api::look(rooms, peer) });
        match looked {
            Ok(Some(answer)) => return answer,
            Ok(None) => {}
            Err(err) => return unavailable(&err.0),
        }
    }
}

fn unavailable(why: &str) -> Answer {
    Answer { status: 503, content_type: "text/plain; charset=utf-8", body: why.to_owned() }
}

/// The request's body, or `None` when it is over [`api::MAX_BODY_BYTES`].
fn read_body(request: &IncomingRequest) -> Option<Vec<u8>> {
    let Ok(body) = request.consume() else { return Some(Vec::new()) };
    let Ok(mut stream) = body.stream() else { return Some(Vec::new()) };
    let mut bytes = Vec::new();
    let limit = u64::try_from(api::MAX_BODY_BYTES).unwrap_or(u64::MAX) + 1;
    let _ = (&mut stream).take(limit).read_to_end(&mut bytes);
    drop(stream);
    (bytes.len() <= api::MAX_BODY_BYTES).then_some(bytes)
}

fn respond(out: ResponseOutparam, answer: &Answer) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[answer.content_type.as_bytes().to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(answer.status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        // Chunks of 4 KiB: a blocking write takes at most that much at once.
        for chunk in answer.body.as_bytes().chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}
