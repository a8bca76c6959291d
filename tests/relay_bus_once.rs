//! What the Redis bus costs Redis per frame, against a real `redis-server`: a cached video frame
//! crosses the wire once (not once for PUBLISH and once more for the GOP list), queued records
//! share round trips, the shared GOP list is exactly the published GOP within its cap, each
//! record of a pipeline is counted on its own, and a flushed script cache is reloaded without
//! losing a frame.

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

const PREFIX: &str = "sioedge-once";

fn frame(stream: &str, seq: u32, key: bool, size: usize) -> Record {
    video_frame(stream, seq, key, vec![seq as u8; size])
}

/// A plain connection to the same Redis, for INFO, LLEN and SCRIPT FLUSH.
async fn raw(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// One counter of `INFO stats`.
async fn info_stat(conn: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO stats"))
}

async fn llen(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("LLEN")
        .arg(format!("{PREFIX}:g:{stream}:video"))
        .query_async(conn)
        .await
        .expect("LLEN")
}

/// Waits (5 s) until `rx` delivered the frames `seqs` of `stream`, in order, and nothing else.
async fn expect_frames(rx: &mut mpsc::Receiver<Record>, stream: &str, seqs: &[u32], size: usize) {
    for &want in seqs {
        let r = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("frame {want} of {stream} not received within 5 s"))
            .expect("bus alive");
        assert_eq!((&*r.stream, record_seq(&r)), (stream, want), "in order");
        assert_eq!(r.data, Bytes::from(vec![want as u8; size]), "byte-exact");
    }
}

/// The shared GOP of `stream` as another node reads it: (seq, key) per entry.
async fn gop(b: &RedisBus, stream: &str) -> Vec<(u32, bool)> {
    b.cached_gop(stream, "video")
        .await
        .expect("redis")
        .iter()
        .map(|r| (record_seq(r), r.key))
        .collect()
}

/// Publishes uncached records on `warm` until `rx` gets one (subscriptions are asynchronous).
async fn warm_up(a: &RedisBus, rx: &mut mpsc::Receiver<Record>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.publish(Record {
            cache: false,
            ..frame("warm", 0, false, 10)
        });
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            assert_eq!(&*r.stream, "warm");
            // Later warm-up records may still be in flight: let them land and drop them.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            return;
        }
        assert!(Instant::now() < deadline, "nothing crossed the bus");
    }
}

/// Two bus nodes on a fresh redis-server: A publishes, B follows `cam0` and `extra` streams
/// (subscribed and warmed up), plus a plain connection for inspecting Redis.
struct Cluster {
    /// Kept for the test's length: dropping it stops redis-server.
    _redis: Redis,
    a: RedisBus,
    /// A's incoming records: unread, kept open for the length of the test.
    _a_rx: mpsc::Receiver<Record>,
    b: RedisBus,
    b_rx: mpsc::Receiver<Record>,
    conn: redis::aio::MultiplexedConnection,
}

async fn cluster(extra: &[&str]) -> Cluster {
    let redis = Redis::start();
    let (a, a_rx) = bus_node(redis.port, PREFIX, "node-a", 2048);
    let (b, mut b_rx) = bus_node(redis.port, PREFIX, "node-b", 2048);
    for stream in ["warm", "cam0"].iter().chain(extra) {
        b.subscribe(stream);
    }
    warm_up(&a, &mut b_rx).await;
    let conn = raw(redis.port).await;
    Cluster {
        _redis: redis,
        a,
        _a_rx: a_rx,
        b,
        b_rx,
        conn,
    }
}

/// Empties Redis' script cache, as a restart would.
async fn script_flush(conn: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(conn)
        .await
        .expect("SCRIPT FLUSH");
}

// Current-thread runtime: the 200 publishes below are all queued before the bus task runs.
#[tokio::test]
async fn a_frame_crosses_the_wire_once_and_queued_frames_share_round_trips() {
    let mut c = cluster(&[]).await;
    let dropped = c.a.stats().publish_dropped.load(Ordering::Relaxed);

    const FRAMES: u32 = 200;
    const SIZE: usize = 1000;
    let bytes_before = info_stat(&mut c.conn, "total_net_input_bytes").await;
    let reads_before = info_stat(&mut c.conn, "total_reads_processed").await;
    for s in 0..FRAMES {
        assert!(c.a.publish(frame("cam0", s, s == 0, SIZE)), "queued");
    }
    let seqs: Vec<u32> = (0..FRAMES).collect();
    expect_frames(&mut c.b_rx, "cam0", &seqs, SIZE).await;
    let bytes = info_stat(&mut c.conn, "total_net_input_bytes").await - bytes_before;
    let reads = info_stat(&mut c.conn, "total_reads_processed").await - reads_before;

    let payload = FRAMES as u64 * SIZE as u64;
    assert!(
        bytes < payload * 3 / 2,
        "redis read {bytes} bytes for {payload} bytes of frames: a frame must cross the wire once"
    );
    assert!(
        reads < FRAMES as u64 / 2,
        "redis needed {reads} reads for {FRAMES} queued frames: they must share round trips"
    );

    // The keyframe and the 199 frames since are the shared GOP, exactly and in order.
    assert_eq!(llen(&mut c.conn, "cam0").await, FRAMES as u64);
    let expected: Vec<(u32, bool)> = seqs.iter().map(|&s| (s, s == 0)).collect();
    assert_eq!(gop(&c.b, "cam0").await, expected);
    let full = c.b.cached_gop("cam0", "video").await.expect("redis");
    assert!(
        full.iter()
            .all(|r| r.data == vec![record_seq(r) as u8; SIZE] && &*r.node == "node-a"),
        "cached frames are the published ones"
    );
    assert_eq!(c.a.stats().publish_dropped.load(Ordering::Relaxed), dropped);
}

