//! Load generator for `scripts/bench-relay`'s relay rows (kept out of the product binary):
//! `sioedge relay`'s full contract, which sioload (`../shared/tools/sioload`, used for every plain
//! fan-out row) cannot speak, since the relay forwards `media` only for tracks its publisher
//! `announce`d first.
//!
//! The publisher connects to `/publish` with `{token, device}`, `announce`s `cam0` (and waits for
//! the ack), sends `status` live, then `media` `{stream, track, seq, pts, key, t}` plus the frame, a
//! keyframe every `--gop` frames. Viewers connect to "/", call `streams` and `watch`
//! `<device>/cam0` like the viewer page (retrying until the node lists it: on a cluster node the
//! announce comes through Redis) and receive `media`. `--publish-addr` puts the publisher on another
//! node than the viewers.
//!
//! `bench-client --addr HOST:PORT --viewers N --size BYTES --rate R --secs S --token T
//! [--device D --publish-addr HOST:PORT --track video|audio --gop 30 --window 64 --cpu-pids P,Q]`
//! (`--track audio` announces an Opus track instead, every frame a keyframe).
//!
//! Cheap enough not to be the bottleneck (it reports its own CPU, `gen_cpu_pct`): one
//! current-thread runtime (pin it with taskset), viewers parse frames as they stream in and keep
//! only the first bytes of each binary frame, the publisher writes each frame with one write and a
//! zero masking key (valid WebSocket; the payload needs no XOR pass).
//!
//! Every frame is an Annex-B-looking H.264 access unit (IDR or not) whose payload carries the
//! publisher's send time and sequence number; viewers record latency (send → receive), frames lost
//! (the relay's drop policy: frames sent while measuring that did not arrive) and frames delivered
//! out of order. `--rate 0` runs closed-loop: the
//! publisher keeps at most `--window` frames ahead of the slowest viewer's newest frame (by
//! sequence number, so frames dropped by policy do not stall it). After 1 s of warm-up it measures
//! `--secs` seconds of publishing, then waits (at most 2 s) for frames still on their way.
//! `--cpu-pids P,Q` reports the CPU time those processes (the servers) used meanwhile and their
//! peak RSS. Prints one JSON line with sioload's field names where they mean the same:
//! frames_sent, frames_delivered, delivered_fps, loss_pct, out_of_order, lat_p50_ms, lat_p99_ms,
//! server_cpu_s and server_rss_hwm_mb (the first pid), gen_cpu_pct; plus server_cpu_ns and
//! server_rss_hwm_mb_each (every pid).

use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

type Error = Box<dyn std::error::Error>;

