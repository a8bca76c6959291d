//! The Redis bus against a real `redis-server` (Debian package) on 127.0.0.1: per-stream delivery
//! between nodes, the shared late-joiner cache and stream list, and recovery from a Redis restart.

use bytes::Bytes;
use sioedge::relay::envelope::{Record, RecordKind};
use sioedge::relay::redis_bus::RedisBus;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;
use relay_support::{Redis, bus_node, record_seq, video_frame};

fn bus(port: u16, node: &str) -> (RedisBus, mpsc::Receiver<Record>) {
    bus_node(port, "sioedge-test", node, 256)
}

fn media(stream: &str, seq: u32, key: bool) -> Record {
    video_frame(stream, seq, key, vec![seq as u8; 1000 + seq as usize])
}

async fn recv(rx: &mut mpsc::Receiver<Record>) -> Record {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("record within 5 s")
        .expect("bus alive")
}

/// Publishes `seq` frames until one arrives (the subscription is asynchronous), returns its seq.
async fn publish_until_received(
    a: &RedisBus,
    rx: &mut mpsc::Receiver<Record>,
    stream: &str,
) -> u32 {
    for seq in 0..200 {
        a.publish(media(stream, seq, seq.is_multiple_of(10)));
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            return record_seq(&r);
        }
    }
    panic!("nothing crossed the bus");
}

#[tokio::test]
async fn frames_reach_only_subscribed_nodes_in_order_and_late_joiners_get_the_cached_keyframe() {
    let redis = Redis::start();
    let (a, mut a_rx) = bus(redis.port, "node-a");
    let (b, mut b_rx) = bus(redis.port, "node-b");
    let (_c, mut c_rx) = bus(redis.port, "node-c");
    b.subscribe("cam0");
    a.subscribe("cam0"); // a publisher's own records never come back to it

    let first = publish_until_received(&a, &mut b_rx, "cam0").await;
    for seq in first + 1..first + 50 {
        a.publish(media("cam0", seq, seq.is_multiple_of(10)));
    }
    for seq in first + 1..first + 50 {
        let r = recv(&mut b_rx).await;
        assert_eq!(r.meta, Bytes::from(format!(r#"{{"seq":{seq}}}"#)));
        assert_eq!(
            r.data,
            Bytes::from(vec![seq as u8; 1000 + seq as usize]),
            "byte-exact frame"
        );
        assert_eq!(&*r.node, "node-a");
    }
    assert!(a_rx.try_recv().is_err(), "own records are not echoed");
    assert!(
        c_rx.try_recv().is_err(),
        "unsubscribed node receives nothing"
    );

    // The current GOP (newest keyframe and the frames since) is the shared late-joiner cache.
    let last_key = (first..first + 50)
        .rev()
        .find(|s| s.is_multiple_of(10))
        .expect("a keyframe");
    let gop = b.cached_gop("cam0", "video").await.expect("redis");
    let seqs: Vec<String> = gop
        .iter()
        .map(|r| String::from_utf8_lossy(&r.meta).into_owned())
        .collect();
    let expected: Vec<String> = (last_key..first + 50)
        .map(|s| format!(r#"{{"seq":{s}}}"#))
        .collect();
    assert_eq!(seqs, expected);
    assert!(gop[0].key && gop[1..].iter().all(|r| !r.key));

    // Announces are listed by every node; Gone removes them.
    a.publish(Record {
        kind: RecordKind::Announce,
        meta: Bytes::from_static(br#"{"stream":"cam0"}"#),
        ..media("cam0", 0, false)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let streams = b.streams().await.expect("redis");
        if streams
            .iter()
            .any(|(id, json)| id == "cam0" && json.as_ref() == br#"{"stream":"cam0"}"#)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "announce not listed: {streams:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.publish(Record {
        kind: RecordKind::Gone,
        ..media("cam0", 0, false)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.streams().await.expect("redis").is_empty() {
        assert!(Instant::now() < deadline, "gone stream still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn nodes_recover_when_redis_restarts() {
    let mut redis = Redis::start();
    let port = redis.port;
    let (a, _a_rx) = bus(port, "node-a");
    let (b, mut b_rx) = bus(port, "node-b");
    b.subscribe("cam1");
    publish_until_received(&a, &mut b_rx, "cam1").await;

    redis.kill();
    // Publishing while Redis is down drops (bounded), never blocks.
    let t = Instant::now();
    for seq in 0..2000 {
        a.publish(media("cam1", seq, false));
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "publish must not block"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.stats().connected.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "loss of redis not detected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while b_rx.try_recv().is_ok() {}
    // The status shows why and since when, and counts the failures.
    let (error, at) = b
        .stats()
        .last_error
        .lock()
        .unwrap()
        .clone()
        .expect("last error");
    assert_eq!(error, "connection lost");
    assert!(at.elapsed().unwrap_or_default() < Duration::from_secs(5));
    assert!(b.stats().failed_attempts.load(Ordering::Relaxed) >= 1);

    redis.restart();
    let t = Instant::now();
    publish_until_received(&a, &mut b_rx, "cam1").await;
    let recovered = t.elapsed();
    assert!(
        recovered < Duration::from_secs(8),
        "recovered after {recovered:?}"
    );
    assert!(b.stats().reconnects.load(Ordering::Relaxed) >= 1);
    assert_eq!(b.stats().failed_attempts.load(Ordering::Relaxed), 0);
    assert!(
        b.stats().last_error.lock().unwrap().is_some(),
        "kept after recovery"
    );
    assert!(a.stats().publish_dropped.load(Ordering::Relaxed) > 0);
}
