//! A flood against a gateway with a low file descriptor limit (256, soft and hard): more than
//! twice `max_connections` idle sockets from 13 addresses, plus clients sending headers and
//! polling bodies one byte at a time. Before the limits, it ran out of descriptors and every
//! newcomer failed (`accept: Too many open files`); now viewers are served while the sockets are
//! held, the held sockets are closed by the timeouts (or make room for newcomers), and once the
//! flood stops a fresh client is served as before.

mod gateway_support;
mod process_support;
mod server_support;

use gateway_support::{Gateway, Viewer};
use server_support::raw::{closed_within, connect_from, http, open_polling, post_head};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MAX_CONNECTIONS: usize = 100;
const PER_ADDRESS: usize = 16;
/// Idle, header and body timeouts.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A gateway with test sources whose process may hold 256 file descriptors.
fn gateway() -> Gateway {
    let config = gateway_support::test_config(
        "",
        &format!(
            "max_connections = {MAX_CONNECTIONS}\n\
             max_connections_per_address = {PER_ADDRESS}\n\
             idle_timeout = \"2s\"\nheader_timeout = \"2s\"\nbody_timeout = \"2s\"\n"
        ),
    );
    let gw = Gateway::start_prepared(&config, &[("RUST_LOG", "warn")], Stdio::inherit(), |cmd| {
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_NOFILE, 256, 256).map_err(std::io::Error::from)
            });
        }
    });
    gw.wait_live(2);
    gw
}

/// `/api/status` as JSON.
async fn status(addr: SocketAddr) -> serde_json::Value {
    let (code, body) = http(addr, "GET", "/api/status", b"").await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("status JSON")
}

/// A new viewer joins, watches `cam0` and gets a media frame within 5 s.
async fn viewer_is_served(addr: SocketAddr) -> Viewer {
    let mut v = Viewer::connect(addr).await;
    v.watch("cam0").await;
    let frame = v.next_media(Instant::now() + Duration::from_secs(5)).await;
    assert!(frame.is_some(), "no media frame");
    v
}

/// Sends one byte on each socket every 200 ms until the server closes it; what each got.
async fn trickle(sockets: Vec<TcpStream>) -> Vec<String> {
    let mut tasks = Vec::new();
    for mut s in sockets {
        tasks.push(tokio::spawn(async move {
            loop {
                let _ = s.write_all(b"a").await;
                if let Some(answer) = closed_within(&mut s, Duration::from_millis(200)).await {
                    return answer;
                }
            }
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("trickle task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_served_through_a_flood_of_idle_and_slow_sockets() {
    let gw = gateway();
    let addr = gw.addr;

    // 260 idle sockets from 127.0.0.2..=14, 20 each: more than twice max_connections.
    let mut idle = Vec::new();
    for host in 2..=14 {
        for _ in 0..20 {
            idle.push(connect_from(&format!("127.0.0.{host}"), addr).await);
        }
    }
    // 20 clients sending their headers slowly, 10 sending a polling body slowly.
    let mut slow_headers = Vec::new();
    for i in 0..20 {
        let mut s = connect_from(&format!("127.0.0.{}", 20 + i % 2), addr).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        slow_headers.push(s);
    }
    let mut slow_bodies = Vec::new();
    for _ in 0..10 {
        let sid = open_polling(addr).await;
        slow_bodies.push(post_head(addr, &sid, 10_000).await);
    }
    let headers = tokio::spawn(trickle(slow_headers));
    let bodies = tokio::spawn(trickle(slow_bodies));

    // Served while the sockets are held.
    let mut viewers = vec![viewer_is_served(addr).await];
    let held = status(addr).await;
    viewers.push(viewer_is_served(addr).await);
    let mut still_open = 0;
    for s in &mut idle {
        still_open += usize::from(closed_within(s, Duration::from_millis(1)).await.is_none());
    }
    assert!(
        still_open >= 40 && !headers.is_finished() && !bodies.is_finished(),
        "the flood was no longer held: {still_open} idle sockets open"
    );
    let c = &held["connections"];
    assert!(c["open"].as_u64() <= Some(MAX_CONNECTIONS as u64), "{c}");
    assert!(c["refused"]["perAddress"].as_u64() >= Some(13 * 4), "{c}");
    assert!(c["closed"]["evicted"].as_u64() > Some(0), "{c}");

    // The held sockets are closed by the timeouts (or made room for newcomers before).
    for s in &mut idle {
        let answer = closed_within(s, TIMEOUT * 3).await;
        assert!(
            answer
                .as_deref()
                .is_some_and(|a| a.is_empty() || a.starts_with("HTTP/1.1 503")),
            "{answer:?}"
        );
    }
    let headers = tokio::time::timeout(TIMEOUT * 3, headers)
        .await
        .expect("slow headers closed in time")
        .expect("task");
    assert!(
        headers
            .iter()
            .all(|a| a.is_empty() || a.starts_with("HTTP/1.1 408")),
        "{headers:?}"
    );
    assert!(headers.iter().any(|a| a.starts_with("HTTP/1.1 408")));
    let bodies = tokio::time::timeout(TIMEOUT * 3, bodies)
        .await
        .expect("slow bodies closed in time")
        .expect("task");
    assert!(
        bodies.iter().all(|a| a.starts_with("HTTP/1.1 408")),
        "{bodies:?}"
    );

    // The flood is over: as before, without a restart.
    drop(idle);
    viewers.push(viewer_is_served(addr).await);
    let after = status(addr).await;
    let c = &after["connections"];
    assert_eq!(c["open"].as_u64(), Some(viewers.len() as u64 + 1), "{c}");
    assert!(c["closed"]["idleTimeout"].as_u64() > Some(0), "{c}");
    assert!(c["closed"]["headerTimeout"].as_u64() > Some(0), "{c}");
    assert_eq!(c["closed"]["bodyTimeout"].as_u64(), Some(10), "{c}");
    assert_eq!(after["viewers"], viewers.len(), "{after}");
    eprintln!("connections after the flood: {c}");
}

/// At start the soft descriptor limit is raised to the hard one (both logged), and
/// `max_connections` (default 512) is lowered, with a warning, to what the limit leaves.
#[test]
fn the_descriptor_limit_is_raised_at_start_and_bounds_max_connections() {
    use std::io::{BufRead, BufReader};
    let config = gateway_support::test_config("", "");
    let mut gw = Gateway::start_prepared(&config, &[("RUST_LOG", "info")], Stdio::piped(), |cmd| {
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_NOFILE, 200, 300).map_err(std::io::Error::from)
            });
        }
    });
    let stderr = gw.proc.0.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    while !log.contains("gateway running") {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no start line in:\n{log}"));
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        log.contains("file descriptor limit: raised from 200 to the hard limit 300"),
        "{log}"
    );
    assert!(log.contains("serving at most 172 connections"), "{log}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.pid())).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["300", "300"],
        "{open_files}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&gw.get("/api/status")).expect("status JSON");
    assert_eq!(status["connections"]["limit"], 172, "{status}");
}