struct Opts {
    addr: SocketAddr,
    publish_addr: Option<SocketAddr>,
    token: String,
    device: String,
    viewers: usize,
    size: usize,
    rate: u32,
    secs: u64,
    window: u64,
    gop: u64,
    audio: bool,
    cpu_pids: Vec<u32>,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        addr: "127.0.0.1:3000".parse()?,
        publish_addr: None,
        token: String::new(),
        device: "bench".into(),
        viewers: 10,
        size: 16384,
        rate: 0,
        secs: 10,
        window: 64,
        gop: 30,
        audio: false,
        cpu_pids: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--addr" => o.addr = v.parse()?,
            "--publish-addr" => o.publish_addr = Some(v.parse()?),
            "--token" => o.token = v,
            "--device" => o.device = v,
            "--viewers" => o.viewers = v.parse()?,
            "--size" => o.size = v.parse()?,
            "--rate" => o.rate = v.parse()?,
            "--secs" => o.secs = v.parse()?,
            "--window" => o.window = v.parse::<u64>()?.max(1),
            "--gop" => o.gop = v.parse::<u64>()?.max(1),
            "--track" => {
                o.audio = match v.as_str() {
                    "video" => false,
                    "audio" => true,
                    other => return Err(format!("--track video|audio, not {other}").into()),
                }
            }
            "--cpu-pids" => o.cpu_pids = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.token.is_empty() {
        return Err("--token is required (the relay's publisher token)".into());
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
/// How long a handshake step may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame from the server as the generator keeps it: text whole, binary as its first bytes.
enum Got {
    Text(Vec<u8>),
    Binary([u8; HEADER_LEN]),
    Close,
}

/// Parses server frames as bytes stream in, without holding binary payloads: the bytes after
/// the first [`HEADER_LEN`] of a binary frame are only counted.
#[derive(Default)]
struct Parser {
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to come of the current frame (`None`: reading a header).
    left: Option<usize>,
    opcode: u8,
    text: Vec<u8>,
    head: [u8; HEADER_LEN],
    head_have: usize,
}

impl Parser {
    /// Header length once its first two bytes are known.
    fn header_len(&self) -> usize {
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.header[1] & 0x80 != 0 { 4 } else { 0 }
    }

    fn payload_len(&self) -> usize {
        match self.header[1] & 0x7F {
            126 => u16::from_be_bytes([self.header[2], self.header[3]]) as usize,
            127 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(raw) as usize
            }
            n => n as usize,
        }
    }

    /// Feeds `data`; calls `on` for every frame completed.
    fn feed(&mut self, mut data: &[u8], on: &mut impl FnMut(Got)) {
        while !data.is_empty() {
            let Some(left) = self.left else {
                let want = if self.have < 2 { 2 } else { self.header_len() };
                let take = (want - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                (self.have, data) = (self.have + take, &data[take..]);
                if self.have >= 2 && self.have == self.header_len() {
                    self.opcode = self.header[0] & 0x0F;
                    self.left = Some(self.payload_len());
                    (self.have, self.head_have) = (0, 0);
                    self.text.clear();
                    self.finish_if_done(on);
                }
                continue;
            };
            let take = left.min(data.len());
            let chunk = &data[..take];
            match self.opcode {
                0x1 => self.text.extend_from_slice(chunk),
                0x2 => {
                    let n = (HEADER_LEN - self.head_have).min(take);
                    self.head[self.head_have..self.head_have + n].copy_from_slice(&chunk[..n]);
                    self.head_have += n;
                }
                _ => {}
            }
            (self.left, data) = (Some(left - take), &data[take..]);
            self.finish_if_done(on);
        }
    }

    fn finish_if_done(&mut self, on: &mut impl FnMut(Got)) {
        if self.left != Some(0) {
            return;
        }
        self.left = None;
        match self.opcode {
            0x1 => on(Got::Text(std::mem::take(&mut self.text))),
            0x2 if self.head_have == HEADER_LEN => on(Got::Binary(self.head)),
            0x8 => on(Got::Close),
            _ => {}
        }
    }
}

/// Appends a client frame with a zero masking key (the payload goes as is).
fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 65535 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
}

/// One WebSocket to the server.
struct Ws {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    parser: Parser,
    buf: Vec<u8>,
    /// Frames parsed but not yet taken by [`Ws::recv`].
    pending: std::collections::VecDeque<Got>,
    out: Vec<u8>,
}

impl Ws {
    async fn connect(addr: SocketAddr) -> Result<Ws, Error> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        stream.set_nodelay(true)?;
        let req = format!(
            "GET {PATH} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut head = Vec::new();
        let end = loop {
            if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(format!("{addr}: closed during the WebSocket handshake").into());
            }
            head.extend_from_slice(&chunk[..n]);
        };
        if !head.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(&head[..end]);
            return Err(format!(
                "{addr}: upgrade refused: {}",
                line.lines().next().unwrap_or("")
            )
            .into());
        }
        let (rd, wr) = stream.into_split();
        let mut ws = Ws {
            rd,
            wr,
            parser: Parser::default(),
            buf: vec![0; 64 * 1024],
            pending: Default::default(),
            out: Vec::new(),
        };
        let rest = head[end..].to_vec();
        ws.feed(&rest);
        Ok(ws)
    }

    fn feed(&mut self, data: &[u8]) {
        let pending = &mut self.pending;
        self.parser.feed(data, &mut |got| pending.push_back(got));
    }

    async fn text(&mut self, s: &str) -> Result<(), Error> {
        self.out.clear();
        put_frame(&mut self.out, 0x1, s.as_bytes());
        self.wr.write_all(&self.out).await?;
        Ok(())
    }

    /// The next frame (answering Engine.IO pings); `None` when the connection ends.
    async fn recv(&mut self) -> Result<Option<Got>, Error> {
        loop {
            match self.pending.pop_front() {
                Some(Got::Text(t)) if t == b"2" => self.text("3").await?,
                Some(got) => return Ok(Some(got)),
                None => {
                    let n = self.rd.read(&mut self.buf).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    let buf = std::mem::take(&mut self.buf);
                    self.feed(&buf[..n]);
                    self.buf = buf;
                }
            }
        }
    }

    /// The next text frame; binary frames met meanwhile are skipped.
    async fn recv_text(&mut self) -> Result<String, Error> {
        loop {
            match tokio::time::timeout(SETUP_TIMEOUT, self.recv()).await {
                Err(_) => return Err("no answer within 10 s".into()),
                Ok(r) => match r? {
                    Some(Got::Text(t)) => return Ok(String::from_utf8_lossy(&t).into_owned()),
                    Some(Got::Binary(_)) => {}
                    Some(Got::Close) | None => return Err("connection closed".into()),
                },
            }
        }
    }
}

