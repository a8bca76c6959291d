//! Bad input: each hostile request gets the protocol's error answer or the close of that one
//! connection, and two witness connections (one WebSocket, one polling) keep working.

mod process_support;
mod server_support;

use server_support::raw::{Frame, RawWs, http, open_polling, upgrade_request};
use sioedge::server::Server;
use std::net::SocketAddr;
use std::time::Duration;

const MAX_PAYLOAD: usize = 10_000;

async fn start() -> (Server, SocketAddr) {
    let builder = Server::builder()
        .max_payload(MAX_PAYLOAD)
        .ping_interval(Duration::from_secs(20))
        .ping_timeout(Duration::from_secs(20));
    server_support::serve_echo(builder).await
}

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

fn polling(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

/// A WebSocket that joined `/`.
async fn joined_ws(addr: SocketAddr) -> RawWs {
    let mut ws = RawWs::connect(addr, WS).await.expect("upgrade");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    ws.text("40").await;
    assert!(matches!(ws.recv_data().await, Some(Frame::Text(t)) if t.starts_with("40{")));
    ws
}

async fn ws_echo(ws: &mut RawWs, word: &str) {
    ws.text(&format!(r#"42["message","{word}"]"#)).await;
    assert_eq!(
        ws.recv_data().await,
        Some(Frame::Text(format!(r#"42["message-back","{word}"]"#)))
    );
}

/// A polling session that joined `/`.
async fn joined_polling(addr: SocketAddr) -> String {
    let sid = open_polling(addr).await;
    assert_eq!(
        http(addr, "POST", &polling(&sid), b"40").await,
        (200, b"ok".to_vec())
    );
    let (status, body) = http(addr, "GET", &polling(&sid), b"").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(b"40{"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    sid
}

async fn polling_echo(addr: SocketAddr, sid: &str, word: &str) {
    let msg = format!(r#"42["message","{word}"]"#);
    assert_eq!(
        http(addr, "POST", &polling(sid), msg.as_bytes()).await.0,
        200
    );
    let (status, body) = http(addr, "GET", &polling(sid), b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!(r#"42["message-back","{word}"]"#)
    );
}

async fn assert_session_gone(addr: SocketAddr, sid: &str) {
    let (status, body) = http(addr, "GET", &polling(sid), b"").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_the_offending_connection() {
    let (server, addr) = start().await;
    let mut witness_ws = joined_ws(addr).await;
    let witness_poll = joined_polling(addr).await;
    let mut round = 0;
    let mut check_witnesses = async |what: &str| {
        round += 1;
        ws_echo(&mut witness_ws, &format!("ws{round}")).await;
        polling_echo(addr, &witness_poll, &format!("poll{round}")).await;
        eprintln!("witnesses fine after: {what}");
    };

    // Oversized payloads, both transports.
    let sid = open_polling(addr).await;
    let big = format!("4{}", "a".repeat(MAX_PAYLOAD));
    assert_eq!(
        http(addr, "POST", &polling(&sid), big.as_bytes()).await.0,
        413
    );
    assert_session_gone(addr, &sid).await;
    let mut ws = joined_ws(addr).await;
    ws.text(&big).await;
    assert_eq!(ws.expect_closed().await, Some(1009));
    check_witnesses("oversized payloads").await;

    // Malformed Engine.IO packets.
    let sid = open_polling(addr).await;
    assert_eq!(http(addr, "POST", &polling(&sid), b"abc").await.0, 400);
    assert_session_gone(addr, &sid).await;
    let mut ws = joined_ws(addr).await;
    ws.text("abc").await;
    assert_eq!(ws.expect_closed().await, Some(1002));
    check_witnesses("malformed engine.io packets").await;

    // Malformed Socket.IO packets.
    for bad in [
        "4abc",
        "42{}",
        r#"42abc["message",1]"#,
        r#"40{"token":"#,
        r#"42["connect"]"#,
    ] {
        let mut ws = joined_ws(addr).await;
        ws.text(bad).await;
        ws.expect_closed().await;
    }
    let sid = joined_polling(addr).await;
    assert_eq!(http(addr, "POST", &polling(&sid), b"42{}").await.0, 200);
    assert_session_gone(addr, &sid).await;
    check_witnesses("malformed socket.io packets").await;

    // Unknown session ids.
    for method in ["GET", "POST"] {
        let (status, body) = http(addr, method, &polling("nope"), b"40").await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("Session ID unknown"));
    }
    let refused = RawWs::connect(addr, "/socket.io/?EIO=4&transport=websocket&sid=nope").await;
    assert!(refused.is_err_and(|status| status.contains("400")));
    check_witnesses("unknown sids").await;

    // Concurrent polls: the session is closed, the first poll gets a close packet.
    let sid = open_polling(addr).await;
    let first = tokio::spawn({
        let path = polling(&sid);
        async move { http(addr, "GET", &path, b"").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(http(addr, "GET", &polling(&sid), b"").await.0, 400);
    let (status, body) = first.await.expect("first poll");
    assert_eq!((status, body.as_slice()), (200, &b"1"[..]));
    assert_session_gone(addr, &sid).await;
    check_witnesses("concurrent polls").await;

    // Invalid base64 in a polling payload.
    let sid = open_polling(addr).await;
    assert_eq!(http(addr, "POST", &polling(&sid), b"bAQID!!").await.0, 400);
    assert_session_gone(addr, &sid).await;
    check_witnesses("invalid base64").await;

    // Attachment count mismatches.
    let placeholder = r#"451-["message",{"_placeholder":true,"num":0}]"#;
    let mut ws = joined_ws(addr).await;
    ws.text(placeholder).await;
    ws.text(r#"42["message","text instead of the attachment"]"#)
        .await;
    ws.expect_closed().await;
    let mut ws = joined_ws(addr).await;
    ws.text(r#"451-["message",{"_placeholder":true,"num":3}]"#)
        .await;
    ws.expect_closed().await;
    let mut ws = joined_ws(addr).await;
    ws.binary(&[1, 2, 3]).await;
    ws.expect_closed().await;
    let mut ws = joined_ws(addr).await;
    ws.text(r#"45999-["message"]"#).await;
    ws.expect_closed().await;
    let sid = joined_polling(addr).await;
    let body = format!("{placeholder}\x1e42[\"message\",\"x\"]");
    http(addr, "POST", &polling(&sid), body.as_bytes()).await;
    assert_session_gone(addr, &sid).await;
    check_witnesses("attachment count mismatches").await;

    // WebSocket framing violations: unmasked frame, invalid UTF-8 text.
    let mut ws = joined_ws(addr).await;
    ws.send_raw(&[0x81, 0x02, b'4', b'2']).await;
    assert_eq!(ws.expect_closed().await, Some(1002));
    let mut ws = joined_ws(addr).await;
    ws.send_frame(0x1, &[b'4', 0xff, 0xfe]).await;
    assert_eq!(ws.expect_closed().await, Some(1007));
    check_witnesses("websocket framing violations").await;

    // Only the witnesses are left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.connections() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} sessions left",
            server.connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// RFC 6455 §4.2.1: an upgrade that is not a WebSocket opening handshake gets 400, another
/// version 426 with the version we speak (§4.4); what browsers send passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_outside_rfc_6455_are_refused() {
    let (server, addr) = start().await;
    /// Method, headers replaced (an empty value drops one), status expected.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 12] = [
        ("POST", &[], "400"),
        ("PUT", &[], "400"),
        ("GET", &[("Sec-WebSocket-Key", "x")], "400"),
        ("GET", &[("Sec-WebSocket-Key", "")], "400"),
        // 15 and 20 bytes
        (
            "GET",
            &[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA")],
            "400",
        ),
        (
            "GET",
            &[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")],
            "400",
        ),
        ("GET", &[("Connection", "")], "400"),
        ("GET", &[("Connection", "keep-alive")], "400"),
        ("GET", &[("Upgrade", "")], "400"),
        ("GET", &[("Upgrade", "h2c")], "400"),
        ("GET", &[("Sec-WebSocket-Version", "8")], "426"),
        ("GET", &[("Sec-WebSocket-Version", "")], "426"),
    ];
    for (method, replace, status) in cases {
        let head = RawWs::upgrade(addr, &upgrade_request(method, WS, addr, replace))
            .await
            .err()
            .unwrap_or_else(|| panic!("{method} {replace:?} upgraded"));
        let status_line = head.lines().next().unwrap_or_default();
        assert!(
            status_line.starts_with(&format!("HTTP/1.1 {status}")),
            "{method} {replace:?}: {head}"
        );
        if status == "426" {
            assert!(
                head.to_ascii_lowercase()
                    .contains("\r\nsec-websocket-version: 13\r\n"),
                "{head}"
            );
        }
    }
    let browser_like = [
        ("Connection", "keep-alive, Upgrade"),
        ("Upgrade", "WebSocket"),
    ];
    let mut ws = RawWs::upgrade(addr, &upgrade_request("GET", WS, addr, &browser_like))
        .await
        .expect("a token list and another case are fine");
    assert!(matches!(ws.recv().await, Some(Frame::Text(t)) if t.starts_with("0{")));
    server.shutdown().await;
}

/// RFC 6455 §7.4: a close frame with a code a peer may not send fails the connection with
/// 1002; a valid one is answered with a normal close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frames_with_invalid_codes_fail_the_connection_with_1002() {
    let (server, addr) = start().await;
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut ws = joined_ws(addr).await;
        ws.send_frame(0x8, &code.to_be_bytes()).await;
        assert_eq!(ws.expect_closed().await, Some(1002), "close code {code}");
    }
    for code in [1000u16, 1001, 1003, 1008, 1013, 3000, 4999] {
        let mut ws = joined_ws(addr).await;
        ws.send_frame(0x8, &code.to_be_bytes()).await;
        assert_eq!(ws.expect_closed().await, Some(1000), "close code {code}");
    }
    let mut ws = joined_ws(addr).await;
    ws.send_frame(0x8, b"\x03\xe8\xff\xfe").await;
    assert_eq!(ws.expect_closed().await, Some(1007), "reason not UTF-8");
    server.shutdown().await;
}

/// A client that lets its bounded queue overflow learns why from the close frame: 1008
/// (policy violation) with a reason, not 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_overflowing_its_queue_is_closed_with_1008_and_a_reason() {
    let server = Server::builder().queue_bounds(4, 1 << 20).build();
    server.of("/").on_connect(|socket, _auth| {
        socket.on("flood", |s, _, _| {
            for i in 0..50 {
                let _ = s.emit("n", vec![sioedge::socketio::Arg::Json(i.into())]);
            }
        });
        Ok(())
    });
    let (addr, _) = server_support::serve(&server).await;
    let mut ws = joined_ws(addr).await;
    ws.text(r#"42["flood"]"#).await;
    let (code, reason) = ws.expect_close_frame().await.expect("a close frame");
    assert_eq!(code, Some(1008), "{reason}");
    assert!(reason.contains("queue overflow"), "{reason}");
    server.shutdown().await;
}

/// A second WebSocket with the sid of a session that has upgraded: as the reference server,
/// its handshake completes, then only it is closed; the first WebSocket keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_websocket_after_the_upgrade_is_accepted_then_closed_alone() {
    let (server, addr) = start().await;
    let sid = joined_polling(addr).await;
    let path = format!("{WS}&sid={sid}");
    let mut ws = RawWs::connect(addr, &path).await.expect("upgrade");
    ws.text("2probe").await;
    assert_eq!(ws.recv().await, Some(Frame::Text("3probe".into())));
    ws.text("5").await;
    ws_echo(&mut ws, "upgraded").await;
    for _ in 0..2 {
        let mut second = RawWs::connect(addr, &path)
            .await
            .expect("the handshake completes");
        assert_eq!(
            second.expect_close_frame().await,
            Some((None, String::new())),
            "closed without a status"
        );
        ws_echo(&mut ws, "still here").await;
    }
    assert_eq!(server.connections(), 1);
    server.shutdown().await;
}
