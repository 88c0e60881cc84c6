//! What both services share on the wire: errors that keep the socket open, the size limit,
//! binary frames, invalid UTF-8, pings, origin checks and the operational HTTP routes.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{http_get, Client, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Both services' socket URLs, with a greeting to skip on the matchmaker.
async fn sockets(stack: &Stack) -> Vec<Client> {
    let (mm, _) = Client::matchmaker(stack).await;
    vec![mm, Client::signaler(stack).await]
}

#[tokio::test]
async fn ping_is_answered_with_pong_by_both_services() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        client.send(json!({"type":"ping"})).await;
        assert_eq!(client.recv().await, json!({"type":"pong"}));
    }
}

#[tokio::test]
async fn an_unknown_type_is_an_error_not_a_disconnect() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        client.send(json!({"type":"dance","with":"me"})).await;
        client.recv_error("unknown-type").await;
        client.assert_open().await;
    }
}

#[tokio::test]
async fn malformed_messages_are_bad_messages_and_the_socket_stays_open() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        for text in
            ["not json", "[1,2]", "42", "\"available\"", "{}", "{\"type\":7}", "{\"type\":null}", "{\"type\":\"ping\""]
        {
            client.send_text(text).await;
            client.recv_error("bad-message").await;
        }
        client.assert_open().await;
    }
}

#[tokio::test]
async fn unknown_extra_fields_are_ignored() {
    let stack = Stack::start().await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"available","future":"field","n":[1]})).await;
    a.recv_type("queued").await;
}

#[tokio::test]
async fn binary_frames_are_bad_messages() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        client.send_binary(b"{\"type\":\"ping\"}".to_vec()).await;
        client.recv_error("bad-message").await;
        client.assert_open().await;
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_is_too_large_and_closes_with_1009() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        let text = json!({"type":"ping","pad":"x".repeat(65_536)}).to_string();
        client.send_text(&text).await;
        client.recv_error("too-large").await;
        let close = client.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1009);
    }
}

#[tokio::test]
async fn a_frame_exactly_at_the_limit_is_accepted() {
    let stack = Stack::start().await;
    for mut client in sockets(&stack).await {
        let skeleton = json!({"type":"ping","pad":""}).to_string();
        let text = json!({"type":"ping","pad":"x".repeat(65_536 - skeleton.len())}).to_string();
        assert_eq!(text.len(), 65_536);
        client.send_text(&text).await;
        client.recv_type("pong").await;
    }
}

#[tokio::test]
async fn the_size_limit_follows_max_message_bytes() {
    let (mut mm, sig) = support::configs();
    mm.common.max_message_bytes = 2_048;
    let stack = Stack::start_with(mm, sig).await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    a.send(json!({"type":"ping","pad":"x".repeat(2_100)})).await;
    a.recv_error("too-large").await;
}

#[tokio::test]
async fn with_allowed_origins_an_unlisted_or_missing_origin_gets_403() {
    let (mut mm, mut sig) = support::configs();
    let origins = shared::origin::AllowedOrigins::parse("https://chat.example.com").unwrap();
    mm.common.allowed_origins = origins.clone();
    sig.common.allowed_origins = origins;
    let stack = Stack::start_with(mm, sig).await;
    for url in [stack.mm_url(), stack.sig_url()] {
        for origin in [None, Some("https://evil.example.com"), Some("http://chat.example.com")] {
            match Client::connect_with_origin(&url, origin).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
                Err(other) => panic!("expected HTTP 403, got {other}"),
                Ok(_) => panic!("{origin:?} was let in"),
            }
        }
        let mut ok = Client::connect_with_origin(&url, Some("https://chat.example.com")).await.expect("listed origin");
        ok.send(json!({"type":"ping"})).await;
        loop {
            if ok.recv().await["type"] == "pong" {
                break;
            }
        }
    }
}

