//! The security headers of the matchmaker's HTTP answers: a Content-Security-Policy that lets
//! the page load only its own files and open sockets only to this site and its signaler, no
//! inline script, no framing, no MIME sniffing, no referrer.

mod support;

use std::net::SocketAddr;

use support::{http_get, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET with a chosen `Host` header: (status, lower-cased head, body).
async fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(support::PATIENCE, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The value of a header in a lower-cased response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::trim))
}

/// The sources of one CSP directive.
fn directive<'a>(csp: &'a str, name: &str) -> Vec<&'a str> {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.split_whitespace().next() == Some(name))
        .map(|d| d.split_whitespace().skip(1).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_may_open_sockets_only_to_its_own_host() {
    let stack = Stack::start().await;
    let host = format!("127.0.0.1:{}", stack.matchmaker.port());
    let (status, head, _) = get_with_host(stack.matchmaker, "/", &host).await;
    assert_eq!(status, 200);
    let csp = header(&head, "content-security-policy").expect("a content-security-policy");
    assert_eq!(directive(csp, "default-src"), ["'none'"]);
    // The signaler (ws://127.0.0.1:<its port>) is on the page's host: any port of it is allowed,
    // so that an open page can follow a signaler that moved (a restart, another instance); over
    // HTTP too, for the long-polling fallback.
    assert_eq!(
        directive(csp, "connect-src"),
        ["'self'", "ws://127.0.0.1:*", "wss://127.0.0.1:*", "http://127.0.0.1:*", "https://127.0.0.1:*"]
    );
}

#[tokio::test]
async fn a_signaler_on_another_host_is_the_only_other_socket_origin() {
    let (mut mm, sig) = support::configs();
    mm.signaling_url = "wss://signal.example.com/ws".into();
    let stack = Stack::start_with(mm, sig).await;
    let (_, head, _) = get_with_host(stack.matchmaker, "/", "chat.example.com").await;
    let csp = header(&head, "content-security-policy").unwrap();
    assert_eq!(
        directive(csp, "connect-src"),
        [
            "'self'",
            "ws://chat.example.com:*",
            "wss://chat.example.com:*",
            "http://chat.example.com:*",
            "https://chat.example.com:*",
            "wss://signal.example.com",
            "https://signal.example.com"
        ]
    );
}

#[tokio::test]
async fn the_page_has_no_inline_script_and_the_policy_allows_none() {
    let stack = Stack::start().await;
    let (_, head, body) = http_get(stack.matchmaker, "/").await;
    let csp = header(&head.to_ascii_lowercase(), "content-security-policy").unwrap().to_owned();
    assert_eq!(directive(&csp, "script-src"), ["'self'"]);
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let html = body.to_ascii_lowercase();
    for tag in html.split("<script").skip(1) {
        let open_tag = tag.split('>').next().unwrap_or_default();
        assert!(open_tag.contains("src="), "an inline <script{open_tag}>");
    }
    let handlers = html.split_whitespace().filter(|w| w.starts_with("on") && w.contains("=\"")).count();
    assert_eq!(handlers, 0, "inline event handlers in the page");
}

#[tokio::test]
async fn the_page_may_not_be_framed() {
    let stack = Stack::start().await;
    let (_, head, _) = http_get(stack.matchmaker, "/").await;
    let head = head.to_ascii_lowercase();
    assert_eq!(directive(header(&head, "content-security-policy").unwrap(), "frame-ancestors"), ["'none'"]);
    assert_eq!(header(&head, "x-frame-options"), Some("deny"));
}

#[tokio::test]
async fn every_answer_says_nosniff_and_no_referrer() {
    let stack = Stack::start().await;
    for path in ["/", "/js/app.js", "/css/app.css", "/api/stats", "/healthz", "/no-such-file"] {
        let (_, head, _) = http_get(stack.matchmaker, path).await;
        let head = head.to_ascii_lowercase();
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&head, "referrer-policy"), Some("no-referrer"), "{path}");
        assert!(header(&head, "content-security-policy").is_some(), "{path}");
    }
}

#[tokio::test]
async fn a_hostile_host_header_cannot_widen_the_policy() {
    let stack = Stack::start().await;
    let (_, head, _) = get_with_host(stack.matchmaker, "/", "evil.example; script-src *").await;
    let csp = header(&head, "content-security-policy").unwrap();
    assert!(!csp.contains("evil"), "{csp}");
    assert_eq!(directive(csp, "script-src"), ["'self'"]);
    assert_eq!(directive(csp, "connect-src"), ["'self'"]);
}