/// Connects a socket to the namespace of packet prefix `ns` ("" for "/", else "/name,").
async fn join(addr: SocketAddr, ns: &str, auth: &str) -> Result<Ws, Error> {
    let mut ws = Ws::connect(addr).await?;
    let open = ws.recv_text().await?;
    if !open.starts_with('0') {
        return Err(format!("{addr}: no Engine.IO open packet: {open:?}").into());
    }
    ws.text(&format!("40{ns}{auth}")).await?;
    let answer = ws.recv_text().await?;
    if answer.starts_with(&format!("40{ns}")) {
        Ok(ws)
    } else {
        Err(format!("{addr}: connect to {ns:?} answered {answer}").into())
    }
}

/// Emits `event` with ack id `id` (`args`: "" or ",<json>,…") and returns the first ack argument;
/// other packets that arrive meanwhile are skipped.
async fn call(ws: &mut Ws, ns: &str, id: u64, event: &str, args: &str) -> Result<Value, Error> {
    ws.text(&format!("42{ns}{id}[\"{event}\"{args}]")).await?;
    let want = format!("43{ns}{id}");
    loop {
        let t = ws.recv_text().await?;
        if let Some(rest) = t.strip_prefix(&want) {
            let ack: Value =
                serde_json::from_str(rest).map_err(|e| format!("{event} ack {t:?}: {e}"))?;
            return Ok(ack.get(0).cloned().unwrap_or(Value::Null));
        }
    }
}

/// The announced track's id.
fn track(o: &Opts) -> &'static str {
    if o.audio { "audio" } else { "video" }
}

/// The relay publisher: connected, `cam0` announced (acked) and live.
async fn publisher(o: &Opts, addr: SocketAddr) -> Result<Ws, Error> {
    let auth = json!({"token": o.token, "device": o.device}).to_string();
    let mut ws = join(addr, PUBLISH, &auth).await?;
    let fps = if o.rate > 0 { o.rate } else { 30 };
    let info = if o.audio {
        json!({"track": "audio", "codec": "opus", "codecString": "opus", "sampleRate": 48000,
            "channels": 2})
    } else {
        json!({"track": "video", "codec": "h264", "codecString": "avc1.42C01F", "width": 1280,
            "height": 720, "fps": fps})
    };
    let announce = json!({"stream": STREAM, "tracks": [info]});
    let ack = call(&mut ws, PUBLISH, 1, "announce", &format!(",{announce}")).await?;
    if ack["ok"] != true {
        return Err(format!("{addr}: announce refused: {ack}").into());
    }
    let status = json!({"stream": STREAM, "track": track(o), "state": "live", "reason": ""});
    ws.text(&format!("42{PUBLISH}[\"status\",{status}]"))
        .await?;
    Ok(ws)
}

