//! The chat page (`web/`), embedded in the binary so it is served wherever the binary runs.
//! Debug builds read the files from disk, so page edits show up without a rebuild.

use rust_embed::RustEmbed;
use warp::http::{header, HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply};

#[derive(RustEmbed)]
#[folder = "../web/"]
#[exclude = "*.md"]
struct Web;

/// `GET /` and `GET /<file>`: the page and its assets, with ETags so browsers revalidate cheaply.
pub fn routes() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::get().and(warp::path::tail()).and(warp::header::optional::<String>("if-none-match")).and_then(
        |tail: warp::path::Tail, if_none_match: Option<String>| async move {
            let path = match tail.as_str() {
                "" => "index.html",
                other => other,
            };
            serve(path, if_none_match.as_deref()).ok_or_else(warp::reject::not_found)
        },
    )
}

fn serve(path: &str, if_none_match: Option<&str>) -> Option<warp::reply::Response> {
    let file = Web::get(path)?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut response: warp::reply::Response = if if_none_match == Some(etag.as_str()) {
        let mut r = warp::reply::Response::new("".into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        warp::reply::Response::new(file.data.into_owned().into())
    };
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Some(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
