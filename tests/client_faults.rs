//! Faults: a relay killed and restarted 10 times mid-stream, a relay that accepts TCP but never
//! answers the handshake, a relay that stops pinging, and a relay too slow to read.

mod client_common;
mod process_support;

use bytes::Bytes;
use client_common::*;
use serde_json::json;
use sioedge::client::{Client, ClientEvent, ClientHandle, ClientOptions, ConnState};
use sioedge::config::Transport;
use sioedge::queue::Class;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GOP: u64 = 10;

/// Pushes video frames of `size` bytes every `period` (a keyframe every GOP frames) until stopped,
/// the way the capture side does: never waiting.
/// How long `send_media` took. It is a plain function that only queues, so it never waits for
/// the network: were it to, every call while the link is down or stalled would take as long as
/// the stall. A loaded 2-core CI machine still preempts a thread now and then for tens of ms, so
/// the tests bound the share of slow calls, not the single slowest one.
#[derive(Debug, Default)]
struct SendTimes {
    calls: u64,
    slow: u64,
    slowest: Duration,
}

impl SendTimes {
    const SLOW: Duration = Duration::from_millis(50);

    fn record(&mut self, took: Duration) {
        self.calls += 1;
        self.slow += u64::from(took >= Self::SLOW);
        self.slowest = self.slowest.max(took);
    }

    /// At most 1 % of the calls took 50 ms or more.
    fn assert_never_waits(&self, context: &str) {
        assert!(
            self.calls > 0 && self.slow * 100 <= self.calls,
            "{context}: send_media took ≥ {:?} in {} of {} calls (slowest {:?})",
            Self::SLOW,
            self.slow,
            self.calls,
            self.slowest
        );
    }
}

