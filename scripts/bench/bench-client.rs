//! Load generator for `scripts/bench-server` and `scripts/bench-relay` (kept out of the product
//! binary): one publisher and N viewers over raw WebSockets, in one of two contracts.
//!
//! - `--contract plain` (default): any Socket.IO v5 server that re-emits `frame` to the viewers
//!   (scripts/bench/bench-server.rs, or the socketioxide peer built by the scripts). Viewers connect to
//!   "/" with auth `{"role":"viewer"}`, the publisher with `{"role":"publisher"}`.
//! - `--contract relay`: `sioedge relay`'s full contract, spoken as the gateway and the viewer page
//!   speak it. The publisher connects to `/publish` with `{token, device}`, `announce`s `cam0` (and
//!   waits for the ack), sends `status` live, then `media` `{stream, track, seq, pts, key, t}` plus
//!   the frame, a keyframe every `--gop` frames. Viewers connect to "/", call `streams` and `watch`
//!   `<device>/cam0` (retrying until the node lists it: on a cluster node the announce comes through
//!   Redis) and receive `media`. `--publish-addr` puts the publisher on another node than the viewers.
//!
//! `bench-client --addr HOST:PORT --viewers N --size BYTES --rate R --secs S [--contract relay
//! --token T --device D --publish-addr HOST:PORT --gop 30]`
//!
//! Every frame is an Annex-B-looking H.264 access unit (IDR or not) whose payload carries the
//! publisher's send time and sequence number; viewers record latency (send → receive), frames lost
//! (a server's drop policy) and frames delivered out of order. `--rate 0` runs closed-loop: the publisher keeps at most
//! `--window` frames ahead of the slowest viewer's newest frame, i.e. as fast as delivery allows
//! (by sequence number, so frames dropped by policy do not stall it). `--cpu-pids P,Q` reports the
//! CPU time those processes (the servers) used during the measured seconds. Prints one JSON line:
//! sent, delivered, events_per_s, p50_us, p99_us, expected_per_s, lost, reordered, measured_sent,
//! cpu_ns.

#[path = "../../tests/server_support/raw.rs"]
#[allow(dead_code)]
mod raw;

use futures_util::FutureExt;
use raw::{Frame, RawWs};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

type Error = Box<dyn std::error::Error>;

#[derive(Clone, Copy, PartialEq)]
enum Contract {
    Plain,
    Relay,
}