#[tokio::test]
async fn without_allowed_origins_any_origin_may_connect() {
    let stack = Stack::start().await;
    for url in [stack.mm_url(), stack.sig_url()] {
        assert!(Client::connect_with_origin(&url, Some("https://anywhere.example")).await.is_ok());
        assert!(Client::connect_with_origin(&url, None).await.is_ok());
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_while_running() {
    let stack = Stack::start().await;
    for addr in [stack.matchmaker, stack.signaler] {
        let (status, _, body) = http_get(addr, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert_eq!(http_get(addr, "/readyz").await.0, 200);
    }
}

#[tokio::test]
async fn metrics_report_connections_queue_matches_relays_and_errors() {
    let stack = Stack::start().await;
    let p = support::pair(&stack).await;
    let mut a = Client::signaler(&stack).await;
    a.send(support::join(&p.a_matched)).await;
    a.recv_type("joined").await;
    let mut b = Client::signaler(&stack).await;
    b.send(support::join(&p.b_matched)).await;
    b.recv_type("joined").await;
    a.send(json!({"type":"offer","sdp":"v=0"})).await;
    b.recv_type("offer").await;
    b.send(json!({"type":"nope"})).await;
    b.recv_error("unknown-type").await;
    let (status, head, _) = http_get(stack.matchmaker, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("openmetrics-text"));
    // Gauges are exact in memory and refreshed every heartbeat on Redis.
    for line in
        ["matchmaker_connections 2", "matchmaker_queue_length 0", "matchmaker_rooms 1", "matchmaker_matches_total 1"]
    {
        support::wait_for_metric(stack.matchmaker, line).await;
    }
    for line in [
        "signaler_connections 2",
        "signaler_relayed_messages_total 1",
        "signaler_errors_total{code=\"unknown-type\"} 1",
    ] {
        support::wait_for_metric(stack.signaler, line).await;
    }
}

#[tokio::test]
async fn a_plain_get_on_the_socket_path_is_a_bad_request() {
    let stack = Stack::start().await;
    assert_eq!(http_get(stack.matchmaker, "/ws").await.0, 400);
    assert_eq!(http_get(stack.signaler, "/ws").await.0, 400);
    assert_eq!(http_get(stack.signaler, "/nothing-here").await.0, 404);
}

#[tokio::test]
async fn the_chat_page_is_served_at_the_root() {
    let stack = Stack::start().await;
    let (status, head, body) = http_get(stack.matchmaker, "/").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"));
    assert!(body.contains("<html") || body.contains("<!doctype") || body.contains("<!DOCTYPE"));
}

/// Opens a socket by hand: the upgrade request written and its response read to the end of
/// the head, so that what follows on the stream is WebSocket frames.
async fn socket_by_hand(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// Frame opcodes (RFC 6455, 5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

/// Writes one short client frame, masked as clients must; `fin` is false for a fragment with
/// more to come.
async fn write_frame(stream: &mut tokio::net::TcpStream, fin: bool, opcode: u8, payload: &[u8]) {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let len = u8::try_from(payload.len()).ok().filter(|len| *len < 126).expect("a short frame");
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode, 0x80 | len];
    frame.extend(MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(byte, mask)| byte ^ mask));
    stream.write_all(&frame).await.unwrap();
}

/// Reads server frames, skipping all others, until a close frame; returns its code, or `None`
/// if the connection ends first.
async fn read_close_code(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await.ok()?;
            assert_eq!(head[1] & 0x80, 0, "a server frame is never masked");
            let len = match head[1] & 0x7f {
                126 => u64::from(stream.read_u16().await.ok()?),
                127 => stream.read_u64().await.ok()?,
                len => u64::from(len),
            };
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            stream.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == CLOSE {
                return payload.get(..2).map(|code| u16::from_be_bytes([code[0], code[1]]));
            }
        }
    };
    tokio::time::timeout(support::PATIENCE, read).await.expect("timed out waiting for a close frame")
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let stack = Stack::start().await;
    let mut bystanders = sockets(&stack).await;
    for addr in [stack.matchmaker, stack.signaler] {
        let mut stream = socket_by_hand(addr).await;
        write_frame(&mut stream, true, TEXT, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}").await;
        assert_eq!(read_close_code(&mut stream).await, Some(1007), "{addr}");
    }
    for client in &mut bystanders {
        client.assert_open().await;
    }
}

#[tokio::test]
async fn invalid_utf8_across_fragments_closes_with_1007() {
    let stack = Stack::start().await;
    for addr in [stack.matchmaker, stack.signaler] {
        let mut stream = socket_by_hand(addr).await;
        // The first fragment ends inside a character (the start of `€`) that the second does not finish.
        write_frame(&mut stream, false, TEXT, b"{\"type\":\"ping\",\"x\":\"\xe2\x82").await;
        write_frame(&mut stream, true, CONTINUATION, b"\xff\"}").await;
        assert_eq!(read_close_code(&mut stream).await, Some(1007), "{addr}");
    }
}

#[tokio::test]
async fn a_socket_that_never_answers_pings_is_dropped_after_two_intervals() {
    let (mut mm, mut sig) = support::configs();
    mm.common.ping_interval = Duration::from_millis(200);
    sig.common.ping_interval = Duration::from_millis(200);
    let stack = Stack::start_with(mm, sig).await;
    for addr in [stack.matchmaker, stack.signaler] {
        // Opened by hand, and then never answered, like a vanished phone.
        let mut stream = socket_by_hand(addr).await;
        // Read (without answering) until the server gives up on us.
        let mut buf = [0u8; 4096];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the server kept a silent socket open");
    }
}

#[tokio::test]
async fn a_socket_that_answers_pings_stays_open() {
    let (mut mm, sig) = support::configs();
    mm.common.ping_interval = Duration::from_millis(100);

    let stack = Stack::start_with(mm, sig).await;
    let (mut a, _) = Client::matchmaker(&stack).await;
    // Reading answers the pings (tungstenite does), so this spans many intervals.
    for _ in 0..6 {
        a.expect_silence().await;
    }
    a.assert_open().await;
}
