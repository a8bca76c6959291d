//! Three `sioedge relay` processes sharing one `redis-server` (`adapter`): a python-socketio
//! publisher on node 1 reaches viewers on nodes 2 and 3; a late joiner on node 3 starts at a
//! keyframe from the shared cache; when node 2 dies its viewers move to node 3 and resume; when
//! Redis is killed and restarted on the same port, delivery to node 3 resumes without restarting
//! the relays.

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Peer, Viewer, now_us};
use relay_support::{Redis, Relay, relay_config};
use serde_json::Value;
use std::time::{Duration, Instant};

const STREAM: &str = "pi1/cam0";

/// Collects `peer` lines until `pred` holds over what was seen (at most `timeout`).
fn wait_until(peer: &mut Peer, timeout: Duration, what: &str, pred: impl Fn(&Peer) -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred(peer) {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        peer.collect_for(Duration::from_millis(50));
    }
}

/// Distinct clients of `peer` that printed an `ev` line.
fn clients_with(peer: &Peer, ev: &str) -> usize {
    let mut c: Vec<u64> = peer
        .all(ev)
        .iter()
        .filter_map(|l| l["client"].as_u64())
        .collect();
    c.sort_unstable();
    c.dedup();
    c.len()
}

/// Frames (`--progress` lines) each client received after wall-clock `since_us`.
fn frames_after(peer: &Peer, clients: u64, since_us: u64) -> Vec<usize> {
    (0..clients)
        .map(|c| {
            peer.all("frame")
                .iter()
                .filter(|f| f["client"] == c && f["at"].as_u64().unwrap_or(0) > since_us)
                .count()
        })
        .collect()
}

fn viewers(urls: &str, clients: u32, seconds: u32) -> Peer {
    Peer::python(
        "relay/py_viewers.py",
        &[
            "--urls",
            urls,
            "--stream",
            STREAM,
            "--clients",
            &clients.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--progress",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_through_redis_survive_a_node_death_and_a_redis_restart() {
    let mut redis = Redis::start();
    let config = relay_config(&[("pi1", "tok")], Some(redis.port));
    let n1 = Relay::start(&config);
    let n2 = Relay::start(&config);
    let n3 = Relay::start(&config);
    // ~40 s of 30 fps video, keyframe every 10th frame.
    let mut publisher = Peer::python(
        "relay/py_publisher.py",
        &[
            "--url",
            &n1.url(),
            "--token",
            "tok",
            "--device",
            "pi1",
            "--frames",
            "1200",
        ],
    );
    publisher.wait_for("connected", Duration::from_secs(10));
    // Node 3 lists the stream published on node 1.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut v = Viewer::connect(n3.addr).await;
        let ack = v.call("streams", Value::Null).await;
        if ack
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["stream"] == STREAM)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 does not list {STREAM}: {ack}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Viewers on node 2 (falling back to node 3) and on node 3.
    let mut on2 = viewers(&format!("{},{}", n2.url(), n3.url()), 2, 30);
    let mut on3 = viewers(&n3.url(), 2, 30);
    for (name, p) in [("node 2", &mut on2), ("node 3", &mut on3)] {
        wait_until(
            p,
            Duration::from_secs(15),
            &format!("{name} viewers get frames"),
            |p| clients_with(p, "first") == 2 && p.all("frame").len() >= 60,
        );
        for f in p.all("first") {
            assert_eq!(f["key"], true, "{name}: first frame is a keyframe: {f}");
        }
        eprintln!(
            "relay_cluster_procs: {name} viewers first frame after {:?} ms",
            p.all("first")
                .iter()
                .map(|f| f["ms"].clone())
                .collect::<Vec<_>>()
        );
    }

    // A late joiner on node 3 (mid-GOP with probability 9/10) starts at the cached keyframe.
    let mut late = viewers(&n3.url(), 1, 2);
    late.wait_for("done", Duration::from_secs(15));
    let first = late.wait_for("first", Duration::from_secs(1));
    assert_eq!(first["key"], true, "late joiner's first frame: {first}");
    let summary = late.wait_for("client", Duration::from_secs(1));
    assert_eq!(summary["gaps"], 0, "late joiner: {summary}");
    assert!(
        summary["frames"].as_u64().unwrap_or(0) >= 20,
        "late joiner: {summary}"
    );
    eprintln!(
        "relay_cluster_procs: late joiner on node 3: first frame (seq {}) {} ms after watch, {} frames in 2 s",
        late.all("frame")
            .first()
            .map_or(Value::Null, |f| f["seq"].clone()),
        first["ms"],
        summary["frames"]
    );

    // Kill node 2: its viewers reconnect to node 3 and resume.
    let killed = Instant::now();
    drop(n2);
    wait_until(
        &mut on2,
        Duration::from_secs(10),
        "node-2 viewers reconnect to node 3",
        |p| clients_with(p, "reconnected") == 2,
    );
    for r in on2.all("reconnected") {
        assert_eq!(r["url"], n3.url().as_str(), "{r}");
    }
    eprintln!(
        "relay_cluster_procs: node 2 killed; its viewers resumed on node 3 after {:?} ms (both within {} ms of the kill)",
        on2.all("reconnected")
            .iter()
            .map(|r| r["ms"].clone())
            .collect::<Vec<_>>(),
        killed.elapsed().as_millis()
    );
    let resumed_firsts: Vec<&Value> = on2
        .all("first")
        .into_iter()
        .filter(|f| f["url"] == n3.url().as_str())
        .collect();
    for f in &resumed_firsts {
        assert_eq!(f["key"], true, "resumed on node 3 with a keyframe: {f}");
    }

    // Kill Redis, restart it on the same port: delivery to node 3 resumes, no relay restarted.
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted_us = now_us();
    let restarted = Instant::now();
    redis.restart();
    wait_until(
        &mut on3,
        Duration::from_secs(15),
        "node-3 viewers get frames after the Redis restart",
        |p| frames_after(p, 2, restarted_us).iter().all(|&n| n >= 30),
    );
    let first_after = on3
        .all("frame")
        .iter()
        .filter_map(|f| f["at"].as_u64())
        .filter(|&at| at > restarted_us)
        .min()
        .unwrap_or(0);
    eprintln!(
        "relay_cluster_procs: Redis restarted; node-3 viewers got frames again {} ms after the restart; \
         30 frames each after {} ms",
        (first_after.saturating_sub(restarted_us)) / 1000,
        restarted.elapsed().as_millis()
    );
    // The moved node-2 viewers (now on node 3) recover too.
    wait_until(
        &mut on2,
        Duration::from_secs(10),
        "moved viewers get frames after the Redis restart",
        |p| frames_after(p, 2, restarted_us).iter().all(|&n| n >= 10),
    );
    // Node 1 (the publisher's) is still the same process.
    assert!(
        publisher.all("done").is_empty(),
        "the publisher is still publishing"
    );
    drop(n1);
}