struct Opts {
    addr: SocketAddr,
    publish_addr: Option<SocketAddr>,
    contract: Contract,
    token: String,
    device: String,
    viewers: usize,
    size: usize,
    rate: u32,
    secs: u64,
    window: u64,
    gop: u64,
    cpu_pids: Vec<u32>,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        addr: "127.0.0.1:3000".parse()?,
        publish_addr: None,
        contract: Contract::Plain,
        token: String::new(),
        device: "bench".into(),
        viewers: 10,
        size: 16384,
        rate: 0,
        secs: 10,
        window: 64,
        gop: 30,
        cpu_pids: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--addr" => o.addr = v.parse()?,
            "--publish-addr" => o.publish_addr = Some(v.parse()?),
            "--contract" => {
                o.contract = match v.as_str() {
                    "plain" => Contract::Plain,
                    "relay" => Contract::Relay,
                    other => return Err(format!("--contract plain|relay, not {other}").into()),
                }
            }
            "--token" => o.token = v,
            "--device" => o.device = v,
            "--viewers" => o.viewers = v.parse()?,
            "--size" => o.size = v.parse()?,
            "--rate" => o.rate = v.parse()?,
            "--secs" => o.secs = v.parse()?,
            "--window" => o.window = v.parse()?,
            "--gop" => o.gop = v.parse::<u64>()?.max(1),
            "--cpu-pids" => o.cpu_pids = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
/// The relay's publisher namespace, as the packet prefix (`/publish,`).
const PUBLISH: &str = "/publish,";
/// The stream the publisher announces (the relay lists it as `<device>/cam0`).
const STREAM: &str = "cam0";
/// Where the send time (ns since the run's epoch) and the sequence number sit in each frame.
const TS_AT: usize = 8;
const SEQ_AT: usize = 16;
const HEADER_LEN: usize = 24;

/// The namespace of packet prefix `ns`, for messages.
fn ns_name(ns: &str) -> &str {
    match ns.trim_end_matches(',') {
        "" => "/",
        name => name,
    }
}

/// Connects a socket to the namespace of packet prefix `ns` ("" for "/", else "/name,").
async fn join(addr: SocketAddr, ns: &str, auth: &str) -> Result<RawWs, Error> {
    let mut ws = RawWs::connect(addr, PATH)
        .await
        .map_err(|e| format!("{addr}: WebSocket upgrade refused: {e}"))?;
    match ws.recv().await {
        Some(Frame::Text(t)) if t.starts_with('0') => {}
        other => return Err(format!("{addr}: no Engine.IO open packet: {other:?}").into()),
    }
    ws.text(&format!("40{ns}{auth}")).await;
    match ws.recv_data().await {
        Some(Frame::Text(t)) if t.starts_with(&format!("40{ns}")) => Ok(ws),
        Some(Frame::Text(t)) if t.starts_with("44") => {
            Err(format!("{addr}: CONNECT_ERROR for {}: {t}", ns_name(ns)).into())
        }
        other => Err(format!("{addr}: connect to {} answered {other:?}", ns_name(ns)).into()),
    }
}

/// Emits `event` with ack id `id` (`args`: "" or ",<json>,…") and returns the first ack argument;
/// other packets that arrive meanwhile are skipped.
async fn call(ws: &mut RawWs, ns: &str, id: u64, event: &str, args: &str) -> Result<Value, Error> {
    ws.text(&format!("42{ns}{id}[\"{event}\"{args}]")).await;
    let want = format!("43{ns}{id}");
    loop {
        match ws.recv_data().await {
            Some(Frame::Text(t)) if t.starts_with(&want) => {
                let ack: Value = serde_json::from_str(&t[want.len()..])
                    .map_err(|e| format!("{event} ack {t:?}: {e}"))?;
                return Ok(ack.get(0).cloned().unwrap_or(Value::Null));
            }
            Some(_) => {}
            None => return Err(format!("connection closed waiting for the {event} ack").into()),
        }
    }
}

/// The relay publisher: connected, `cam0` announced (acked) and live.
async fn relay_publisher(o: &Opts, addr: SocketAddr) -> Result<RawWs, Error> {
    let auth = json!({"token": o.token, "device": o.device}).to_string();
    let mut ws = join(addr, PUBLISH, &auth).await?;
    let fps = if o.rate > 0 { o.rate } else { 30 };
    let announce = json!({"stream": STREAM, "tracks": [{"track": "video", "codec": "h264",
        "codecString": "avc1.42C01F", "width": 1280, "height": 720, "fps": fps}]});
    let ack = call(&mut ws, PUBLISH, 1, "announce", &format!(",{announce}")).await?;
    if ack["ok"] != true {
        return Err(format!("{addr}: announce refused: {ack}").into());
    }
    let status = json!({"stream": STREAM, "track": "video", "state": "live", "reason": ""});
    ws.text(&format!("42{PUBLISH}[\"status\",{status}]")).await;
    Ok(ws)
}

/// A relay viewer as the viewer page does it: `streams`, then `watch` the stream once listed (10 s).
async fn relay_viewer(addr: SocketAddr, stream: &str) -> Result<RawWs, Error> {
    let mut ws = join(addr, "", "{}").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut id = 0;
    loop {
        id += 1;
        let list = call(&mut ws, "", id, "streams", "").await?;
        let listed = list
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["stream"] == stream));
        if listed {
            id += 1;
            let ack = call(
                &mut ws,
                "",
                id,
                "watch",
                &format!(",{}", json!({"stream": stream})),
            )
            .await?;
            if ack["stream"] == stream {
                return Ok(ws);
            }
            return Err(format!("{addr}: watch {stream} answered {ack}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("{addr} does not list {stream} within 10 s: {list}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers the pings that arrived on the publisher's socket (and skips anything else), without
/// waiting: the publisher otherwise never reads, and the server would drop it after a ping timeout.
/// (Polled once: a zero `timeout` would wait for the timer's next millisecond tick.)
async fn answer_pings(ws: &mut RawWs) {
    while let Some(Some(frame)) = ws.recv().now_or_never() {
        if frame == Frame::Text("2".into()) {
            ws.text("3").await;
        }
    }
}

/// CPU time (ns) of every thread of `pid` so far, from schedstat (exact, unlike the 10 ms ticks of
/// /proc/PID/stat, which matters for per-frame figures).
fn cpu_ns(pid: u32) -> Result<u64, Error> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("process {pid} is gone: {e}"))?
    {
        // A thread that ends meanwhile has no schedstat any more; the others still count.
        let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[derive(Default)]
struct Viewer {
    received: AtomicU64,
    /// The first sequence number received.
    first_seq: AtomicU64,
    /// The sequence number after the highest one received.
    next_seq: AtomicU64,
    /// Frames that came after a higher sequence number (delivered out of order).
    reordered: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u32>>,
}

impl Viewer {
    /// Frames missing between the first and the highest sequence number received (dropped by a
    /// server's policy; a reordered frame is not missing).
    fn lost(&self) -> u64 {
        let received = self.received.load(Ordering::Relaxed);
        let span = self.next_seq.load(Ordering::Relaxed) - self.first_seq.load(Ordering::Relaxed);
        if received == 0 {
            0
        } else {
            span.saturating_sub(received)
        }
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench-client: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let o = opts()?;
    let epoch = Instant::now();
    let publish_addr = o.publish_addr.unwrap_or(o.addr);
    let mut publisher = match o.contract {
        Contract::Plain => join(publish_addr, "", r#"{"role":"publisher"}"#).await?,
        Contract::Relay => relay_publisher(&o, publish_addr).await?,
    };
    let stream = format!("{}/{STREAM}", o.device);
    let progress = Arc::new(Notify::new());
    let measuring = Arc::new(AtomicBool::new(false));
    let mut viewers = Vec::new();
    for _ in 0..o.viewers {
        let mut ws = match o.contract {
            Contract::Plain => join(o.addr, "", r#"{"role":"viewer"}"#).await?,
            Contract::Relay => relay_viewer(o.addr, &stream).await?,
        };
        let v = Arc::new(Viewer::default());
        viewers.push(v.clone());
        let (progress, measuring) = (progress.clone(), measuring.clone());
        tokio::spawn(async move {
            while let Some(frame) = ws.recv_data().await {
                // Only frames carry binary attachments in either contract.
                let Frame::Binary(b) = frame else { continue };
                if b.len() < HEADER_LEN {
                    continue;
                }
                let now = epoch.elapsed().as_nanos() as u64;
                let (sent, seq) = (read_u64(&b, TS_AT), read_u64(&b, SEQ_AT));
                if v.received.fetch_add(1, Ordering::Relaxed) == 0 {
                    v.first_seq.store(seq, Ordering::Relaxed);
                }
                if v.next_seq.fetch_max(seq + 1, Ordering::Relaxed) > seq + 1 {
                    v.reordered.fetch_add(1, Ordering::Relaxed);
                }
                if measuring.load(Ordering::Relaxed) {
                    let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
                    v.latencies_us
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(us);
                }
                progress.notify_one();
            }
        });
    }
    let mut payload = vec![0xA5u8; o.size.max(HEADER_LEN)];
    payload[..4].copy_from_slice(&[0, 0, 0, 1]);
    let slowest = |viewers: &[Arc<Viewer>]| {
        viewers
            .iter()
            .map(|v| v.next_seq.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let frame_us = 1_000_000 / u64::from(if o.rate > 0 { o.rate } else { 30 });
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
            let cpu = o
                .cpu_pids
                .iter()
                .map(|&p| cpu_ns(p))
                .collect::<Result<Vec<_>, _>>()?;
            counted_from = Some((Instant::now(), delivered, sent, cpu));
            measuring.store(true, Ordering::Relaxed);
        }
        match &mut ticker {
            Some(t) => {
                t.tick().await;
            }
            None => {
                while sent.saturating_sub(slowest(&viewers)) >= o.window {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), progress.notified()).await;
                    if start.elapsed() >= total {
                        break;
                    }
                }
            }
        }
        answer_pings(&mut publisher).await;
        let key = sent.is_multiple_of(o.gop);
        payload[4] = if key { 0x65 } else { 0x41 };
        let ts = epoch.elapsed().as_nanos() as u64;
        payload[TS_AT..TS_AT + 8].copy_from_slice(&ts.to_le_bytes());
        payload[SEQ_AT..SEQ_AT + 8].copy_from_slice(&sent.to_le_bytes());
        let header = match o.contract {
            Contract::Plain => r#"451-["frame",{"_placeholder":true,"num":0}]"#.to_owned(),
            Contract::Relay => {
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64);
                let meta = json!({"stream": STREAM, "track": "video", "seq": sent,
                    "pts": sent * frame_us, "key": key, "t": t});
                format!(r#"451-{PUBLISH}["media",{meta},{{"_placeholder":true,"num":0}}]"#)
            }
        };
        publisher.text(&header).await;
        publisher.binary(&payload).await;
        sent += 1;
    }
    let (t0, d0, s0, cpu0) = counted_from.unwrap_or((start, 0, 0, vec![0; o.cpu_pids.len()]));
    measuring.store(false, Ordering::Relaxed);
    let mut cpu = Vec::new();
    for (&pid, c0) in o.cpu_pids.iter().zip(cpu0) {
        cpu.push(cpu_ns(pid)?.saturating_sub(c0));
    }
    let sum = |f: fn(&Viewer) -> u64| viewers.iter().map(|v| f(v)).sum::<u64>();
    let delivered = sum(|v| v.received.load(Ordering::Relaxed)) - d0;
    let reordered = sum(|v| v.reordered.load(Ordering::Relaxed));
    let lost = sum(Viewer::lost);
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
        "{}",
        json!({
            "sent": sent,
            "delivered": delivered,
            "events_per_s": (delivered as f64 / elapsed).round(),
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "expected_per_s": if o.rate > 0 { o.rate as u64 * o.viewers as u64 } else { 0 },
            "lost": lost,
            "reordered": reordered,
            "measured_sent": sent - s0,
            "cpu_ns": cpu,
        })
    );
    std::process::exit(0);
}
