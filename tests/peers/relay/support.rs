//! Shared by the relay tests (included with `#[path]`): start `sioedge relay` and `redis-server`
//! as child processes on free 127.0.0.1 ports, killed on drop; in-process Redis bus nodes and the
//! numbered video frames the bus tests publish.
#![allow(dead_code)]

use bytes::Bytes;
use sioedge::relay::envelope::{Record, RecordKind};
use sioedge::relay::redis_bus::{BusConfig, RedisBus};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test binary uses a subset
pub use crate::process_support::{ChildGuard, free_port};

/// A `[relay_server]` config on a free port with device tokens and an optional Redis adapter.
pub fn relay_config(tokens: &[(&str, &str)], adapter: Option<u16>) -> String {
    let mut s = String::from(
        "[relay_server]\nlisten = \"127.0.0.1:0\"\npublisher_namespace = \"/publish\"\nviewer_namespace = \"/\"\nduplicate_publisher = \"replace\"\ncache_ttl = \"5s\"\n",
    );
    if let Some(port) = adapter {
        s += &format!("adapter = \"redis://127.0.0.1:{port}/0\"\n");
    }
    s += "[relay_server.tokens]\n";
    for (device, token) in tokens {
        s += &format!("\"{device}\" = \"{token}\"\n");
    }
    s
}

/// A running `sioedge relay`.
pub struct Relay {
    pub proc: ChildGuard,
    pub addr: SocketAddr,
    /// What it printed: `http://addr`, or `https://addr` with `[relay_server.tls]`.
    url: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Starts `sioedge relay --config <config>` and waits (10 s) for its `relay: URL` line.
    pub fn start(config: &str) -> Relay {
        Relay::start_with(config, &[])
    }

    /// [`Relay::start`] with more environment variables (e.g. `NOTIFY_SOCKET`).
    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sioedge"))
            .arg("relay")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sioedge relay");
        let stdout = child.stdout.take().expect("stdout");
        let proc = ChildGuard(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("relay: ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("relay printed no `relay: URL` line within 10 s");
        let url = url.trim_end_matches('/').to_owned();
        let addr = url
            .split_once("://")
            .and_then(|(_, a)| a.parse().ok())
            .expect("relay URL has an address");
        Relay {
            proc,
            addr,
            url,
            _dir: dir,
        }
    }

    /// `http://addr` (`https://addr` with TLS).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The config file it runs (rewrite it and send SIGHUP to test a reload).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("relay.toml")
    }
}

/// A `redis-server` without persistence on a fixed port (so it can be restarted on it).
pub struct Redis {
    pub proc: Option<ChildGuard>,
    pub port: u16,
}

impl Redis {
    /// Starts redis-server on a free port and waits (5 s) until it accepts connections.
    pub fn start() -> Redis {
        let mut r = Redis {
            proc: None,
            port: free_port(),
        };
        r.restart();
        r
    }

    /// Kills the server (if running).
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// (Re)starts the server on the same port; waits (5 s) for it to answer PING.
    pub fn restart(&mut self) {
        self.proc = None;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server");
        self.proc = Some(ChildGuard(child));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.ping() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server not up in 5 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(1))).ok();
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

/// An in-process Redis bus node on the redis-server at `port`, keys and channels under `prefix`.
pub fn bus_node(
    port: u16,
    prefix: &str,
    node: &str,
    queue: usize,
) -> (RedisBus, tokio::sync::mpsc::Receiver<Record>) {
    RedisBus::start(BusConfig {
        url: format!("redis://127.0.0.1:{port}/0"),
        prefix: prefix.into(),
        node: node.into(),
        ttl: Duration::from_secs(5),
        queue,
    })
    .expect("bus")
}

/// A cached video frame of `stream` whose meta is `{"seq":N}` (read back by [`record_seq`]).
pub fn video_frame(stream: &str, seq: u32, key: bool, data: Vec<u8>) -> Record {
    Record {
        stream: stream.into(),
        track: "video".into(),
        kind: RecordKind::Media,
        key,
        cache: true,
        node: "".into(),
        meta: Bytes::from(format!(r#"{{"seq":{seq}}}"#)),
        data: Bytes::from(data),
    }
}

/// The sequence number of a [`video_frame`].
pub fn record_seq(r: &Record) -> u32 {
    serde_json::from_slice::<serde_json::Value>(&r.meta).expect("json")["seq"]
        .as_u64()
        .expect("seq") as u32
}
