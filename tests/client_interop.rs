//! The publisher client against real relays started by the tests: python-socketio on aiohttp,
//! python-socketio on Tornado and Node socket.io v4, with each transports setting.

mod client_common;
mod process_support;

use client_common::*;
use serde_json::json;
use sioedge::client::{Client, ClientError, ClientEvent};
use sioedge::config::Transport;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// The whole matrix for one relay kind: each transports setting, both namespaces, auth, binary
/// events both ways, acks both ways.
async fn matrix(kind: Kind) {
    let port = free_port();
    let mut relay = Relay::start(kind, port, &["--token", "s3cret"]);
    let settings: [&[Transport]; 3] = [
        &[Transport::Websocket],
        &[Transport::Polling],
        &[Transport::Polling, Transport::Websocket],
    ];
    for transports in settings {
        let what = format!("{kind:?} {transports:?}");
        let (client, mut events) = Client::connect(options(port, transports, "s3cret")).unwrap();
        assert!(
            connected(&mut events, "/", T).await,
            "{what}: / not connected"
        );
        assert!(
            connected(&mut events, "/admin", T).await,
            "{what}: /admin not connected"
        );
        let c = relay
            .wait_for(T, |v| v["ev"] == "connect" && v["ns"] == "/")
            .unwrap_or_else(|| panic!("{what}: relay saw no connect"));
        assert_eq!(
            c["auth"],
            json!({ "token": "s3cret", "device": "pi" }),
            "{what}"
        );
        let q = c["query"].as_str().unwrap_or_default();
        assert!(
            q.contains("from=url") && q.contains("device=pi"),
            "{what}: query {q}"
        );
        assert_eq!(c["header"], "hello", "{what}");
        let expected_first = if transports[0] == Transport::Websocket {
            "websocket"
        } else {
            "polling"
        };
        assert_eq!(c["transport"], expected_first, "{what}");

        for ns in ["/", "/admin"] {
            exchange(&client, &mut events, ns, &what).await;
        }

        if transports.len() == 2 {
            assert_upgraded(&client, &what).await;
        }
        let stats = client.stats();
        assert!(stats.sent >= 6, "{what}: {stats:?}");
        assert_eq!(stats.reconnects, 0, "{what}: {stats:?}");
        close(&client).await;
        relay
            .wait_for(T, |v| v["ev"] == "disconnect")
            .unwrap_or_else(|| panic!("{what}: relay saw no disconnect after close"));
    }
}

/// A wrong token: CONNECT_ERROR with the relay's message, retried with backoff, not hot-looped.
async fn rejected(kind: Kind) {
    let port = free_port();
    let mut relay = Relay::start(kind, port, &["--token", "s3cret"]);
    let mut o = options(port, &[Transport::Websocket], "wrong");
    o.extra_namespaces.clear();
    o.reconnection.delay = Duration::from_secs_f64(0.5).into();
    o.reconnection.max_delay = Duration::from_secs_f64(1.0).into();
    let (client, mut events) = Client::connect(o).unwrap();
    let ev = next_event(&mut events, T, |e| {
        matches!(e, ClientEvent::ConnectError { .. })
    })
    .await
    .expect("no ConnectError event");
    let ClientEvent::ConnectError {
        namespace, message, ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(namespace, "/");
    assert_eq!(message, "bad token", "{kind:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = client.stats();
    close(&client).await;
    let refusals = relay
        .drain()
        .iter()
        .filter(|v| v["ev"] == "refused")
        .count();
    // 0.5 s, then 1 s (±50 %, capped at 1 s): 2 to 5 attempts in 2.5 s — a hot loop makes hundreds.
    assert!(
        (2..=6).contains(&refusals),
        "{kind:?}: {refusals} attempts in 2.5 s"
    );
    let err = stats.last_error.unwrap_or_default();
    assert!(err.contains("bad token"), "{kind:?}: last_error {err:?}");
    assert!(!client.is_connected("/"));
    let e = client.emit("/", "x", vec![]).unwrap_err();
    assert!(matches!(e, ClientError::NotConnected(_)), "{e}");
}

/// The auth provider is asked again at every attempt: a token fixed between attempts (as a
/// rotated token file would be) is picked up by the next reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_is_rebuilt_at_every_attempt() {
    let port = free_port();
    let mut relay = Relay::start(Kind::Aiohttp, port, &["--token", "s3cret"]);
    let mut o = options(port, &[Transport::Websocket], "ignored");
    o.extra_namespaces.clear();
    o.reconnection.delay = Duration::from_secs_f64(0.2).into();
    o.reconnection.max_delay = Duration::from_secs_f64(0.4).into();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let provider: sioedge::client::AuthProvider = std::sync::Arc::new(move |ns: &str| {
        assert_eq!(ns, "/");
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(json!({ "token": if n < 2 { "old" } else { "s3cret" } }))
    });
    let (client, mut events) = Client::connect_with_auth(o, Some(provider)).unwrap();
    assert!(
        connected(&mut events, "/", T).await,
        "never connected with the new token"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(
        relay
            .drain()
            .iter()
            .filter(|v| v["ev"] == "refused")
            .count(),
        2
    );
    assert_eq!(client.stats().state, sioedge::client::ConnState::Connected);
    close(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_interop_python_aiohttp() {
    matrix(Kind::Aiohttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_interop_python_tornado() {
    matrix(Kind::Tornado).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_interop_node() {
    matrix(Kind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_rejected_python_aiohttp() {
    rejected(Kind::Aiohttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_rejected_python_tornado() {
    rejected(Kind::Tornado).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_rejected_node() {
    rejected(Kind::Node).await;
}
