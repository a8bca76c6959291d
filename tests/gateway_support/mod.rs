//! Shared by the gateway tests: start `sioedge run` on a free port with test sources, and a
//! minimal Socket.IO-over-WebSocket viewer written from the protocol (independent of our codecs)
//! that can stop reading its socket on purpose.
#![allow(dead_code)]

#[allow(unused_imports)] // each test binary uses a subset
pub use crate::process_support::{ChildGuard, free_port};
use async_tungstenite::tungstenite::Message;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (the clock of the contract's `t`).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A config with one stream `cam0` from the test sources at 320×240, listening on a free port.
pub fn test_config(video_extra: &str, extra: &str) -> String {
    format!(
        r#"device = "test-gw"
[server]
listen = "127.0.0.1:0"
{extra}
[[stream]]
id = "cam0"
[stream.video]
source = "test"
width = 320
height = 240
fps = 30
{video_extra}
[stream.audio]
source = "test"
"#
    )
}

/// A running gateway.
pub struct Gateway {
    pub proc: ChildGuard,
    pub addr: SocketAddr,
    /// It printed an `https://` URL (`[server.tls]`).
    pub https: bool,
    /// The config file it runs (rewrite it and send SIGHUP to test a reload).
    pub config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `sioedge run --config <file with config>` and waits (10 s at most) for its URL.
    pub fn start(config: &str) -> Gateway {
        let gw = Gateway::start_with(config, &[("RUST_LOG", "warn")], Stdio::inherit());
        gw.wait_live(2);
        gw
    }

    /// Starts `sioedge run` with extra environment and stderr; waits only for the viewer URL.
    pub fn start_with(config: &str, env: &[(&str, &str)], stderr: Stdio) -> Gateway {
        Gateway::start_prepared(config, env, stderr, |_| {})
    }

    /// [`Gateway::start_with`], with `prepare` adjusting the command first (e.g. a resource
    /// limit set in `pre_exec`).
    pub fn start_prepared(
        config: &str,
        env: &[(&str, &str)],
        stderr: Stdio,
        prepare: impl FnOnce(&mut Command),
    ) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sioedge.toml");
        std::fs::write(&path, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sioedge"));
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr);
        prepare(&mut cmd);
        let mut child = cmd.spawn().expect("spawn sioedge");
        let stdout = child.stdout.take().expect("stdout");
        let proc = ChildGuard(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("viewer: ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("gateway printed no viewer URL within 10 s");
        let https = url.starts_with("https://");
        let addr = url
            .trim_start_matches(if https { "https://" } else { "http://" })
            .trim_end_matches('/')
            .parse()
            .expect("viewer URL has an address");
        Gateway {
            proc,
            addr,
            https,
            config_path: path,
            _dir: dir,
        }
    }

    /// Waits (10 s at most) until `/api/status` shows `tracks` live tracks.
    pub fn wait_live(&self, tracks: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status: Value = serde_json::from_str(&self.get("/api/status")).unwrap_or_default();
            let live = status["streams"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["tracks"].as_array().into_iter().flatten())
                .filter(|t| t["state"] == "live" && t["framesIn"].as_u64() > Some(0))
                .count();
            if live >= tracks {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tracks not live in 10 s: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Resident set size in KiB, from /proc/<pid>/status.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS present")
    }

    /// GET a path from the gateway's HTTP server (blocking, 5 s timeout); over HTTPS without
    /// verifying the certificate (see [`https_get`] for that).
    pub fn get(&self, path: &str) -> String {
        let response = if self.https {
            https_get(self.addr, None, path).expect("HTTPS GET")
        } else {
            let mut s = std::net::TcpStream::connect(self.addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            http_exchange(&mut s, self.addr, path).expect("HTTP GET")
        };
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

/// Sends `GET path` (Connection: close) on `s` and reads the whole response.
fn http_exchange(
    s: &mut (impl std::io::Read + std::io::Write),
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `GET path` over HTTPS to `addr` (blocking, 5 s timeout), the whole response (head and
/// body). With `ca`, the server's certificate must verify against that PEM file for the IP
/// address; without, any certificate is accepted.
pub fn https_get(
    addr: SocketAddr,
    ca: Option<&std::path::Path>,
    path: &str,
) -> Result<String, String> {
    let config = sioedge::client::client_config(&sioedge::config::TlsOptions {
        ca_file: ca.map(std::path::Path::to_path_buf),
        insecure_skip_verify: ca.is_none(),
    })
    .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    http_exchange(&mut tls, addr, path).map_err(|e| e.to_string())
}

/// One `media` event as a viewer received it.
#[derive(Debug, Clone)]
pub struct Media {
    pub track: String,
    pub seq: u64,
    pub key: bool,
    pub t: u64,
    pub data: Bytes,
    /// Receive wall-clock time, µs.
    pub at: u64,
}

impl Media {
    /// Capture → receipt, µs.
    pub fn latency_us(&self) -> i64 {
        self.at as i64 - self.t as i64
    }
}

/// What a viewer receives.
#[derive(Debug, Clone)]
pub enum Ev {
    Event(String, Value),
    Media(Media),
    Ack(u64, Value),
    Disconnect,
}

type Ws = async_tungstenite::WebSocketStream<
    async_tungstenite::tokio::TokioAdapter<tokio::net::TcpStream>,
>;

/// A Socket.IO v5 viewer on the WebSocket transport, namespace `/`.
pub struct Viewer {
    ws: Ws,
    pending_binary: Option<(String, Value)>,
    backlog: VecDeque<Ev>,
    next_ack: u64,
    pub closed: bool,
}

/// Splits a Socket.IO packet (after the Engine.IO `4`) into type, attachments, ack id and JSON.
fn parse(sio: &str) -> Option<(u8, u64, Value)> {
    let mut chars = sio.char_indices().peekable();
    let (_, t) = chars.next()?;
    let t = t.to_digit(10)? as u8;
    let mut rest = &sio[1..];
    if t == 5 || t == 6 {
        let dash = rest.find('-')?;
        rest = &rest[dash + 1..];
    }
    if rest.starts_with('/') {
        let comma = rest.find(',')?;
        rest = &rest[comma + 1..];
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse().unwrap_or(u64::MAX);
    let json = if rest.len() > digits {
        serde_json::from_str(&rest[digits..]).ok()?
    } else {
        Value::Null
    };
    Some((t, id, json))
}

impl Viewer {
    /// Connects (TCP_NODELAY) and joins namespace `/` with `auth`; 5 s timeout.
    pub async fn connect_with(addr: SocketAddr, auth: Option<Value>) -> Result<Viewer, String> {
        Viewer::connect_opts(addr, auth, None).await
    }

    /// Connects with a fixed receive buffer (no autotuning), so a viewer that stops reading
    /// stops the sender within a small window instead of megabytes of kernel buffering.
    pub async fn connect_small_window(addr: SocketAddr, recv_buffer: u32) -> Viewer {
        Viewer::connect_opts(addr, None, Some(recv_buffer))
            .await
            .expect("viewer connects")
    }

    async fn connect_opts(
        addr: SocketAddr,
        auth: Option<Value>,
        recv_buffer: Option<u32>,
    ) -> Result<Viewer, String> {
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| e.to_string())?;
        }
        let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = async_tungstenite::tokio::client_async(url, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut v = Viewer {
            ws,
            pending_binary: None,
            backlog: VecDeque::new(),
            next_ack: 0,
            closed: false,
        };
        let connect = match auth {
            Some(a) => format!("40{a}"),
            None => "40".into(),
        };
        v.send_text(connect).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, v.ws.next())
                .await
                .map_err(|_| "no CONNECT answer in 5 s".to_string())?;
            let Some(Ok(Message::Text(text))) = msg else {
                return Err(format!("connection ended: {msg:?}"));
            };
            if text.starts_with("40") {
                return Ok(v);
            }
            if let Some(err) = text.strip_prefix("44") {
                return Err(err.to_string());
            }
        }
    }

    /// Connects without auth; panics on failure.
    pub async fn connect(addr: SocketAddr) -> Viewer {
        Viewer::connect_with(addr, None)
            .await
            .expect("viewer connects")
    }

    async fn send_text(&mut self, text: String) {
        let _ = self.ws.send(Message::Text(text.into())).await;
    }

    /// Emits `event` with `arg` and an ack id; returns the id.
    pub async fn emit_with_ack(&mut self, event: &str, arg: Value) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        let text = format!("42{id}{}", json!([event, arg]));
        self.send_text(text).await;
        id
    }

    /// Emits `event` and waits (5 s) for its ack, keeping whatever else arrives for later.
    pub async fn call(&mut self, event: &str, arg: Value) -> Value {
        let id = self.emit_with_ack(event, arg).await;
        let mut kept = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let ack = loop {
            match self.read(deadline).await {
                Some(Ev::Ack(got, v)) if got == id => break v,
                Some(ev) => kept.push(ev),
                None => panic!("no ack for {event} within 5 s"),
            }
        };
        self.backlog.extend(kept);
        ack
    }

    /// `watch` a stream; returns the ack (the announce).
    pub async fn watch(&mut self, stream: &str) -> Value {
        self.call("watch", json!({ "stream": stream })).await
    }

    /// The next event (backlog first) before `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Option<Ev> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        self.read(deadline).await
    }

    /// The next `media` event before `deadline`, skipping other events.
    pub async fn next_media(&mut self, deadline: Instant) -> Option<Media> {
        loop {
            match self.next(deadline).await? {
                Ev::Media(m) => return Some(m),
                Ev::Disconnect => return None,
                _ => {}
            }
        }
    }

    /// Reads from the socket until one event is complete.
    async fn read(&mut self, deadline: Instant) -> Option<Ev> {
        loop {
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    return Some(Ev::Disconnect);
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(text) => {
                    let text = text.as_str();
                    if text == "2" {
                        self.send_text("3".into()).await;
                        continue;
                    }
                    if text.starts_with('1') {
                        self.closed = true;
                        return Some(Ev::Disconnect);
                    }
                    let Some(sio) = text.strip_prefix('4') else {
                        continue;
                    };
                    let Some((t, id, json)) = parse(sio) else {
                        panic!("unparseable packet {text:?}");
                    };
                    match t {
                        1 => return Some(Ev::Disconnect),
                        2 => {
                            let name = json[0].as_str().unwrap_or("").to_owned();
                            return Some(Ev::Event(name, json[1].clone()));
                        }
                        3 => return Some(Ev::Ack(id, json[0].clone())),
                        5 => {
                            let name = json[0].as_str().unwrap_or("").to_owned();
                            self.pending_binary = Some((name, json[1].clone()));
                        }
                        _ => {}
                    }
                }
                Message::Binary(data) => {
                    let at = now_us();
                    let Some((name, meta)) = self.pending_binary.take() else {
                        panic!("binary frame without a BINARY_EVENT header");
                    };
                    assert_eq!(name, "media");
                    return Some(Ev::Media(Media {
                        track: meta["track"].as_str().unwrap_or("").to_owned(),
                        seq: meta["seq"].as_u64().expect("seq"),
                        key: meta["key"].as_bool().expect("key"),
                        t: meta["t"].as_u64().expect("t"),
                        data,
                        at,
                    }));
                }
                Message::Close(_) => {
                    self.closed = true;
                    return Some(Ev::Disconnect);
                }
                _ => {}
            }
        }
    }
}

/// The p-th percentile (0..=100) of `v` (sorted in place).
pub fn percentile(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
    v[i]
}

/// A helper process (python-socketio peer) that prints one JSON object per line on stdout.
pub struct Peer {
    pub proc: ChildGuard,
    lines: std::sync::mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Peer {
    /// Starts `python3 tests/peers/<script> <args>`.
    pub fn python(script: &str, args: &[&str]) -> Peer {
        Peer::spawn("python3", script, args)
    }

    /// The python-socketio test relay (`relay.py`) accepting `token`, once it listens: the peer
    /// and its port.
    pub fn python_relay(token: &str) -> (Peer, u64) {
        let mut relay = Peer::python("relay.py", &["--token", token]);
        let port = relay.wait_for("ready", Duration::from_secs(10))["port"]
            .as_u64()
            .expect("port");
        (relay, port)
    }

    /// Starts `node tests/peers/<script> <args>`.
    pub fn node(script: &str, args: &[&str]) -> Peer {
        Peer::spawn("node", script, args)
    }

    fn spawn(interpreter: &str, script: &str, args: &[&str]) -> Peer {
        let path = format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(interpreter)
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {interpreter}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Peer {
            proc: ChildGuard(child),
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `timeout`) for a line with `"ev": ev`; every line read is kept in `seen`.
    pub fn wait_for(&mut self, ev: &str, timeout: Duration) -> Value {
        if let Some(v) = self.seen.iter().find(|v| v["ev"] == ev) {
            return v.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {ev:?} line within {timeout:?}"));
            self.seen.push(v.clone());
            if v["ev"] == ev {
                return v;
            }
        }
    }

    /// Collects lines for `d` more.
    pub fn collect_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(v) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v);
        }
    }

    /// Every line seen with `"ev": ev`.
    pub fn all(&self, ev: &str) -> Vec<&Value> {
        self.seen.iter().filter(|v| v["ev"] == ev).collect()
    }
}

/// CRC-32 (IEEE), as Python's `zlib.crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
