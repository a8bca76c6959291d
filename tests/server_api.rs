//! The server's Rust API and HTTP hooks: slow-consumer policy, clean shutdown, static assets,
//! extra routes and CORS.

mod process_support;
mod server_support;

use bytes::Bytes;
use server_support::raw::{Frame, RawWs, http};
use server_support::serve;
use sioedge::queue::Class;
use sioedge::server::{Cors, EmitError, Server, Socket};
use sioedge::socketio::Arg;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn joined_ws(addr: SocketAddr) -> RawWs {
    let mut ws = RawWs::connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    ws.text("40").await;
    assert!(matches!(ws.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    ws
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_keep_up_loses_media_then_is_disconnected_on_control_overflow() {
    let server = Server::builder()
        .queue_bounds(16, 1 << 20)
        .ping_interval(Duration::from_secs(30))
        .build();
    let sockets: Arc<Mutex<Vec<Socket>>> = Arc::default();
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (sockets, reasons) = (sockets.clone(), reasons.clone());
        server.of("/").on_connect(move |s, _| {
            sockets.lock().unwrap().push(s.clone());
            let reasons = reasons.clone();
            s.on_disconnect(move |_, r| reasons.lock().unwrap().push(r.as_str().to_owned()));
            Ok(())
        });
    }
    let (addr, _) = serve(&server).await;
    let mut fast = joined_ws(addr).await;
    let _slow = joined_ws(addr).await; // never reads again
    let slow_sid = wait_for("two sockets", || {
        let s = sockets.lock().unwrap();
        (s.len() == 2).then(|| s[1].clone())
    })
    .await;
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    // Media for the slow client only: once its socket buffers and queue are full, frames drop.
    let mut dropped = 0;
    for _ in 0..2000 {
        match slow_sid.emit_class("frame", vec![Arg::Binary(payload.clone())], Class::Volatile) {
            Ok(()) => {}
            Err(EmitError::Dropped) => dropped += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        if dropped > 10 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(dropped > 10, "volatile frames were never dropped");
    assert!(slow_sid.connected(), "dropping media must not disconnect");
    // The fast client is unaffected.
    let ns = server.of("/");
    ns.to(sockets.lock().unwrap()[0].id())
        .emit("hello", vec![Arg::Json("fast".into())]);
    assert_eq!(
        fast.recv_data().await,
        Some(Frame::Text(r#"42["hello","fast"]"#.into()))
    );
    // Control packets must be delivered: when they cannot be, the client is disconnected.
    let mut overflowed = false;
    for _ in 0..100 {
        if slow_sid.emit("control", vec![Arg::Binary(payload.clone())]) == Err(EmitError::Overflow)
        {
            overflowed = true;
            break;
        }
    }
    assert!(overflowed);
    wait_for("disconnect reason", || {
        reasons.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(reasons.lock().unwrap().as_slice(), ["forced server close"]);
    ws_echo_still_works(&mut fast, &ns).await;
    server.shutdown().await;
}

async fn ws_echo_still_works(ws: &mut RawWs, ns: &sioedge::server::Namespace) {
    assert_eq!(ns.emit("still", vec![]), 1);
    assert_eq!(
        ws.recv_data().await,
        Some(Frame::Text(r#"42["still"]"#.into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_websockets_and_polls_within_the_grace() {
    let server = Server::builder()
        .shutdown_grace(Duration::from_secs(2))
        .build();
    server.of("/");
    let (addr, _) = serve(&server).await;
    let mut ws = joined_ws(addr).await;
    let (_, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    let sid = serde_json::from_slice::<serde_json::Value>(&body[1..]).expect("json")["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let poll = tokio::spawn(async move {
        http(
            addr,
            "GET",
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            b"",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(ws.expect_closed().await, Some(1001));
    assert_eq!(poll.await.expect("poll"), (200, b"1".to_vec()));
    assert_eq!(server.connections(), 0);
    // No longer accepting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    if let Ok(mut s) = refused {
        // The listener may still be in the accept queue; it must not answer.
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(!matches!(n, Ok(Ok(n)) if n > 0), "answered after shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_routes_and_cors() {
    let server = Server::builder()
        .assets(|path| match path {
            "/index.html" => Some((
                "text/html; charset=utf-8",
                Bytes::from_static(b"<h1>hi</h1>"),
            )),
            _ => None,
        })
        .routes(|parts| {
            (parts.uri.path() == "/api/status").then(|| {
                let resp = http::Response::new(http_body_util::Full::new(Bytes::from_static(
                    b"{\"ok\":true}",
                )));
                Box::pin(std::future::ready(resp)) as sioedge::server::RouteFuture
            })
        })
        .cors(Cors {
            allowed_origins: vec!["http://allowed.example".into()],
            credentials: true,
        })
        .build();
    server.of("/");
    let (addr, _) = serve(&server).await;
    assert_eq!(
        http(addr, "GET", "/", b"").await,
        (200, b"<h1>hi</h1>".to_vec())
    );
    assert_eq!(
        http(addr, "GET", "/api/status", b"").await,
        (200, b"{\"ok\":true}".to_vec())
    );
    assert_eq!(http(addr, "GET", "/nope", b"").await.0, 404);

    let raw = |origin: &str, method: &str| {
        format!(
            "{method} /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
        )
    };
    let send = async |req: String| {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("timeout")
            .expect("read");
        String::from_utf8_lossy(&out).to_lowercase()
    };
    let allowed = send(raw("http://allowed.example", "GET")).await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(allowed.contains("access-control-allow-origin: http://allowed.example"));
    assert!(allowed.contains("access-control-allow-credentials: true"));
    let preflight = send(raw("http://allowed.example", "OPTIONS")).await;
    assert!(preflight.starts_with("http/1.1 204"), "{preflight}");
    assert!(preflight.contains("access-control-allow-headers: content-type"));
    let denied = send(raw("http://evil.example", "GET")).await;
    assert!(denied.starts_with("http/1.1 403"), "{denied}");
    let same_origin = send(raw(&format!("http://{addr}"), "GET")).await;
    assert!(same_origin.starts_with("http/1.1 200"), "{same_origin}");
    assert!(!same_origin.contains("access-control-allow-origin"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_forget_a_socket_that_left_and_a_late_join_is_ignored() {
    let server = Server::builder().build();
    let ns = server.of("/");
    let kept: Arc<Mutex<Option<Socket>>> = Arc::default();
    let k = kept.clone();
    ns.on_connect(move |socket, _| {
        socket.join("r");
        *k.lock().expect("lock") = Some(socket.clone());
        Ok(())
    });
    let (addr, _) = serve(&server).await;
    let ws = joined_ws(addr).await;
    wait_for("member of r", || {
        (ns.room_members("r").len() == 1).then_some(())
    })
    .await;
    assert_eq!(ns.to("r").sockets().len(), 1);

    drop(ws);
    wait_for("r emptied", || {
        ns.room_members("r").is_empty().then_some(())
    })
    .await;
    assert!(ns.to("r").sockets().is_empty());
    assert!(ns.sockets().is_empty());
    // A handler that still holds the socket cannot put it back into a room.
    let socket = kept.lock().expect("lock").take().expect("socket");
    socket.join("late");
    assert!(ns.room_members("late").is_empty());
    assert!(ns.to("late").sockets().is_empty());
}

/// A frame payload: its sequence number, then bytes that depend on it and their position.
fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((4..len).map(|i| ((seq as usize * 7 + i) % 251) as u8));
    p
}

/// Reads `n` frame events and checks each is whole and in sequence.
async fn expect_numbered(ws: &mut RawWs, n: u32, len: usize, who: &str) {
    for seq in 0..n {
        let header = ws.recv_data().await;
        assert_eq!(
            header,
            Some(Frame::Text(
                r#"451-["frame",{"_placeholder":true,"num":0}]"#.into()
            )),
            "{who}: header of frame {seq}"
        );
        match ws.recv_data().await {
            Some(Frame::Binary(b)) => assert!(b == numbered(seq, len), "{who}: frame {seq}"),
            other => panic!("{who}: frame {seq} is {other:?}"),
        }
    }
}

async fn joined_as(addr: SocketAddr, role: &str) -> RawWs {
    let mut ws = RawWs::connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    ws.text(&format!(r#"40{{"role":"{role}"}}"#)).await;
    assert!(matches!(ws.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    ws
}

/// A server whose `viewer`s join room `viewers` and whose publishers' `frame` events are re-emitted
/// to that room (as control packets: never dropped).
fn frame_relay() -> Server {
    let server = Server::builder()
        .ping_interval(Duration::from_secs(30))
        .build();
    server.of("/").on_connect(|s, auth| {
        match auth.get("role").and_then(|r| r.as_str()) {
            Some("viewer") => s.join("viewers"),
            _ => s.on("frame", |s, args, _| {
                let ns = s.namespace();
                let packet = ns.encode_event("frame", args);
                ns.to("viewers").emit_shared(packet, Class::Control);
            }),
        }
        Ok(())
    });
    server
}

/// Sends `frames` numbered frames of `len` bytes from a publisher, as one burst (its reader
/// corks: each viewer gets them in gathered writes).
async fn publish_burst(addr: SocketAddr, frames: u32, len: usize) -> RawWs {
    let mut publisher = joined_as(addr, "publisher").await;
    for seq in 0..frames {
        publisher
            .text(r#"451-["frame",{"_placeholder":true,"num":0}]"#)
            .await;
        publisher.binary(&numbered(seq, len)).await;
    }
    publisher
}

/// Frames reach a plain-TCP viewer by a direct write while its writer task is idle, and through
/// the writer task once its socket is full; a publisher's burst is written in batches (corked).
/// Switching between the paths, mid-frame included, must keep every byte in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_pauses_gets_every_frame_whole_and_in_order() {
    const FRAMES: u32 = 300;
    const LEN: usize = 6000;
    let server = frame_relay();
    let ns = server.of("/");
    let (addr, _) = serve(&server).await;
    let mut reading = joined_as(addr, "viewer").await;
    let mut paused = joined_as(addr, "viewer").await;
    wait_for("two viewers", || {
        (ns.room_members("viewers").len() == 2).then_some(())
    })
    .await;

    // From the application (uncorked): the paused viewer's socket fills up on the way
    // (300 x 6 KB is far more than a loopback socket takes while nobody reads).
    let emit = |seq| {
        let arg = Arg::Binary(Bytes::from(numbered(seq, LEN)));
        let packet = ns.encode_event("frame", vec![arg]);
        ns.to("viewers").emit_shared(packet, Class::Control);
    };
    for seq in 0..FRAMES {
        emit(seq);
    }
    expect_numbered(&mut reading, FRAMES, LEN, "reading viewer, direct").await;
    expect_numbered(&mut paused, FRAMES, LEN, "paused viewer, direct").await;

    // From a publisher's reader (corked), sent as one burst.
    let _publisher = publish_burst(addr, FRAMES, LEN).await;
    expect_numbered(&mut reading, FRAMES, LEN, "reading viewer, corked").await;
    expect_numbered(&mut paused, FRAMES, LEN, "paused viewer, corked").await;
}

/// A publisher's burst reaches each viewer in vectored writes of up to 1 MiB gathered from its
/// queue in place. A viewer whose small socket takes a few KB of such a write, cutting a frame in
/// two, must get the rest of that frame first, then the frames still queued, each whole and in
/// order, with no frame lost or sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gathered_write_cut_mid_frame_by_a_small_socket_is_finished_in_order() {
    const FRAMES: u32 = 200;
    const LEN: usize = 10_007;
    let server = frame_relay();
    let ns = server.of("/");
    let (addr, _) = serve(&server).await;
    let mut small = RawWs::connect_small(addr, "/socket.io/?EIO=4&transport=websocket", 4096)
        .await
        .expect("upgrade");
    assert!(matches!(small.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    small.text(r#"40{"role":"viewer"}"#).await;
    assert!(matches!(small.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    wait_for("the viewer", || {
        (ns.room_members("viewers").len() == 1).then_some(())
    })
    .await;
    // Not read until the whole burst (2 MB) is sent: the viewer's socket is full long before.
    let _publisher = publish_burst(addr, FRAMES, LEN).await;
    expect_numbered(&mut small, FRAMES, LEN, "small viewer").await;
}

/// Video frames a full socket did not take stay in the viewer's queue, under the drop policy: a
/// viewer that stops reading loses whole GOPs and, once it reads again, gets frames in order that
/// resume at a keyframe after every gap, up to the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_loses_whole_gops_and_resumes_at_a_keyframe() {
    const FRAMES: u32 = 400;
    const GOP: u32 = 20;
    const LEN: usize = 8000;
    let server = Server::builder()
        .queue_bounds(32, 8 << 20)
        .ping_interval(Duration::from_secs(30))
        .build();
    let ns = server.of("/");
    ns.on_connect(|s, _| {
        s.join("viewers");
        Ok(())
    });
    let (addr, _) = serve(&server).await;
    let mut ws = RawWs::connect_small(addr, "/socket.io/?EIO=4&transport=websocket", 4096)
        .await
        .expect("upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    ws.text("40").await;
    assert!(matches!(ws.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    wait_for("the viewer", || {
        (ns.room_members("viewers").len() == 1).then_some(())
    })
    .await;
    let track: Arc<str> = "cam0/video".into();
    for seq in 0..FRAMES {
        let packet = ns.encode_event("frame", vec![Arg::Binary(numbered(seq, LEN).into())]);
        let key = seq % GOP == 0;
        let class = Class::Video {
            track: track.clone(),
            key,
        };
        ns.to("viewers").emit_shared(packet, class);
    }
    ns.to("viewers").emit("end", vec![]);
    let mut got = Vec::new();
    loop {
        match ws.recv_data().await {
            Some(Frame::Text(t)) if t == r#"42["end"]"# => break,
            Some(Frame::Text(t)) => assert_eq!(t, r#"451-["frame",{"_placeholder":true,"num":0}]"#),
            Some(Frame::Binary(b)) => {
                let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                assert!(b == numbered(seq, LEN), "frame {seq} is not whole");
                got.push(seq);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got.first(), Some(&0));
    assert_eq!(got.last(), Some(&(FRAMES - 1)), "the newest frame arrives");
    assert!(
        got.len() < FRAMES as usize,
        "a stalled viewer must lose frames"
    );
    for pair in got.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        assert!(next > prev, "{next} after {prev}: reordered or sent twice");
        assert!(
            next == prev + 1 || next % GOP == 0,
            "after {prev} came {next}: a gap must end at a keyframe"
        );
    }
}
