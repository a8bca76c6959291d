//! Two hubs joined by the Redis adapter through a real `redis-server`: remote streams are listed,
//! a late joiner on the other node gets the shared GOP keyframe-first with no gap, live frames
//! follow in order, and a node's streams vanish when it dies.

use bytes::Bytes;
use sioedge::contract::{Announce, Codec, MediaFrame, TrackInfo};
use sioedge::hub::{CacheLimits, Hub, SharedEvent, Sink};
use sioedge::queue::{Class, Push};
use sioedge::relay::cluster::RedisAdapter;
use sioedge::relay::redis_bus::BusConfig;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;
use relay_support::Redis;

/// A receiver that records the (event name, JSON) of everything it is sent.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, serde_json::Value)>>);

impl Sink<()> for Recorder {
    fn offer(&self, packet: &SharedEvent<()>, _: Class, _: usize) -> Push {
        let json = serde_json::from_str(&packet.event.json).expect("json");
        self.0
            .lock()
            .expect("lock")
            .push((packet.event.name.to_owned(), json));
        Push::Queued
    }
}

impl Recorder {
    fn media(&self) -> Vec<(u64, bool)> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == "media")
            .map(|(_, j)| {
                (
                    j["seq"].as_u64().expect("seq"),
                    j["key"].as_bool().expect("key"),
                )
            })
            .collect()
    }
}

fn node(port: u16, name: &str) -> (Arc<Hub<()>>, Arc<RedisAdapter>) {
    let (adapter, feeder) = RedisAdapter::start(BusConfig {
        url: format!("redis://127.0.0.1:{port}/0"),
        prefix: "sioedge-cluster-test".into(),
        node: name.into(),
        ttl: Duration::from_millis(1500),
        queue: 1024,
    })
    .expect("adapter");
    let hub = Arc::new(Hub::new(|_| (), adapter.clone(), CacheLimits::default()));
    tokio::spawn(feeder.run(hub.clone()));
    (hub, adapter)
}

fn frame(i: u64) -> MediaFrame {
    MediaFrame {
        stream: "cam0".into(),
        track: "video".into(),
        codec: Codec::H264,
        pts: i * 33_333,
        duration: 33_333,
        key: i.is_multiple_of(10),
        t: 0,
        data: Bytes::from(vec![i as u8; 500]),
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_on_another_node_gets_the_gop_then_live_frames_in_order() {
    let redis = Redis::start();
    let port = redis.port;
    let (a, _a_adapter) = node(port, "node-a");
    let (b, b_adapter) = node(port, "node-b");
    // Let both subscribers reach Redis before the announce goes out on the control channel.
    until("bus connected", || {
        b_adapter
            .bus()
            .stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;

    a.announce(Announce {
        stream: "cam0".into(),
        tracks: vec![TrackInfo {
            track: "video".into(),
            codec: Codec::H264,
            codec_string: Some("avc1.42C01F".into()),
            width: Some(320),
            height: Some(240),
            fps: Some(30),
            sample_rate: None,
            channels: None,
            avcc: None,
            capture: None,
        }],
    })
    .expect("announce");
    until("remote stream listed on b", || {
        b.streams().iter().any(|s| s.stream == "cam0")
    })
    .await;

    // Node a publishes into the middle of a GOP before anyone on b watches.
    for i in 0..15 {
        a.publish(frame(i)).expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let viewer = Arc::new(Recorder::default());
    let id = b.add_receiver(viewer.clone(), false);
    b.watch(id, "cam0", None).expect("watch");
    until("cached GOP on b", || viewer.media().len() >= 5).await;

    for i in 15..40 {
        a.publish(frame(i)).expect("publish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    until("live frames on b", || {
        viewer.media().last().is_some_and(|&(s, _)| s == 39)
    })
    .await;

    let got = viewer.media();
    assert_eq!(
        got.first(),
        Some(&(10, true)),
        "starts at the cached keyframe: {got:?}"
    );
    let seqs: Vec<u64> = got.iter().map(|&(s, _)| s).collect();
    assert_eq!(
        seqs,
        (10..40).collect::<Vec<_>>(),
        "no gap, no duplicate, in order"
    );

    // The publishing node dies (no withdrawal sent): its stream expires from the cluster's list.
    _a_adapter.bus().abort();
    until("stream withdrawn after its TTL", || b.streams().is_empty()).await;
}
