//! Load generator for `scripts/bench-server` (kept out of the product binary): N viewers and
//! one publisher over raw WebSockets against any Socket.IO v5 server that re-emits `frame` to
//! the viewers (examples/bench-server.rs, or the socketioxide peer built by the script).
//!
//! `bench-client --addr HOST:PORT --viewers N --size BYTES --rate R --secs S`
//! `--rate 0` runs closed-loop: the publisher keeps at most `--window` events ahead of the
//! slowest viewer, i.e. as fast as delivery allows. Each event carries its send time; viewers
//! record latency. Prints one JSON line with delivered events/s and latency percentiles.

#[path = "../tests/server_support/raw.rs"]
#[allow(dead_code)]
mod raw;

use raw::{Frame, RawWs};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

struct Opts {
    addr: SocketAddr,
    viewers: usize,
    size: usize,
    rate: u32,
    secs: u64,
    window: u64,
}

fn opts() -> Result<Opts, Box<dyn std::error::Error>> {
    let mut o = Opts {
        addr: "127.0.0.1:3000".parse()?,
        viewers: 10,
        size: 16384,
        rate: 0,
        secs: 10,
        window: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--addr" => o.addr = v.parse()?,
            "--viewers" => o.viewers = v.parse()?,
            "--size" => o.size = v.parse()?,
            "--rate" => o.rate = v.parse()?,
            "--secs" => o.secs = v.parse()?,
            "--window" => o.window = v.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

async fn join(addr: SocketAddr, auth: &str) -> RawWs {
    let mut ws = RawWs::connect(addr, PATH).await.expect("websocket upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with('0')));
    ws.text(&format!("40{auth}")).await;
    match ws.recv_data().await {
        Some(Frame::Text(t)) if t.starts_with("40") => ws,
        other => panic!("connect refused: {other:?}"),
    }
}

struct Viewer {
    received: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u32>>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = opts()?;
    let epoch = Instant::now();
    let progress = Arc::new(Notify::new());
    let measuring = Arc::new(AtomicBool::new(false));
    let mut viewers = Vec::new();
    for _ in 0..o.viewers {
        let mut ws = join(o.addr, r#"{"role":"viewer"}"#).await;
        let v = Arc::new(Viewer {
            received: AtomicU64::new(0),
            latencies_us: std::sync::Mutex::new(Vec::new()),
        });
        viewers.push(v.clone());
        let (progress, measuring) = (progress.clone(), measuring.clone());
        tokio::spawn(async move {
            while let Some(frame) = ws.recv_data().await {
                if let Frame::Binary(b) = frame
                    && b.len() >= 8
                {
                    let sent = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
                    let now = epoch.elapsed().as_nanos() as u64;
                    v.received.fetch_add(1, Ordering::Relaxed);
                    if measuring.load(Ordering::Relaxed) {
                        let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
                        v.latencies_us
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(us);
                    }
                    progress.notify_one();
                }
            }
        });
    }
    let mut publisher = join(o.addr, r#"{"role":"publisher"}"#).await;
    let header = r#"451-["frame",{"_placeholder":true,"num":0}]"#;
    let mut payload = vec![0xA5u8; o.size.max(8)];
    let min_received = |viewers: &[Arc<Viewer>]| {
        viewers
            .iter()
            .map(|v| v.received.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut counted_from = None;
    let mut ticker = (o.rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let total = warmup + Duration::from_secs(o.secs);
    while start.elapsed() < total {
        if counted_from.is_none() && start.elapsed() >= warmup {
            let delivered: u64 = viewers
                .iter()
                .map(|v| v.received.load(Ordering::Relaxed))
                .sum();
            counted_from = Some((Instant::now(), delivered));
            measuring.store(true, Ordering::Relaxed);
        }
        match &mut ticker {
            Some(t) => {
                t.tick().await;
            }
            None => {
                while sent.saturating_sub(min_received(&viewers)) >= o.window {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), progress.notified()).await;
                    if start.elapsed() >= total {
                        break;
                    }
                }
            }
        }
        let ts = epoch.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&ts.to_le_bytes());
        publisher.text(header).await;
        publisher.binary(&payload).await;
        sent += 1;
    }
    let (t0, d0) = counted_from.unwrap_or((start, 0));
    measuring.store(false, Ordering::Relaxed);
    let delivered: u64 = viewers
        .iter()
        .map(|v| v.received.load(Ordering::Relaxed))
        .sum::<u64>()
        - d0;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut lat: Vec<u32> = viewers
        .iter()
        .flat_map(|v| {
            v.latencies_us
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"sent\":{sent},\"delivered\":{delivered},\"events_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"expected_per_s\":{}}}",
        delivered as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        if o.rate > 0 {
            o.rate as u64 * o.viewers as u64
        } else {
            0
        }
    );
    std::process::exit(0);
}
