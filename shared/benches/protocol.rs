//! Hot paths of the wire protocol: decoding client frames, relaying a signal with `from` added,
//! and encoding server messages.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::value::RawValue;
use shared::protocol::{encode, matchmaker, signaler, CommonMessage, Envelope};
use uuid::Uuid;

/// A realistic SDP size (an audio+video offer).
const SDP_BYTES: usize = 2_000;

fn offer() -> String {
    let mut sdp = String::from("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    while sdp.len() < SDP_BYTES {
        sdp.push_str("a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0\r\n");
    }
    serde_json::json!({ "type": "offer", "sdp": sdp }).to_string()
}

fn ice() -> String {
    r#"{"type":"ice","candidate":{"candidate":"candidate:842163049 1 udp 1677729535 198.51.100.7 61427 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sX2k network-cost 999","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"sX2k"}}"#.to_owned()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let token = format!(r#"{{"type":"auth","token":"{}"}}"#, "x".repeat(180));
    for (name, frame) in [("matchmaker/available", r#"{"type":"available"}"#.to_owned()), ("matchmaker/auth", token)] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            b.iter(|| matchmaker::ClientMessage::decode(black_box(frame)))
        });
    }
    let join = format!(r#"{{"type":"join","roomId":"{}","ticket":"{}"}}"#, Uuid::new_v4(), "t".repeat(300));
    for (name, frame) in [("signaler/offer-2KB", offer()), ("signaler/ice-200B", ice()), ("signaler/join", join)] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            b.iter(|| {
                signaler::ClientMessage::decode(black_box(frame))
                    .map(|m| matches!(m, signaler::ClientMessage::Signal(_)))
            })
        });
    }
    group.finish();
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay");
    let from = Uuid::new_v4().to_string();
    for (name, frame) in [("offer-2KB", offer()), ("ice-200B", ice())] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        // What the signaler does per signal: decode, then re-encode with `from` (raw values copied).
        group.bench_with_input(BenchmarkId::new("decode+with_from", name), &frame, |b, frame| {
            b.iter(|| match signaler::ClientMessage::decode(black_box(frame)) {
                Ok(signaler::ClientMessage::Signal(envelope)) => envelope.with_from(black_box(&from)),
                _ => String::new(),
            })
        });
        let envelope = Envelope::parse(&frame).expect("a valid frame");
        group.bench_with_input(BenchmarkId::new("with_from", name), &envelope, |b, envelope| {
            b.iter(|| envelope.with_from(black_box(&from)))
        });
        // The alternative with_from avoids: parse the whole payload into a value and serialise it again.
        group.bench_with_input(BenchmarkId::new("serde_value_roundtrip", name), &frame, |b, frame| {
            b.iter(|| {
                let mut value: serde_json::Value = serde_json::from_str(black_box(frame)).unwrap_or_default();
                value["from"] = serde_json::Value::String(from.clone());
                value.to_string()
            })
        });
    }
    group.finish();
}

fn encode_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let ice_servers =
        RawValue::from_string(r#"[{"urls":"stun:stun.example.org:3478"}]"#.to_owned()).expect("valid JSON");
    let ticket = "e".repeat(330);
    let (room, a, b_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    group.bench_function("matchmaker/matched", |b| {
        b.iter(|| {
            encode(black_box(&matchmaker::ServerMessage::Matched {
                room_id: room,
                partner_id: a,
                initiator: true,
                signaling_url: "ws://127.0.0.1:8081/ws",
                ticket: &ticket,
                ice_servers: &ice_servers,
                common_interests: &[],
            }))
        })
    });
    group.bench_function("matchmaker/queued", |b| {
        b.iter(|| encode(black_box(&matchmaker::ServerMessage::Queued { waiting: 10 })))
    });
    let peers = [b_id];
    group.bench_function("signaler/joined", |b| {
        b.iter(|| {
            encode(black_box(&signaler::ServerMessage::Joined {
                room_id: room,
                peer_id: a,
                peers: &peers,
                protocol: "1.1",
            }))
        })
    });
    group.bench_function("common/pong", |b| b.iter(|| encode(black_box(&CommonMessage::Pong))));
    group.finish();
}

criterion_group!(benches, decode, relay, encode_messages);
criterion_main!(benches);
