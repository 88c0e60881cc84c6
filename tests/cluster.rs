//! Several instances on one Redis, or on a Redis Cluster of three masters, behave as one
//! service: real `redis-server`s, real processes of the runner (each one matchmaker and one
//! signaler), clients spread over them, instances killed with SIGKILL (the queue's owner among
//! them), and Redis stopped for ten seconds and started again.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::instances::*;
use support::{http_get, join, match_up, Client};

on_both!(
    pair_in_fifo_order_and_relay_across_instances,
    instances_on_one_redis_pair_in_fifo_order_and_relay_across_instances,
    instances_on_a_redis_cluster_pair_in_fifo_order_and_relay_across_instances
);
on_both!(
    a_killed_instance_vanishes,
    a_killed_instance_vanishes_from_the_queue_and_rooms_on_one_redis,
    a_killed_instance_vanishes_from_the_queue_and_rooms_on_a_redis_cluster
);
on_both!(
    a_killed_queue_owner_hands_over,
    a_killed_queue_owner_hands_over_and_the_waiting_keep_their_place_on_one_redis,
    a_killed_queue_owner_hands_over_and_the_waiting_keep_their_place_on_a_redis_cluster
);
on_both!(
    resume_through_another_instance,
    a_client_dropped_on_one_instance_resumes_through_another_on_one_redis,
    a_client_dropped_on_one_instance_resumes_through_another_on_a_redis_cluster
);
on_both!(
    no_ghost_match,
    nobody_is_matched_with_a_client_of_a_dead_instance_on_one_redis,
    nobody_is_matched_with_a_client_of_a_dead_instance_on_a_redis_cluster
);

on_both!(
    matchbox_rooms_span_instances,
    matchbox_pools_and_signals_span_instances_and_outlive_the_owner_on_one_redis,
    matchbox_pools_and_signals_span_instances_and_outlive_the_owner_on_a_redis_cluster
);

/// A matchbox peer on one instance: its socket and its id.
async fn matchbox_peer(instance: &Instance, room: &str) -> (Client, String) {
    let mut client = Client::connect(&format!("ws://{}/matchbox/{room}", instance.signaler)).await;
    let assigned = client.recv().await;
    (client, assigned["IdAssigned"].as_str().unwrap_or_else(|| panic!("{assigned}")).to_owned())
}

