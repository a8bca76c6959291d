//! Runs our ports of the official Engine.IO v4 and Socket.IO v5 protocol test suites (node,
//! tests/peers/server/*.test.mjs) against `tests/peers/server/conformance-server.rs`.

mod process_support;
mod server_support;

use server_support::{peers_dir, run_with_timeout, start_conformance_server};
use std::process::Command;
use std::time::Duration;

fn run_suite(file: &str) {
    let (_server, url) = start_conformance_server();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", file])
        .env("SERVER_URL", &url)
        .current_dir(peers_dir());
    let out = run_with_timeout(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failing: Vec<&str> = stdout.lines().filter(|l| l.contains("not ok")).collect();
    assert!(
        out.status.success() && failing.is_empty(),
        "{file} failed: {failing:#?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(passed >= 10, "{file}: only {passed} tests ran\n{stdout}");
}

#[test]
fn engineio_v4_suite_passes() {
    run_suite("server/engineio-v4.test.mjs");
}

#[test]
fn socketio_v5_suite_passes() {
    run_suite("server/socketio-v5.test.mjs");
}
