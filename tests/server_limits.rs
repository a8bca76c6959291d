//! Connection limits and timeouts: what a client that holds sockets (idle, or sending headers or
//! a body slowly) gets, that others are still served meanwhile, and that everything is as
//! before once it leaves. Clients bind to other loopback addresses (127.0.0.x) to be told apart.

mod process_support;
mod server_support;

use server_support::raw::{
    Frame, POLLING, RawWs, closed_within, connect_from, http, open_polling, post_head,
};
use sioedge::server::{ConnLimits, ConnectionStats, Server};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

/// Limits with timeouts long enough not to matter unless a test shortens them.
fn limits() -> ConnLimits {
    ConnLimits {
        max_connections: 64,
        max_per_address: 0,
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
    }
}

/// A server with `limits` whose namespace `/` answers `message` with `message-back`.
async fn start(limits: ConnLimits, max_payload: usize) -> (Server, SocketAddr) {
    let builder = Server::builder()
        .max_payload(max_payload)
        .connections(sioedge::server::Connections::new(limits));
    server_support::serve_echo(builder).await
}

/// A WebSocket that joined `/` and gets its echo.
async fn viewer(addr: SocketAddr) -> RawWs {
    let mut ws = RawWs::connect(addr, WS).await.expect("upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    ws.text("40").await;
    assert!(matches!(ws.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    echo(&mut ws).await;
    ws
}

async fn echo(ws: &mut RawWs) {
    ws.text(r#"42["message","hi"]"#).await;
    assert_eq!(
        ws.recv_data().await,
        Some(Frame::Text(r#"42["message-back","hi"]"#.into()))
    );
}

/// Waits (5 s at most) until the server's stats satisfy `ok`.
async fn wait_stats(server: &Server, ok: impl Fn(&ConnectionStats) -> bool) -> ConnectionStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.connection_stats();
        if ok(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{stats:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_limit_are_refused_at_once() {
    let (server, addr) = start(
        ConnLimits {
            max_per_address: 4,
            ..limits()
        },
        1_000_000,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(connect_from("127.0.0.2", addr).await);
    }
    for (i, s) in held.iter_mut().enumerate() {
        let closed = closed_within(s, Duration::from_millis(300)).await;
        if i < 4 {
            assert_eq!(closed, None, "connection {i} is within the limit");
        } else {
            let answer = closed.unwrap_or_else(|| panic!("connection {i} still open"));
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        }
    }
    // Another address is served meanwhile.
    let mut ws = viewer(addr).await;
    let stats = server.connection_stats();
    assert_eq!(
        (stats.open, stats.refused.per_address),
        (5, 2),
        "{stats:#?}"
    );
    // Once the holder leaves, its address may connect again.
    drop(held);
    wait_stats(&server, |s| s.open == 1).await;
    let mut s = connect_from("127.0.0.2", addr).await;
    assert_eq!(
        closed_within(&mut s, Duration::from_millis(300)).await,
        None
    );
    echo(&mut ws).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_closes_its_longest_idle_connection_for_a_newcomer() {
    let (server, addr) = start(
        ConnLimits {
            max_connections: 4,
            ..limits()
        },
        1_000_000,
    )
    .await;
    let mut idle = Vec::new();
    for i in 0..4 {
        idle.push(connect_from(&format!("127.0.0.{}", 2 + i), addr).await);
    }
    wait_stats(&server, |s| s.open == 4).await;
    // A viewer gets in: the connection idle for the longest makes room.
    let mut first = viewer(addr).await;
    assert_eq!(
        closed_within(&mut idle[0], Duration::from_millis(500)).await,
        Some(String::new())
    );
    for s in &mut idle[1..] {
        assert_eq!(closed_within(s, Duration::from_millis(100)).await, None);
    }
    // Three more take the others' places; then every connection is busy and a newcomer is
    // refused.
    let mut viewers = vec![];
    for _ in 0..3 {
        viewers.push(viewer(addr).await);
    }
    let refused = RawWs::connect(addr, WS).await.err().expect("refused");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let stats = server.connection_stats();
    assert_eq!(
        (stats.open, stats.closed.evicted, stats.refused.limit),
        (4, 4, 1),
        "{stats:#?}"
    );
    // Room again once a viewer leaves.
    drop(viewers.pop());
    wait_stats(&server, |s| s.open == 3).await;
    viewers.push(viewer(addr).await);
    echo(&mut first).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (server, addr) = start(
        ConnLimits {
            idle_timeout: Duration::from_millis(600),
            ..limits()
        },
        1_000_000,
    )
    .await;
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    // A keep-alive connection after one request.
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /nothing HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    kept.write_all(req.as_bytes()).await.expect("write");
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.expect("response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 404"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in [&mut silent, &mut kept] {
        assert_eq!(closed_within(s, Duration::from_millis(10)).await, None);
    }
    for s in [&mut silent, &mut kept] {
        assert_eq!(
            closed_within(s, Duration::from_secs(2)).await,
            Some(String::new()),
            "closed quietly"
        );
    }
    // A WebSocket is not idle: it outlives the timeout.
    let mut ws = viewer(addr).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    echo(&mut ws).await;
    let stats = server.connection_stats();
    assert_eq!(stats.closed.idle_timeout, 2, "{stats:#?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_slowly_get_408_and_a_close() {
    let (server, addr) = start(
        ConnLimits {
            header_timeout: Duration::from_millis(600),
            ..limits()
        },
        1_000_000,
    )
    .await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let started = Instant::now();
    let answer = loop {
        // One byte every 200 ms: never done, always sending.
        let _ = slow.write_all(b"a").await;
        if let Some(answer) = closed_within(&mut slow, Duration::from_millis(200)).await {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still open after {:?}",
            started.elapsed()
        );
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(server.connection_stats().closed.header_timeout, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_bodies_sent_slowly_get_408_and_a_close() {
    let (server, addr) = start(
        ConnLimits {
            body_timeout: Duration::from_millis(600),
            ..limits()
        },
        1_000_000,
    )
    .await;
    let sid = open_polling(addr).await;
    let mut slow = post_head(addr, &sid, 100_000).await;
    let started = Instant::now();
    let answer = loop {
        let _ = slow.write_all(b"4").await;
        if let Some(answer) = closed_within(&mut slow, Duration::from_millis(200)).await {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "still open");
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    // The session ended with its transport.
    let (status, _) = http(addr, "GET", &format!("{POLLING}&sid={sid}"), b"").await;
    assert_eq!(status, 400);
    assert_eq!(server.connection_stats().closed.body_timeout, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_are_bounded_in_size() {
    let (server, addr) = start(limits(), 1_000_000).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let _ = s.write_all(head.as_bytes()).await;
    let answer = closed_within(&mut s, Duration::from_secs(2))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // A head that never ends is not buffered past the bound either.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ").await;
    for _ in 0..10 {
        let _ = s.write_all(&[b'a'; 10_000]).await;
    }
    let answer = closed_within(&mut s, Duration::from_secs(2))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // 16 KiB of headers (Node's limit) are fine.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(16_000)
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let answer = closed_within(&mut s, Duration::from_secs(2))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_above_max_payload_gets_413_before_the_body() {
    let (server, addr) = start(limits(), 10_000).await;
    let sid = open_polling(addr).await;
    let mut post = post_head(addr, &sid, 10_001).await;
    let answer = closed_within(&mut post, Duration::from_secs(2))
        .await
        .expect("answered without the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    let (status, _) = http(addr, "GET", &format!("{POLLING}&sid={sid}"), b"").await;
    assert_eq!(status, 400, "the session closed");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_bodies_are_limited_by_bytes_not_by_packet_count() {
    let (server, addr) = start(limits(), 10_000).await;
    let sid = open_polling(addr).await;
    let path = format!("{POLLING}&sid={sid}");
    assert_eq!(http(addr, "POST", &path, b"40").await.0, 200);
    let (_, body) = http(addr, "GET", &path, b"").await;
    assert!(
        body.starts_with(b"40{"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // 1,500 packets in 4,500 bytes, then a message: all taken.
    let mut payload = "6\x1e".repeat(1500);
    payload.push_str(r#"42["message","many"]"#);
    let (status, body) = http(addr, "POST", &path, payload.as_bytes()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (_, body) = http(addr, "GET", &path, b"").await;
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"42["message-back","many"]"#
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_io_sessions_are_bounded_like_connections() {
    let (server, addr) = start(
        ConnLimits {
            max_connections: 3,
            ..limits()
        },
        1_000_000,
    )
    .await;
    for _ in 0..3 {
        open_polling(addr).await;
    }
    let (status, body) = http(addr, "GET", POLLING, b"").await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let refused = RawWs::connect(addr, WS).await.err().expect("refused");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert_eq!(server.connection_stats().refused.sessions, 2);
    server.shutdown().await;

    let (server, addr) = start(
        ConnLimits {
            max_per_address: 2,
            ..limits()
        },
        1_000_000,
    )
    .await;
    for _ in 0..2 {
        open_polling(addr).await;
    }
    assert_eq!(http(addr, "GET", POLLING, b"").await.0, 503);
    // Another address is not affected.
    let mut s = connect_from("127.0.0.2", addr).await;
    let req = format!("GET {POLLING} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let answer = closed_within(&mut s, Duration::from_secs(2))
        .await
        .expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.shutdown().await;
}

/// Out of file descriptors: `accept` fails for every newcomer. The server retries with backoff
/// and logs it once with a count (not a line every 50 ms), and serves again once descriptors
/// are free. The conformance server has no connection limit low enough to prevent it.
#[test]
fn accept_errors_back_off_with_one_log_line_and_the_server_recovers() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let (mut server, url) = server_support::start_conformance_server_with(|cmd| {
        cmd.env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped());
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::resource::{Resource, setrlimit};
                setrlimit(Resource::RLIMIT_NOFILE, 48, 48).map_err(std::io::Error::from)
            });
        }
    });
    let stderr = server.stderr.take().expect("piped stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    std::thread::spawn({
        let lines = lines.clone();
        move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        }
    });
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("address");
    let held: Vec<_> = (0..100)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let accept_lines = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("accept:"))
            .cloned()
            .collect()
    };
    let logged = accept_lines(&lines.lock().expect("lines"));
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(logged[0].contains("Too many open files"), "{logged:#?}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let served = loop {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (status, _) = rt.block_on(http(
            addr,
            "GET",
            "/engine.io/?EIO=4&transport=polling",
            b"",
        ));
        if status == 200 || Instant::now() > deadline {
            break status;
        }
    };
    assert_eq!(served, 200);
}