/// A viewer as the viewer page does it: `streams`, then `watch` the stream once listed (10 s).
async fn viewer(addr: SocketAddr, stream: &str) -> Result<Ws, Error> {
    let mut ws = join(addr, "", "{}").await?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut id = 0;
    loop {
        id += 1;
        let list = call(&mut ws, "", id, "streams", "").await?;
        if list
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["stream"] == stream))
        {
            id += 1;
            let watch = format!(",{}", json!({"stream": stream}));
            let ack = call(&mut ws, "", id, "watch", &watch).await?;
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

/// Peak resident set size of `pid` (VmHWM) in MiB.
fn rss_hwm_mib(pid: u32) -> Result<f64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("process {pid} is gone: {e}"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .ok_or(format!("no VmHWM for process {pid}"))?;
    Ok(kib / 1024.0)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// What one viewer received.
#[derive(Default)]
struct Viewer {
    /// Frames received that were sent during the measured seconds.
    measured: Cell<u64>,
    /// The sequence number after the highest one received.
    next_seq: Cell<u64>,
    /// Frames that came after a higher sequence number (delivered out of order).
    reordered: Cell<u64>,
}

/// State the viewers and the publisher share (one thread).
struct Shared {
    epoch: Instant,
    viewers: Vec<Viewer>,
    /// Frames with this sequence number and later were sent while measuring.
    measure_from: Cell<u64>,
    latencies_us: RefCell<Vec<u32>>,
    /// When the last measured frame arrived (ns since `epoch`).
    last_delivery: Cell<u64>,
    progress: Notify,
}

impl Shared {
    fn slowest(&self) -> u64 {
        self.viewers
            .iter()
            .map(|v| v.next_seq.get())
            .min()
            .unwrap_or(0)
    }

    fn delivered(&self) -> u64 {
        self.viewers.iter().map(|v| v.measured.get()).sum()
    }
}

async fn watch_frames(mut ws: Ws, index: usize, shared: Rc<Shared>) {
    while let Ok(Some(got)) = ws.recv().await {
        let Got::Binary(head) = got else { continue };
        let now = shared.epoch.elapsed().as_nanos() as u64;
        let (sent, seq) = (read_u64(&head, TS_AT), read_u64(&head, SEQ_AT));
        let v = &shared.viewers[index];
        if v.next_seq.get() > seq + 1 {
            v.reordered.set(v.reordered.get() + 1);
        }
        v.next_seq.set(v.next_seq.get().max(seq + 1));
        if seq >= shared.measure_from.get() {
            v.measured.set(v.measured.get() + 1);
            shared.last_delivery.set(now);
            let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
            shared.latencies_us.borrow_mut().push(us);
        }
        shared.progress.notify_one();
    }
}

/// Answers the pings that arrive on the publisher's socket; the publisher otherwise never reads,
/// and the relay would drop it after a ping timeout.
async fn publisher_reader(mut rd: OwnedReadHalf, mut parser: Parser, pongs: Rc<Cell<u32>>) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = rd.read(&mut buf).await {
        if n == 0 {
            return;
        }
        parser.feed(&buf[..n], &mut |got| {
            if matches!(&got, Got::Text(t) if t == b"2") {
                pongs.set(pongs.get() + 1);
            }
        });
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => tokio::task::LocalSet::new().block_on(&rt, run()),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        eprintln!("bench-client: {e}");
        std::process::exit(1);
    }
    // Do not wait for the connections to wind down: the OS closes them.
    std::process::exit(0);
}

async fn run() -> Result<(), Error> {
    let o = opts()?;
    let publish_addr = o.publish_addr.unwrap_or(o.addr);
    let pub_ws = publisher(&o, publish_addr).await?;
    let stream = format!("{}/{STREAM}", o.device);
    let shared = Rc::new(Shared {
        epoch: Instant::now(),
        viewers: (0..o.viewers).map(|_| Viewer::default()).collect(),
        measure_from: Cell::new(u64::MAX),
        latencies_us: RefCell::new(Vec::new()),
        last_delivery: Cell::new(0),
        progress: Notify::new(),
    });
    for i in 0..o.viewers {
        let ws = viewer(o.addr, &stream).await?;
        tokio::task::spawn_local(watch_frames(ws, i, shared.clone()));
    }
    let pongs = Rc::new(Cell::new(0));
    let Ws {
        rd, mut wr, parser, ..
    } = pub_ws;
    tokio::task::spawn_local(publisher_reader(rd, parser, pongs.clone()));

    let mut payload = vec![0xA5u8; o.size.max(HEADER_LEN)];
    payload[..4].copy_from_slice(&[0, 0, 0, 1]);
    let frame_us = 1_000_000 / u64::from(if o.rate > 0 { o.rate } else { 30 });
    let warmup = Duration::from_secs(1);
    let mut out = Vec::with_capacity(payload.len() + 256);
    let mut sent = 0u64;
    let mut measuring: Option<(Instant, u64, Vec<u64>, u64)> = None;
    let start = Instant::now();
    let total = warmup + Duration::from_secs(o.secs);
    let mut next_due = start;
    while start.elapsed() < total {
        if measuring.is_none() && start.elapsed() >= warmup {
            let cpu = o
                .cpu_pids
                .iter()
                .map(|&p| cpu_ns(p))
                .collect::<Result<Vec<_>, _>>()?;
            shared.measure_from.set(sent);
            measuring = Some((Instant::now(), sent, cpu, cpu_ns(std::process::id())?));
        }
        if o.rate > 0 {
            next_due += Duration::from_secs_f64(1.0 / f64::from(o.rate));
            tokio::time::sleep_until(next_due.into()).await;
        } else {
            while sent.saturating_sub(shared.slowest()) >= o.window && start.elapsed() < total {
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), shared.progress.notified())
                        .await;
            }
        }
        let key = o.audio || sent.is_multiple_of(o.gop);
        payload[4] = if key { 0x65 } else { 0x41 };
        let ts = shared.epoch.elapsed().as_nanos() as u64;
        payload[TS_AT..TS_AT + 8].copy_from_slice(&ts.to_le_bytes());
        payload[SEQ_AT..SEQ_AT + 8].copy_from_slice(&sent.to_le_bytes());
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let meta = json!({"stream": STREAM, "track": track(&o), "seq": sent,
            "pts": sent * frame_us, "key": key, "t": t});
        out.clear();
        for _ in 0..pongs.replace(0) {
            put_frame(&mut out, 0x1, b"3");
        }
        let text = format!(r#"451-{PUBLISH}["media",{meta},{{"_placeholder":true,"num":0}}]"#);
        put_frame(&mut out, 0x1, text.as_bytes());
        put_frame(&mut out, 0x2, &payload);
        wr.write_all(&out)
            .await
            .map_err(|e| format!("publisher write: {e}"))?;
        sent += 1;
    }
    let Some((t0, s0, cpu0, gen0)) = measuring else {
        return Err("the run ended before the measured seconds began".into());
    };
    let send_s = t0.elapsed().as_secs_f64();
    // Frames on their way: wait until every viewer has the last one, or 0.5 s without progress
    // (frames the relay dropped never come), at most 2 s.
    let drain_end = Instant::now() + Duration::from_secs(2);
    while shared.slowest() < sent && Instant::now() < drain_end {
        let idle =
            tokio::time::timeout(Duration::from_millis(500), shared.progress.notified()).await;
        if idle.is_err() {
            break;
        }
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let mut cpu = Vec::new();
    for (&pid, c0) in o.cpu_pids.iter().zip(cpu0) {
        cpu.push(cpu_ns(pid)?.saturating_sub(c0));
    }
    let gen_s = cpu_ns(std::process::id())?.saturating_sub(gen0) as f64 / 1e9;
    let rss = o
        .cpu_pids
        .iter()
        .map(|&p| rss_hwm_mib(p))
        .collect::<Result<Vec<_>, _>>()?;
    let delivered = shared.delivered();
    let t0_ns = t0.duration_since(shared.epoch).as_nanos() as u64;
    let span_s = (shared.last_delivery.get().saturating_sub(t0_ns) as f64 / 1e9).max(send_s);
    let expected = (sent - s0) * o.viewers as u64;
    let missing = expected.saturating_sub(delivered);
    let mut lat = shared.latencies_us.take();
    lat.sort_unstable();
    let pct = |p: f64| {
        let us = lat
            .get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0);
        f64::from(us) / 1000.0
    };
    println!(
        "{}",
        json!({
            "frames_sent": sent - s0,
            "frames_delivered": delivered,
            "delivered_fps": (delivered as f64 / span_s).round(),
            "loss_pct": 100.0 * missing as f64 / expected.max(1) as f64,
            "out_of_order": shared.viewers.iter().map(|v| v.reordered.get()).sum::<u64>(),
            "lat_p50_ms": pct(0.50),
            "lat_p99_ms": pct(0.99),
            "server_cpu_s": cpu.first().map(|&ns| ns as f64 / 1e9),
            "server_cpu_ns": cpu,
            "server_rss_hwm_mb": rss.first(),
            "server_rss_hwm_mb_each": rss,
            "gen_cpu_pct": (100.0 * gen_s / wall_s).round(),
            "wall_s": wall_s,
        })
    );
    Ok(())
}
