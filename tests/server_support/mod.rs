//! Helpers for the server's integration tests: child processes that die with the test, the
//! peers directory, and waits that always time out.
#![allow(dead_code)] // each test binary uses a subset

pub mod raw;

#[allow(unused_imports)] // each test binary uses a subset
pub use crate::process_support::{ChildGuard, free_port};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Serves `server` on a free 127.0.0.1 port in the background: its address, and the task that
/// ends when the server shuts down.
pub async fn serve(server: &sioedge::server::Server) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });
    (addr, serving)
}

/// Builds `builder`'s server with namespace `/` answering `message` with `message-back` (same
/// arguments) and serves it like [`serve`]: the server and its address.
pub async fn serve_echo(
    builder: sioedge::server::ServerBuilder,
) -> (sioedge::server::Server, SocketAddr) {
    let server = builder.build();
    server.of("/").on_connect(|socket, _auth| {
        socket.on("message", |s, args, _| {
            let _ = s.emit("message-back", args);
        });
        Ok(())
    });
    let (addr, _) = serve(&server).await;
    (server, addr)
}

/// `tests/peers` (node_modules live there).
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Path of an example binary, building it if `cargo test` did not.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

/// Starts the conformance server on a free port; returns it and its base URL.
pub fn start_conformance_server() -> (ChildGuard, String) {
    start_conformance_server_with(|_| {})
}

/// [`start_conformance_server`], with `prepare` adjusting the command first (environment,
/// stderr, resource limits).
pub fn start_conformance_server_with(prepare: impl FnOnce(&mut Command)) -> (ChildGuard, String) {
    let mut cmd = Command::new(example("conformance-server"));
    cmd.args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    prepare(&mut cmd);
    let mut child = cmd.spawn().expect("start conformance-server");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("conformance-server did not report its port");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (guard, format!("http://{addr}"))
}

/// Runs a command to completion, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(out) => return out.expect("wait for child"),
            Err(_) if Instant::now() > deadline => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("{cmd:?} timed out after {timeout:?}");
            }
            Err(_) => {}
        }
    }
}
