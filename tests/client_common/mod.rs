//! Shared helpers of the client tests: relay processes, free ports, waiting for events.
#![allow(dead_code)] // each test binary uses a different subset

use bytes::Bytes;
use serde_json::{Value, json};
use sioedge::client::{ClientEvent, ClientHandle, ClientOptions, NamespaceOptions};
use sioedge::config::Transport;
use sioedge::socketio::Arg;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[allow(unused_imports)] // each test binary uses a subset
pub use crate::process_support::{ChildGuard, free_port};

pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Which real relay implementation to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aiohttp,
    Tornado,
    Node,
}

/// A relay process; killed on drop. Its stdout lines (JSON) are collected.
pub struct Relay {
    pub kind: Kind,
    pub port: u16,
    pub extra: Vec<String>,
    child: Option<ChildGuard>,
    lines: std_mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Relay {
    /// Starts a relay on `port` with extra arguments and waits until it listens.
    pub fn start(kind: Kind, port: u16, extra: &[&str]) -> Relay {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, lines) = spawn(kind, port, &extra);
        let mut r = Relay {
            kind,
            port,
            extra,
            child: Some(ChildGuard(child)),
            lines,
            seen: Vec::new(),
        };
        r.wait_for(Duration::from_secs(20), |v| v["ev"] == "ready")
            .unwrap_or_else(|| panic!("{kind:?} relay did not start on port {port}"));
        r
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts the same relay again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (child, lines) = spawn(self.kind, self.port, &self.extra);
            self.child = Some(ChildGuard(child));
            self.lines = lines;
            if self
                .wait_for(Duration::from_secs(20), |v| v["ev"] == "ready")
                .is_some()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "relay could not restart on port {}",
                self.port
            );
            self.kill();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Sends a signal to the process (e.g. "STOP", "CONT").
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// The next line matching `pred` within `timeout` (all lines read are kept in `seen`).
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Everything printed so far (without waiting).
    pub fn drain(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }
}

fn spawn(kind: Kind, port: u16, extra: &[String]) -> (Child, std_mpsc::Receiver<Value>) {
    let dir = peers_dir();
    let mut cmd = match kind {
        Kind::Aiohttp | Kind::Tornado => {
            let mut c = Command::new("python3");
            c.arg(dir.join("client_relay.py"))
                .arg("--mode")
                .arg(match kind {
                    Kind::Tornado => "tornado",
                    _ => "aiohttp",
                });
            c
        }
        Kind::Node => {
            let mut c = Command::new("node");
            c.arg(dir.join("client_relay.js"));
            c
        }
    };
    cmd.arg("--port").arg(port.to_string()).args(extra);
    cmd.current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn relay");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    (child, rx)
}

/// The next client event matching `pred` within `timeout` (others are discarded).
pub async fn next_event(
    rx: &mut mpsc::Receiver<ClientEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv()).await.ok()??;
        if pred(&ev) {
            return Some(ev);
        }
    }
}

/// Waits until `namespace` is connected.
pub async fn connected(
    rx: &mut mpsc::Receiver<ClientEvent>,
    namespace: &str,
    timeout: Duration,
) -> bool {
    next_event(
        rx,
        timeout,
        |e| matches!(e, ClientEvent::Connected { namespace: n } if n == namespace),
    )
    .await
    .is_some()
}

/// Polls `cond` every 20 ms until true or `timeout`.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Args as JSON for comparisons (binary as `{"bin": hex}`, like the relays print).
pub fn args_json(args: &[Arg]) -> Vec<Value> {
    args.iter()
        .map(|a| match a {
            Arg::Json(v) => v.clone(),
            Arg::Binary(b) => serde_json::json!({ "bin": hex(b) }),
        })
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Resident set size of this process in KiB (Linux).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Closes the client, bounded in time.
/// Asserts that the relay reports the WebSocket transport within 5 s (the upgrade completed);
/// the relay answers `which-transport` with its transport name.
pub async fn assert_upgraded(client: &ClientHandle, what: &str) {
    for _ in 0..50 {
        let t = client
            .emit_with_ack("/", "which-transport", vec![], Duration::from_secs(10))
            .await
            .unwrap();
        if t == vec![Arg::Json(json!("websocket"))] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never upgraded to WebSocket");
}

pub async fn close(handle: &ClientHandle) {
    let _ = tokio::time::timeout(Duration::from_secs(5), handle.close()).await;
}

/// Options used by the interop tests: URL query, `query`, a header, namespaces `/` and `/admin`
/// with auth.
pub fn options(port: u16, transports: &[Transport], token: &str) -> ClientOptions {
    let mut o = ClientOptions::new(format!("http://127.0.0.1:{port}?from=url"));
    o.transports = transports.to_vec();
    o.auth = Some(json!({ "token": token, "device": "pi" }));
    o.extra_namespaces.push(NamespaceOptions {
        name: "/admin".into(),
        auth: Some(json!({ "token": token })),
    });
    o.query.insert("device".into(), "pi 4".into());
    o.headers.insert("x-test".into(), "hello".into());
    o.connect_timeout = Duration::from_secs_f64(5.0);
    o
}

/// JSON and binary arguments (all 256 byte values).
pub fn sample_args() -> Vec<Arg> {
    vec![
        Arg::Json(json!({ "n": 1, "s": "é" })),
        Arg::Binary(Bytes::from((0u8..=255).collect::<Vec<u8>>())),
        Arg::Json(json!([1, 2])),
    ]
}

/// On `ns`: a binary event echoed back, a client → relay ack with binary, and a relay → client
/// ack (the relay asks `question`, we answer with binary, it emits `answer` with our answer).
pub async fn exchange(
    client: &ClientHandle,
    events: &mut mpsc::Receiver<ClientEvent>,
    ns: &str,
    what: &str,
) {
    const T: Duration = Duration::from_secs(10);
    client.emit(ns, "echo", sample_args()).unwrap();
    let back = next_event(events, T, |e| {
        matches!(e, ClientEvent::Event { name, namespace, .. } if name == "echo-back" && namespace == ns)
    })
    .await
    .unwrap_or_else(|| panic!("{what} {ns}: no echo-back"));
    let ClientEvent::Event { args, .. } = back else {
        unreachable!()
    };
    assert_eq!(args, sample_args(), "{what} {ns}: echo-back differs");

    let acked = client.emit_with_ack(ns, "ack-me", sample_args(), T).await;
    assert_eq!(acked.unwrap(), sample_args(), "{what} {ns}: ack differs");

    client
        .emit(ns, "ask-me", vec![Arg::Json(json!("q?"))])
        .unwrap();
    let q = next_event(
        events,
        T,
        |e| matches!(e, ClientEvent::Event { name, .. } if name == "question"),
    )
    .await
    .unwrap_or_else(|| panic!("{what} {ns}: no question"));
    let ClientEvent::Event { args, ack, .. } = q else {
        unreachable!()
    };
    assert_eq!(args, vec![Arg::Json(json!("q?"))], "{what}");
    let answer = vec![
        Arg::Json(json!("yes")),
        Arg::Binary(Bytes::from_static(b"\x00\xffA")),
    ];
    ack.expect("question wants an ack")
        .send(answer.clone())
        .unwrap();
    let a = next_event(
        events,
        T,
        |e| matches!(e, ClientEvent::Event { name, .. } if name == "answer"),
    )
    .await
    .unwrap_or_else(|| panic!("{what} {ns}: no answer"));
    let ClientEvent::Event { args, .. } = a else {
        unreachable!()
    };
    assert_eq!(args, answer, "{what} {ns}: answer differs");
}
