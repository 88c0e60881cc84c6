//! The real client: two `matchbox_socket::WebRtcSocket`s (native, webrtc-rs) connect through the
//! signaler's `/matchbox/{room}?next=2`, open their WebRTC data channel and exchange a message
//! both ways.
//!
//! WebRTC gathers candidates on every interface, so the test runs in a private network namespace
//! of its own (`unshare --net`, as root): it runs itself again in there, where loopback carries an
//! extra TEST-NET address (webrtc-rs offers no 127.0.0.0/8 candidate) and everything, the
//! WebSocket, ICE, DTLS and SCTP, stays on it.

use std::process::Command;
use std::time::{Duration, Instant};

use matchbox_socket::{PeerState, WebRtcSocket};

/// Set in the copy of this test that runs inside the namespace.
const INSIDE: &str = "MATCHBOX_INTEROP_IN_NETNS";
/// Loopback up, multicast on (webrtc-rs joins the mDNS group), a TEST-NET address, a multicast route.
const NAMESPACE_SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
     ip addr add 198.51.100.1/32 dev lo && ip route add 224.0.0.0/4 dev lo";
/// How long the sockets may take to connect and exchange their messages.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn two_matchbox_sockets_connect_through_the_signaler_and_exchange_a_message_both_ways() {
    if std::env::var_os(INSIDE).is_none() {
        let name = "two_matchbox_sockets_connect_through_the_signaler_and_exchange_a_message_both_ways";
        // Its output is shown only when it fails, so that one test reports one result.
        let inner = Command::new("unshare")
            .args(["--net", "sh", "-c", &format!("{NAMESPACE_SETUP} && exec \"$0\" --exact {name} --nocapture")])
            .arg(std::env::current_exe().unwrap())
            .env(INSIDE, "1")
            .output()
            .expect("unshare (util-linux) runs the test in a network namespace of its own; it needs root");
        let stdout = String::from_utf8_lossy(&inner.stdout);
        assert!(
            inner.status.success(),
            "the test in the private network namespace failed ({}):\n{stdout}\n{}",
            inner.status,
            String::from_utf8_lossy(&inner.stderr)
        );
        if let Some(line) = stdout.lines().find(|line| line.starts_with("connected and exchanged")) {
            println!("{line}");
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(exchange());
}

async fn exchange() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = signaler::Config::default();
    config.common.ticket_secret = Some("matchbox-interop-ticket-secret-0123456789".into());
    let lifecycle = shared::lifecycle::Lifecycle::new();
    let server = tokio::spawn(signaler::serve(config, listener, lifecycle.clone()));

    let url = format!("ws://{addr}/matchbox/interop?next=2");
    let (mut a, a_loop) = WebRtcSocket::new_reliable(&url);
    let a_loop = tokio::spawn(a_loop);
    let (mut b, b_loop) = WebRtcSocket::new_reliable(&url);
    let b_loop = tokio::spawn(b_loop);

    let started = Instant::now();
    let (mut a_sees, mut b_sees) = (None, None);
    let (mut a_got, mut b_got) = (None, None);
    while a_got.is_none() || b_got.is_none() {
        assert!(started.elapsed() < PATIENCE, "no exchange within {PATIENCE:?}: a sees {a_sees:?}, b sees {b_sees:?}");
        for (peer, state) in a.update_peers() {
            if state == PeerState::Connected {
                a_sees = Some(peer);
                a.channel_mut(0).send(b"hello from a".to_vec().into(), peer);
            }
        }
        for (peer, state) in b.update_peers() {
            if state == PeerState::Connected {
                b_sees = Some(peer);
                b.channel_mut(0).send(b"hello from b".to_vec().into(), peer);
            }
        }
        for (peer, packet) in a.channel_mut(0).receive() {
            assert_eq!(Some(peer), a_sees);
            a_got = Some(packet);
        }
        for (peer, packet) in b.channel_mut(0).receive() {
            assert_eq!(Some(peer), b_sees);
            b_got = Some(packet);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a_got.as_deref(), Some(&b"hello from b"[..]));
    assert_eq!(b_got.as_deref(), Some(&b"hello from a"[..]));
    assert_eq!(a_sees, b.id(), "a's peer is b");
    assert_eq!(b_sees, a.id(), "b's peer is a");
    println!("connected and exchanged in {:?}", started.elapsed());

    drop((a, b));
    a_loop.abort();
    b_loop.abort();
    lifecycle.begin_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