#[tokio::test]
async fn the_shared_gop_keeps_its_cap() {
    let mut c = cluster(&[]).await;

    // A keyframe and 599 frames: 600 entries, the cap.
    for s in 0..600 {
        c.a.publish(frame("cam0", s, s == 0, 100));
    }
    expect_frames(&mut c.b_rx, "cam0", &(0..600).collect::<Vec<_>>(), 100).await;
    assert_eq!(llen(&mut c.conn, "cam0").await, 600);

    // One more: too long a GOP is dropped from the cache, and frames do not start a new one.
    for s in 600..603 {
        c.a.publish(frame("cam0", s, false, 100));
    }
    expect_frames(&mut c.b_rx, "cam0", &[600, 601, 602], 100).await;
    assert_eq!(gop(&c.b, "cam0").await, vec![]);

    // The next keyframe starts the cache again.
    for s in 603..606 {
        c.a.publish(frame("cam0", s, s == 603, 100));
    }
    expect_frames(&mut c.b_rx, "cam0", &[603, 604, 605], 100).await;
    assert_eq!(
        gop(&c.b, "cam0").await,
        vec![(603, true), (604, false), (605, false)]
    );
}

// Current-thread runtime: the three records below go out in one pipeline.
#[tokio::test]
async fn each_record_of_a_pipeline_is_counted_on_its_own() {
    let mut c = cluster(&["bad"]).await;
    // Something else owns the GOP key of `bad`: Redis refuses its frames (WRONGTYPE).
    let _: () = redis::cmd("SET")
        .arg(format!("{PREFIX}:g:bad:video"))
        .arg("not a list")
        .query_async(&mut c.conn)
        .await
        .expect("SET");
    let published = c.a.stats().published.load(Ordering::Relaxed);
    let dropped = c.a.stats().publish_dropped.load(Ordering::Relaxed);

    c.a.publish(frame("cam0", 0, true, 100));
    c.a.publish(frame("bad", 1, false, 100));
    c.a.publish(frame("cam0", 2, false, 100));
    expect_frames(&mut c.b_rx, "cam0", &[0, 2], 100).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.a.stats().published.load(Ordering::Relaxed)
        + c.a.stats().publish_dropped.load(Ordering::Relaxed)
        < published + dropped + 3
    {
        assert!(Instant::now() < deadline, "records not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.a.stats().published.load(Ordering::Relaxed), published + 2);
    assert_eq!(
        c.a.stats().publish_dropped.load(Ordering::Relaxed),
        dropped + 1
    );
    assert!(
        c.b_rx.try_recv().is_err(),
        "the refused frame reached nobody"
    );
    assert_eq!(gop(&c.b, "cam0").await, vec![(0, true), (2, false)]);
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_without_losing_a_frame() {
    let mut c = cluster(&[]).await;

    for s in 0..10 {
        c.a.publish(frame("cam0", s, s == 0, 300));
    }
    expect_frames(&mut c.b_rx, "cam0", &(0..10).collect::<Vec<_>>(), 300).await;
    script_flush(&mut c.conn).await;
    let dropped = c.a.stats().publish_dropped.load(Ordering::Relaxed);

    // Redis answers NOSCRIPT to the next frames; the bus loads the script and sends them again,
    // in order, into the same GOP.
    for s in 10..20 {
        c.a.publish(frame("cam0", s, false, 300));
    }
    expect_frames(&mut c.b_rx, "cam0", &(10..20).collect::<Vec<_>>(), 300).await;
    let expected: Vec<(u32, bool)> = (0..20).map(|s| (s, s == 0)).collect();
    assert_eq!(gop(&c.b, "cam0").await, expected);

    // Flushed again, now with a keyframe in the refused batch.
    script_flush(&mut c.conn).await;
    for s in 20..30 {
        c.a.publish(frame("cam0", s, s == 22, 300));
    }
    expect_frames(&mut c.b_rx, "cam0", &(20..30).collect::<Vec<_>>(), 300).await;
    let expected: Vec<(u32, bool)> = (22..30).map(|s| (s, s == 22)).collect();
    assert_eq!(gop(&c.b, "cam0").await, expected);
    assert_eq!(llen(&mut c.conn, "cam0").await, 8);
    assert_eq!(c.a.stats().publish_dropped.load(Ordering::Relaxed), dropped);
}

#[tokio::test]
async fn a_withdrawn_stream_leaves_no_shared_gop_to_resume() {
    let mut c = cluster(&[]).await;
    for s in 0..5 {
        c.a.publish(frame("cam0", s, s == 0, 100));
    }
    expect_frames(&mut c.b_rx, "cam0", &(0..5).collect::<Vec<_>>(), 100).await;
    assert_eq!(gop(&c.b, "cam0").await.len(), 5);

    // The publisher goes away and comes back mid-GOP (frames were lost in between): the old GOP
    // must neither be served to late joiners nor be extended with the new frames.
    c.a.publish(Record {
        kind: RecordKind::Gone,
        cache: false,
        ..frame("cam0", 0, false, 0)
    });
    for s in 8..10 {
        c.a.publish(frame("cam0", s, false, 100));
    }
    let gone = tokio::time::timeout(Duration::from_secs(5), c.b_rx.recv())
        .await
        .expect("Gone within 5 s")
        .expect("bus alive");
    assert_eq!(gone.kind, RecordKind::Gone);
    expect_frames(&mut c.b_rx, "cam0", &[8, 9], 100).await;
    assert_eq!(gop(&c.b, "cam0").await, vec![]);
}