/// Peers of one `?next=2` pool alternate between two instances: arrivals pair up in order
/// across them, signals and `PeerLeft` cross Redis, and when the instance of the room's owner
/// dies, the survivor takes the room over: its peers hear that the dead instance's peers left,
/// and the pool goes on pairing.
async fn matchbox_rooms_span_instances(redis: Redis) {
    let mut instances = [start_ready(&redis).await, start_ready(&redis).await];
    let room = "span?next=2";
    let (mut a, a_id) = matchbox_peer(&instances[0], room).await;
    let (mut b, b_id) = matchbox_peer(&instances[1], room).await;
    assert_eq!(a.recv().await, json!({"NewPeer": b_id}));
    let (mut c, c_id) = matchbox_peer(&instances[1], room).await;
    let (mut d, d_id) = matchbox_peer(&instances[0], room).await;
    // Arrival order is the order the room's owner hears the joins in; c's comes through Redis
    // and d's does not, so either may be first. One of the two hears of the other.
    let first = tokio::select! {
        heard = c.recv() => heard,
        heard = d.recv() => heard,
    };
    assert!(first == json!({"NewPeer": d_id}) || first == json!({"NewPeer": c_id}), "{first}");
    a.send_text(&format!(r#"{{"Signal":{{"receiver":"{b_id}","data":{{"Offer":"across"}}}}}}"#)).await;
    assert_eq!(b.recv().await, json!({"Signal": {"sender": a_id, "data": {"Offer": "across"}}}));
    d.send_text(&format!(r#"{{"Signal":{{"receiver":"{c_id}","data":"back"}}}}"#)).await;
    assert_eq!(c.recv().await, json!({"Signal": {"sender": d_id, "data": "back"}}));
    b.expect_silence().await;

    // The owner (the instance of the first peer) dies: its peers a and d are gone.
    instances[0].kill();
    drop((a, d));
    let patience = shared::redis::INSTANCE_TTL + shared::redis::HEARTBEAT_INTERVAL * 3;
    assert_eq!(b.recv_within(patience).await, json!({"PeerLeft": a_id}));
    assert_eq!(c.recv_within(patience).await, json!({"PeerLeft": d_id}));
    // The pool's groups survived the takeover: a newcomer starts a new pair.
    let (mut e, _) = matchbox_peer(&instances[1], room).await;
    let (_f, f_id) = matchbox_peer(&instances[1], room).await;
    assert_eq!(e.recv().await, json!({"NewPeer": f_id}));
    b.expect_silence().await;
    c.expect_silence().await;
}

/// The owner of the queue announces a match through an instance that started a moment ago,
/// well within one heartbeat: it looks the new signaling address up instead of sending its own
/// client elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_partners_go_to_a_new_instances_signaler_from_its_first_match() {
    let redis = Redis::single();
    let owner = start_ready(&redis).await;
    let newcomer = Instance::start(&redis);
    // The newcomer's client waits first, so it is the initiator, and the room goes its way.
    let (mut first, _) = connect(&newcomer.url()).await;
    first.send(json!({"type":"available"})).await;
    first.recv_type("queued").await;
    let (mut second, _) = connect(&owner.url()).await;
    second.send(json!({"type":"available"})).await;
    second.recv_type("queued").await;
    let (to_first, to_second) = (first.recv_type("matched").await, second.recv_type("matched").await);
    assert_eq!(to_first["initiator"], true);
    assert_eq!(to_first["signalingUrl"], newcomer.signaler_url().as_str());
    assert_eq!(to_second["signalingUrl"], newcomer.signaler_url().as_str());
}

on_both!(
    a_drained_instance_rehomes_its_waiting_client,
    a_waiting_client_of_a_drained_instance_resumes_its_place_on_another_on_one_redis,
    a_waiting_client_of_a_drained_instance_resumes_its_place_on_another_on_a_redis_cluster
);

async fn a_drained_instance_rehomes_its_waiting_client(redis: Redis) {
    let mut draining = start_ready(&redis).await;
    let staying = start_ready(&redis).await;
    let mut first = Client::connect(&draining.url()).await;
    let ready = first.recv_type("ready").await;
    first.send(json!({"type":"available"})).await;
    first.recv_type("queued").await;
    draining.terminate();
    assert_eq!(u16::from(first.expect_close().await.expect("a close frame").code), 1012);
    // Someone else arrives meanwhile, on the other instance: the first keeps its place.
    let (mut later, _) = connect(&staying.url()).await;
    later.send(json!({"type":"available"})).await;
    later.recv_type("queued").await;
    let (mut again, _) = connect(&staying.url()).await;
    again.send(json!({"type":"resume","token":ready["resumeToken"]})).await;
    let resumed = again.recv_type("resumed").await;
    assert_eq!((resumed["clientId"].clone(), resumed["state"].clone()), (ready["clientId"].clone(), json!("queued")));
    let matched = again.recv_type("matched").await;
    assert_eq!(matched["initiator"], true, "it waited longer");
    assert_eq!(later.recv_type("matched").await["partnerId"], ready["clientId"]);
}

/// A peer alone in its room on a draining signaler takes its seat back on another instance,
/// where its partner then finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_alone_on_a_drained_signaler_takes_its_seat_back_on_another() {
    let redis = Redis::single();
    let mut draining = start_ready(&redis).await;
    let staying = start_ready(&redis).await;
    let (mut a, a_id) = connect(&staying.url()).await;
    let (mut b, _) = connect(&staying.url()).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    let mut alone = Client::connect(&draining.signaler_url()).await;
    alone.send(join(&a_matched)).await;
    alone.recv_type("joined").await;
    alone.send(json!({"type":"offer","sdp":"before the drain"})).await;
    draining.terminate();
    assert_eq!(u16::from(alone.expect_close().await.expect("a close frame").code), 1012);
    let mut back = Client::connect(&staying.signaler_url()).await;
    back.send(join(&a_matched)).await;
    back.recv_type("joined").await;
    let mut partner = Client::connect(&staying.signaler_url()).await;
    partner.send(join(&b_matched)).await;
    assert_eq!(partner.recv_type("joined").await["peers"], json!([a_id]));
    assert_eq!(partner.recv_type("offer").await["sdp"], "before the drain");
}

async fn pair_in_fifo_order_and_relay_across_instances(redis: Redis) {
    // No wait for a heartbeat: an instance looks up a signaling address it has not heard of
    // before it announces a match that sends a client there.
    let instances = [start_ready(&redis).await, start_ready(&redis).await];
    // Clients alternate between the instances, so every pair spans both.
    let mut clients = Vec::new();
    for i in 0..24 {
        let (mut client, id) = connect(&instances[i % 2].url()).await;
        client.send(json!({"type":"available"})).await;
        client.recv_type("queued").await;
        clients.push((client, id));
    }
    let mut matched = Vec::new();
    for (client, _) in clients.iter_mut() {
        matched.push(client.recv_type("matched").await);
    }
    for i in (0..24).step_by(2) {
        assert_eq!(matched[i]["partnerId"], clients[i + 1].1.as_str(), "client {i} not paired in arrival order");
        assert_eq!(matched[i + 1]["partnerId"], clients[i].1.as_str());
        assert_eq!(matched[i]["roomId"], matched[i + 1]["roomId"]);
        assert_ne!(matched[i]["initiator"], matched[i + 1]["initiator"]);
    }
    for (client, _) in clients.iter_mut() {
        client.expect_silence().await;
    }
    let s = stats(instances[0].matchmaker).await;
    assert_eq!(s, json!({"online":24,"waiting":0,"rooms":12}));

    // Each instance has its own signaling address, so both peers are sent to the same one,
    // from the very first match on.
    for i in (0..24).step_by(2) {
        assert_eq!(matched[i]["signalingUrl"], matched[i + 1]["signalingUrl"], "pair {i}");
    }

    // Behind one load-balanced address they may still land on different instances: the signal
    // crosses Redis to the instance that runs the room.
    let here = matched[0]["signalingUrl"].as_str().unwrap();
    let there = instances.iter().map(Instance::signaler_url).find(|url| url != here).unwrap();
    let mut a = Client::connect(here).await;
    let mut b = Client::connect(&there).await;
    a.send(join(&matched[0])).await;
    a.recv_type("joined").await;
    a.send(json!({"type":"offer","sdp":"held across instances"})).await;
    b.send(join(&matched[1])).await;
    assert_eq!(b.recv_type("joined").await["peers"], json!([clients[0].1]));
    assert_eq!(b.recv_type("offer").await["from"], clients[0].1.as_str());
    a.recv_type("peer-joined").await;
    for n in 0..200 {
        a.send(json!({"type":"ice","candidate":{"n":n}})).await;
    }
    for n in 0..200 {
        let got = b.recv().await;
        assert_eq!(got["candidate"]["n"], n, "{got}");
    }
    b.send(json!({"type":"answer","sdp":"back"})).await;
    assert_eq!(a.recv_type("answer").await["from"], clients[1].1.as_str());

    // Same ticket on the other instance's signaler replaces the first connection.
    let mut a2 = Client::connect(&there).await;
    a2.send(join(&matched[0])).await;
    a2.recv_type("joined").await;
    assert_eq!(u16::from(a.expect_close().await.expect("close frame").code), 4000);
    b.recv_type("peer-joined").await;
    b.send(json!({"type":"offer","sdp":"to the new one"})).await;
    assert_eq!(a2.recv_type("offer").await["sdp"], "to the new one");
}

async fn a_killed_instance_vanishes(redis: Redis) {
    let mut instances = [Instance::start(&redis), Instance::start(&redis)];
    // A pair across the instances, each joined on the signaler of its own instance.
    let (mut a, a_id) = connect(&instances[0].url()).await;
    let (mut b, b_id) = connect(&instances[1].url()).await;
    let (a_matched, b_matched) = match_up(&mut a, &mut b).await;
    let mut a_sig = Client::connect(&instances[0].signaler_url()).await;
    a_sig.send(join(&a_matched)).await;
    a_sig.recv_type("joined").await;
    let mut b_sig = Client::connect(&instances[1].signaler_url()).await;
    b_sig.send(join(&b_matched)).await;
    b_sig.recv_type("joined").await;
    a_sig.recv_type("peer-joined").await;
    // And a client waiting on the instance about to die.
    let (mut ghost, _) = connect(&instances[1].url()).await;
    ghost.send(json!({"type":"available"})).await;
    ghost.recv_type("queued").await;

    let killed = Instant::now();
    instances[1].kill();
    drop((b, b_sig, ghost));
    // The survivor's client hears that its partner is away (it may resume through another
    // instance), then, when the grace window ends, that it left: from both services.
    let patience = shared::redis::INSTANCE_TTL + shared::redis::HEARTBEAT_INTERVAL * 3;
    assert_eq!(a.recv_within(patience).await["type"], "partner-away");
    assert_eq!(a_sig.recv_within(patience).await, json!({"type":"peer-away","peerId":b_id}));
    assert_eq!(a.recv_within(GRACE * 3).await["type"], "partner-left");
    assert_eq!(a_sig.recv_within(GRACE * 3).await, json!({"type":"peer-left","peerId":b_id}));
    println!("dead instance cleaned up after {:?}", killed.elapsed());
    a.recv_type("queued").await;
    // Nobody is paired with the dead instance's waiting client: a newcomer meets `a`.
    let (mut c, _) = connect(&instances[0].url()).await;
    c.send(json!({"type":"available"})).await;
    c.recv_type("queued").await;
    assert_eq!(c.recv_type("matched").await["partnerId"], a_id.as_str());
    let s = stats(instances[0].matchmaker).await;
    assert_eq!(s, json!({"online":2,"waiting":0,"rooms":1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_requests_get_unavailable_and_the_service_recovers_by_itself() {
    let mut redis = Redis::single();
    let instance = Instance::start(&redis);
    let (mut a, _) = connect(&instance.url()).await;
    a.send(json!({"type":"available"})).await;
    a.recv_type("queued").await;
    assert_eq!(http_get(instance.matchmaker, "/readyz").await.0, 200);

    redis.stop();
    let stopped = Instant::now();
    let (mut b, _) = connect(&instance.url()).await;
    b.send(json!({"type":"available"})).await;
    b.recv_error("unavailable").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(instance.matchmaker, "/readyz").await.0 != 503 {
        assert!(Instant::now() < deadline, "/readyz stayed 200 with Redis down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ten seconds unreachable, as an outage or a failover would be.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    b.send(json!({"type":"available"})).await;
    b.recv_error("unavailable").await;

    redis.launch();
    available_when_back(&mut b).await;
    // `a` kept its place through the outage (Redis persisted it), so the two meet.
    a.recv_type("matched").await;
    b.recv_type("matched").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(instance.matchmaker, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_killed_queue_owner_hands_over(redis: Redis) {
    let mut owner = start_ready(&redis).await;
    let other = start_ready(&redis).await;
    let (mut waiting, waiting_id) = connect(&other.url()).await;
    waiting.send(json!({"type":"available"})).await;
    waiting.recv_type("queued").await;

    owner.kill();
    // A newcomer while nobody owns the queue: its `available` waits in Redis for the next owner,
    // which meets it with the client that waited before the owner died.
    let (mut newcomer, newcomer_id) = connect(&other.url()).await;
    available_when_back(&mut newcomer).await;
    let patience = shared::redis::INSTANCE_TTL * 3;
    let matched = waiting.recv_within(patience).await;
    assert_eq!(matched["type"], "matched", "{matched}");
    assert_eq!(matched["partnerId"], newcomer_id.as_str());
    assert_eq!(newcomer.recv_type("matched").await["partnerId"], waiting_id.as_str());
    waiting.expect_silence().await;
    assert_eq!(stats(other.matchmaker).await["rooms"], 1);
}

async fn no_ghost_match(redis: Redis) {
    let owner = start_ready(&redis).await;
    let mut doomed = start_ready(&redis).await;
    let (mut ghost, _) = connect(&doomed.url()).await;
    ghost.send(json!({"type":"available"})).await;
    ghost.recv_type("queued").await;

    doomed.kill();
    drop(ghost);
    // At once, before the dead instance's heartbeat runs out: the owner would pair `live` with
    // the ghost, but the dead instance cannot confirm it, so `live` only ever hears `queued`.
    let (mut live, live_id) = connect(&owner.url()).await;
    live.send(json!({"type":"available"})).await;
    live.recv_type("queued").await;
    live.expect_silence_for(shared::redis::INSTANCE_TTL).await;
    // It kept the head of the queue: the next client meets it.
    let (mut next, _) = connect(&owner.url()).await;
    next.send(json!({"type":"available"})).await;
    next.recv_type("queued").await;
    assert_eq!(next.recv_type("matched").await["partnerId"], live_id.as_str());
    assert_eq!(live.recv_type("matched").await["type"], "matched");
}

async fn resume_through_another_instance(redis: Redis) {
    let instances = [start_ready(&redis).await, start_ready(&redis).await];
    let mut a = Client::connect(&instances[0].url()).await;
    let a_ready = a.recv_type("ready").await;
    let (mut b, _) = connect(&instances[1].url()).await;
    let (a_matched, _) = match_up(&mut a, &mut b).await;

    drop(a); // a network drop, seen by the first instance
    assert_eq!(b.recv_type("partner-away").await["roomId"], a_matched["roomId"]);
    let (mut a2, _) = connect(&instances[1].url()).await;
    a2.send(json!({"type":"resume","token":a_ready["resumeToken"]})).await;
    let resumed = a2.recv_type("resumed").await;
    assert_eq!(resumed["clientId"], a_ready["clientId"]);
    assert_eq!(resumed["state"], "matched");
    assert_eq!(a2.recv_type("matched").await["roomId"], a_matched["roomId"]);
    assert_eq!(b.recv_type("partner-back").await["roomId"], a_matched["roomId"]);
}