fn pump_media(
    client: ClientHandle,
    size: usize,
    period: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, SendTimes)> {
    tokio::spawn(async move {
        let frame = Bytes::from(vec![0x5au8; size]);
        let track: Arc<str> = "cam0/video".into();
        let mut seq = 0u64;
        let mut slow = SendTimes::default();
        let mut tick = tokio::time::interval(period);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let key = seq.is_multiple_of(GOP);
            let t0 = Instant::now();
            client.send_media(
                "/",
                json!({ "stream": "cam0", "track": "video", "seq": seq, "key": key }),
                frame.clone(),
                Class::Video {
                    track: track.clone(),
                    key,
                },
            );
            slow.record(t0.elapsed());
            seq += 1;
        }
        (seq, slow)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fault_relay_killed_and_restarted_ten_times() {
    let port = free_port();
    let mut relay = Relay::start(Kind::Aiohttp, port, &["--quiet-media"]);
    let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
    o.reconnection.delay = Duration::from_secs_f64(0.5).into();
    o.reconnection.max_delay = Duration::from_secs_f64(2.0).into();
    o.connect_timeout = Duration::from_secs_f64(2.0);
    o.queue.max_frames = 64;
    o.queue.max_bytes = sioedge::config::ByteSize::new(1 << 20);
    let max_delay = o.reconnection.max_delay.get();
    let (client, mut events) = Client::connect(o).unwrap();
    assert!(connected(&mut events, "/", Duration::from_secs(10)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let pump = pump_media(
        client.clone(),
        16 * 1024,
        Duration::from_millis(20),
        stop.clone(),
    );

    let mut rss_after_first = 0;
    let mut timings = Vec::new();
    for round in 1..=10 {
        // Streaming: the relay gets frames.
        relay
            .wait_for(Duration::from_secs(10), |v| v["ev"] == "media")
            .unwrap_or_else(|| panic!("round {round}: no media before the kill"));
        relay.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        relay.restart();
        let up = Instant::now();
        assert!(
            connected(&mut events, "/", max_delay + Duration::from_secs(3)).await,
            "round {round}: no reconnect within {max_delay:?} + 3 s"
        );
        timings.push(up.elapsed());
        let first = relay
            .wait_for(Duration::from_secs(10), |v| {
                v["ev"] == "media" && v["first"] == true
            })
            .unwrap_or_else(|| panic!("round {round}: no media after the reconnect"));
        assert_eq!(
            first["key"], true,
            "round {round}: first frame after reconnect is not a keyframe: {first}"
        );
        assert_eq!(first["seq"].as_u64().unwrap_or(1) % GOP, 0, "{first}");
        let stats = client.stats();
        assert!(stats.queued_bytes <= 1 << 20, "{stats:?}");
        if round == 1 {
            rss_after_first = rss_kib();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (sent_frames, send_times) = pump.await.unwrap();
    send_times.assert_never_waits("relay killed and restarted");
    let stats = client.stats();
    let rss_end = rss_kib();
    let worst = timings.iter().max().copied().unwrap_or_default();
    eprintln!(
        "reconnect after relay restart: {:?} (worst {worst:?}); frames pushed {sent_frames}, send_media {send_times:?}; stats {stats:?}; RSS after round 1 {rss_after_first} KiB, after round 10 {rss_end} KiB",
        timings
    );
    // Ten successful reconnections; attempts that found the relay still down count as
    // reconnects too.
    assert_eq!(stats.connects, 11, "{stats:?}");
    assert!(stats.reconnects >= 10, "{stats:?}");
    assert!(
        worst <= max_delay + Duration::from_millis(1500),
        "worst reconnect {worst:?}"
    );
    // Flat memory: the queue is bounded at 1 MiB; allow allocator noise, not growth per round.
    assert!(
        rss_end < rss_after_first + 16 * 1024,
        "RSS grew from {rss_after_first} KiB to {rss_end} KiB"
    );
    close(&client).await;
}

/// Accepts TCP connections and never answers; counts them.
async fn black_hole() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fault_relay_never_answers_the_handshake() {
    for transports in [vec![Transport::Websocket], vec![Transport::Polling]] {
        let (port, accepted) = black_hole().await;
        let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
        o.transports = transports.clone();
        o.connect_timeout = Duration::from_secs_f64(0.5);
        o.reconnection.delay = Duration::from_secs_f64(0.2).into();
        o.reconnection.max_delay = Duration::from_secs_f64(0.4).into();
        let (client, _events) = Client::connect(o).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let stats = client.stats();
        close(&client).await;
        let n = accepted.load(Ordering::Relaxed);
        // Each attempt: 0.5 s timeout + ≤ 0.4 s backoff → at least 3 attempts in 3 s.
        assert!(n >= 3, "{transports:?}: only {n} attempts: {stats:?}");
        assert_eq!(stats.state, ConnState::Reconnecting);
        let err = stats.last_error.unwrap_or_default();
        assert!(err.starts_with("timeout:"), "{transports:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fault_relay_stops_pinging() {
    // python-socketio with a 0.5 s ping interval announces pingInterval 0 (rounded down): the
    // client must neither fail on it nor drop a healthy connection.
    let port = free_port();
    let relay = Relay::start(
        Kind::Aiohttp,
        port,
        &["--ping-interval", "0.5", "--ping-timeout", "1"],
    );
    for transports in [vec![Transport::Websocket], vec![Transport::Polling]] {
        let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
        o.transports = transports.clone();
        o.connect_timeout = Duration::from_secs_f64(1.0);
        o.reconnection.delay = Duration::from_secs_f64(0.3).into();
        o.reconnection.max_delay = Duration::from_secs_f64(0.6).into();
        let (client, mut events) = Client::connect(o).unwrap();
        assert!(connected(&mut events, "/", Duration::from_secs(5)).await);
        // Healthy for 4 s: longer than the 2 s heartbeat window, so pings are being answered.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let stats = client.stats();
        assert_eq!(
            (stats.state, stats.reconnects),
            (ConnState::Connected, 0),
            "{transports:?}: {stats:?}"
        );

        relay.signal("STOP");
        let frozen = Instant::now();
        let lost = next_event(&mut events, Duration::from_secs(6), |e| {
            matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
        let detect = frozen.elapsed();
        let ClientEvent::Disconnected { reason, .. } = lost.expect("frozen relay not detected")
        else {
            unreachable!()
        };
        eprintln!("{transports:?}: frozen relay detected after {detect:?}: {reason}");
        // Window: pingInterval 0 + pingTimeout 1 s + 1 s rounding slack = 2 s after the last ping.
        assert!(
            detect <= Duration::from_millis(3000),
            "{transports:?}: detected after {detect:?}"
        );
        assert!(reason.contains("no ping"), "{reason}");
        // While frozen, attempts time out (the kernel accepts TCP, nobody answers).
        tokio::time::sleep(Duration::from_secs(2)).await;
        relay.signal("CONT");
        let resumed = Instant::now();
        assert!(
            connected(&mut events, "/", Duration::from_secs(5)).await,
            "{transports:?}: no reconnect after CONT"
        );
        eprintln!(
            "{transports:?}: reconnected {:?} after the relay resumed",
            resumed.elapsed()
        );
        assert!(client.stats().reconnects >= 1);
        close(&client).await;
    }
}

/// A TCP proxy that forwards client → relay at `rate` bytes/s and relay → client freely.
async fn slow_proxy(upstream: u16, rate: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                continue;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (mut dr, mut dw) = down.into_split();
            let (mut ur, mut uw) = up.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut ur, &mut dw).await;
            });
            tokio::spawn(async move {
                let chunk = rate / 20;
                let mut buf = vec![0u8; chunk];
                loop {
                    let n = match dr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if uw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fault_slow_relay_fills_queue_and_drops() {
    let relay_port = free_port();
    let mut relay = Relay::start(Kind::Aiohttp, relay_port, &[]);
    let port = slow_proxy(relay_port, 200 * 1024).await;
    let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
    o.queue.max_frames = 32;
    o.queue.max_bytes = sioedge::config::ByteSize::new(512 * 1024);
    let (client, mut events) = Client::connect(o).unwrap();
    assert!(connected(&mut events, "/", Duration::from_secs(10)).await);
    let rss_start = rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    // 32 KiB × 100/s = 3.2 MB/s into a 200 KB/s link.
    let pump = pump_media(
        client.clone(),
        32 * 1024,
        Duration::from_millis(10),
        stop.clone(),
    );
    let mut max_queued = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = client.stats();
        max_queued = max_queued.max(s.queued_bytes);
        assert!(s.queued_bytes <= 512 * 1024 && s.queued <= 32, "{s:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let (pushed, send_times) = pump.await.unwrap();
    send_times.assert_never_waits("stalled link");
    let stats = client.stats();
    let rss_end = rss_kib();
    eprintln!(
        "slow relay: pushed {pushed}, send_media {send_times:?}, stats {stats:?}, max queued {max_queued} B, RSS {rss_start} → {rss_end} KiB"
    );
    assert!(
        stats.dropped > pushed / 2,
        "expected most frames dropped: {stats:?}"
    );
    assert_eq!(stats.state, ConnState::Connected, "{stats:?}");
    assert!(
        rss_end < rss_start + 32 * 1024,
        "RSS grew {rss_start} → {rss_end} KiB"
    );
    // What reached the relay is a valid stream: every delta frame follows its predecessor.
    let media: Vec<(u64, bool)> = relay
        .drain()
        .iter()
        .filter(|v| v["ev"] == "media")
        .map(|v| (v["seq"].as_u64().unwrap_or(0), v["key"] == true))
        .collect();
    assert!(media.len() >= 5, "relay got {} frames", media.len());
    assert!(media[0].1, "first frame not a keyframe");
    for w in media.windows(2) {
        assert!(
            w[1].1 || w[1].0 == w[0].0 + 1,
            "broken GOP: {:?} after {:?}",
            w[1],
            w[0]
        );
    }
    close(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fault_oversized_frame_is_dropped_not_sent() {
    let port = free_port();
    let mut relay = Relay::start(Kind::Aiohttp, port, &["--max-payload", "100000"]);
    let track: Arc<str> = "cam0/video".into();
    let video = |key| Class::Video {
        track: track.clone(),
        key,
    };
    for transports in [vec![Transport::Websocket], vec![Transport::Polling]] {
        let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
        o.transports = transports.clone();
        let (client, mut events) = Client::connect(o).unwrap();
        // Not connected yet: volatile and media are dropped, never queued for later.
        assert!(!client.emit_volatile("/", "ping", vec![]));
        assert!(connected(&mut events, "/", Duration::from_secs(10)).await);
        // On WebSocket 150 kB exceeds the limit; on polling 80 kB does too (base64: 106,668 bytes).
        let big = if transports[0] == Transport::Websocket {
            150_000
        } else {
            80_000
        };
        let r = client.send_media(
            "/",
            json!({"seq": 1, "key": true}),
            Bytes::from(vec![1u8; big]),
            video(true),
        );
        assert_eq!(r, sioedge::client::MediaPush::TooLarge, "{transports:?}");
        let r = client.send_media(
            "/",
            json!({"seq": 2, "key": true}),
            Bytes::from(vec![2u8; 50_000]),
            video(true),
        );
        assert_eq!(r, sioedge::client::MediaPush::Queued, "{transports:?}");
        let got = relay
            .wait_for(Duration::from_secs(10), |v| v["ev"] == "media")
            .expect("the fitting frame arrives");
        assert_eq!(
            (got["seq"].as_u64(), got["len"].as_u64()),
            (Some(2), Some(50_000))
        );
        assert!(client.emit_volatile("/", "echo", vec![]));
        let stats = client.stats();
        assert_eq!(
            (stats.too_large, stats.reconnects, stats.state),
            (1, 0, ConnState::Connected),
            "{stats:?}"
        );
        close(&client).await;
    }
}
