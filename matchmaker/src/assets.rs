//! The chat page (`web/`), embedded in the binary so it is served wherever the binary runs.
//! Debug builds read the files from disk, so page edits show up without a rebuild.
//!
//! Every response of the matchmaker also carries security headers ([`with_security_headers`]):
//! a Content-Security-Policy that lets the page load only its own files and open sockets only to
//! this matchmaker and the configured signaler, with no inline script and no framing.

use std::convert::Infallible;
use std::sync::Arc;

use rust_embed::RustEmbed;
use warp::http::{header, HeaderMap, HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply};

use crate::config::Config;

/// What the page may load besides sockets: its own scripts, styles and images, nothing inline,
/// no plugins, no `<base>`, and it may not be framed.
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The browser features the page may use: camera and microphone for its own video chat only.
const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()";

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

/// Adds the security headers to every response of `routes`: Content-Security-Policy,
/// `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`,
/// `Cross-Origin-Opener-Policy` and `Permissions-Policy`.
///
/// `connect-src` allows the page's own origin and the WebSocket origin of `SIGNALING_URL` as
/// this request's client will receive it (with `{host}` replaced by the request's host name),
/// and the same origins over HTTP for the long-polling fallback.
pub fn with_security_headers<F, R>(
    routes: F,
    config: &Config,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static
where
    F: Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let config = Arc::new(config.clone());
    warp::header::headers_cloned().and(routes).map(move |request: HeaderMap, reply: R| {
        let host = request.get(header::HOST).and_then(|v| v.to_str().ok()).filter(|h| is_host(h));
        let mut response = reply.into_response();
        let headers = response.headers_mut();
        if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&config, host)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
        headers.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS_POLICY));
        response
    })
}

/// The Content-Security-Policy for a request that reached us as `host` (a checked `Host` value).
///
/// Sockets may go to any port of the host name the page came from (`ws:` and `wss:`): that is
/// the matchmaker itself and, with the default `{host}` template, the signaler, whose port may
/// change under a page that stays open (a restarted runner, another instance of a cluster). A
/// signaler on another host is allowed by its exact origin.
pub fn content_security_policy(config: &Config, host: Option<&str>) -> String {
    let mut sources = vec!["'self'".to_owned()];
    let name = host.map(host_name);
    if let Some(name) = name {
        // `'self'` covers ws(s): of the page's own origin only in newer browsers; say it outright.
        // http(s): on any port is the signaler's long-polling fallback (`/lp`).
        sources.push(format!("ws://{name}:*"));
        sources.push(format!("wss://{name}:*"));
        sources.push(format!("http://{name}:*"));
        sources.push(format!("https://{name}:*"));
    }
    // With `{host}` in SIGNALING_URL the signaler's origin depends on the request: without a
    // usable Host header the page gets no signaler origin rather than a guessed one.
    if host.is_some() || !config.signaling_url.contains("{host}") {
        if let Some((origin, origin_name)) = websocket_origin(&config.signaling_url_for(host)) {
            if Some(origin_name.as_str()) != name {
                // The same origin over HTTP, for the long-polling fallback.
                let http = origin.replacen("ws", "http", 1);
                sources.push(origin);
                sources.push(http);
            }
        }
    }
    format!("{CSP_BASE}; connect-src {}", sources.join(" "))
}

/// The host name of a `host[:port]` (`[::1]:8080` -> `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// `ws://host:port` of a `ws://` or `wss://` URL and its host name, or `None` if it is not one
/// we can put in a policy as is.
fn websocket_origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ws" && scheme != "wss" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?.to_ascii_lowercase();
    is_host(&authority).then(|| (format!("{scheme}://{authority}"), host_name(&authority).to_owned()))
}

/// Whether `text` is a plain `host[:port]` (names, IPv4, bracketed IPv6), safe to copy into a
/// header: a hostile `Host` header cannot add directives to the policy.
fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(signaling_url: &str) -> Config {
        Config { signaling_url: signaling_url.to_owned(), ..Config::default() }
    }

    fn connect_src(csp: &str) -> Vec<&str> {
        let directive = csp.split(';').map(str::trim).find(|d| d.starts_with("connect-src")).unwrap();
        directive.split_whitespace().skip(1).collect()
    }

    #[test]
    fn connect_src_allows_this_host_and_the_signaler_of_the_template_over_websockets_and_long_polling() {
        let csp = content_security_policy(&config("ws://{host}:8081/ws"), Some("chat.example.com:8080"));
        let host = [
            "ws://chat.example.com:*",
            "wss://chat.example.com:*",
            "http://chat.example.com:*",
            "https://chat.example.com:*",
        ];
        assert_eq!(connect_src(&csp), [&["'self'"][..], &host].concat());
        let csp = content_security_policy(&config("wss://signal.{host}/ws"), Some("[::1]:8080"));
        let host = ["ws://[::1]:*", "wss://[::1]:*", "http://[::1]:*", "https://[::1]:*"];
        assert_eq!(
            connect_src(&csp),
            [&["'self'"][..], &host, &["wss://signal.[::1]", "https://signal.[::1]"]].concat()
        );
    }

    #[test]
    fn connect_src_allows_a_fixed_signaler_origin_without_its_path() {
        let csp = content_security_policy(&config("wss://Signal.Example.com/ws?x=1"), None);
        assert_eq!(connect_src(&csp), ["'self'", "wss://signal.example.com", "https://signal.example.com"]);
    }

    #[test]
    fn a_template_without_a_usable_host_allows_only_self() {
        assert_eq!(connect_src(&content_security_policy(&config("ws://{host}:8081/ws"), None)), ["'self'"]);
    }

    #[test]
    fn a_hostile_host_header_cannot_add_directives() {
        assert!(!is_host("evil.example; script-src *"));
        assert!(!is_host("a b"));
        assert!(is_host("[::1]:8080"));
        assert_eq!(websocket_origin("ws://x y/ws"), None);
        assert_eq!(websocket_origin("wss://a.example:9/ws"), Some(("wss://a.example:9".into(), "a.example".into())));
        assert_eq!(websocket_origin("http://example.com"), None);
    }

    #[test]
    fn the_policy_forbids_inline_script_and_framing() {
        let csp = content_security_policy(&Config::default(), Some("localhost:8080"));
        assert!(csp.contains("script-src 'self';"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.starts_with("default-src 'none'"));
    }
}
