//! `sioedge relay` on one node: a real gateway (`sioedge run`, test sources) publishes through it
//! to 50 python-socketio viewers that each get every video frame in order from a keyframe; a
//! publisher with a wrong or missing token gets CONNECT_ERROR; a viewer cannot publish.
#![cfg(feature = "media")]

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Gateway, Peer, Viewer, percentile, test_config};
use relay_support::{Relay, relay_config};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The stream ids the relay lists to a viewer on "/".
async fn listed(relay: &Relay) -> Vec<String> {
    let mut v = Viewer::connect(relay.addr).await;
    let ack = v.call("streams", Value::Null).await;
    ack.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["stream"].as_str().map(str::to_owned))
        .collect()
}

/// Waits (10 s) until the relay lists `stream`.
async fn wait_listed(relay: &Relay, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = listed(relay).await;
        if got.iter().any(|s| s == stream) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "relay does not list {stream} within 10 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_through_the_relay_reaches_50_viewers_with_every_frame_in_order() {
    let relay = Relay::start(&relay_config(&[("test-gw", "gw-token")], None));
    let gw_relay = format!(
        "[[relay]]\nurl = \"{}\"\nnamespace = \"/publish\"\ntoken = \"gw-token\"\n",
        relay.url()
    );
    let _gw = Gateway::start(&test_config("", &gw_relay));
    wait_listed(&relay, "test-gw/cam0").await;

    let clients = 50;
    let mut viewers = Peer::python(
        "relay/py_viewers.py",
        &[
            "--urls",
            &relay.url(),
            "--stream",
            "test-gw/cam0",
            "--clients",
            &clients.to_string(),
            "--seconds",
            "4",
        ],
    );
    viewers.wait_for("done", Duration::from_secs(30));
    let summaries = viewers.all("client");
    assert_eq!(summaries.len(), clients, "one summary per client");
    let mut frames: Vec<i64> = Vec::new();
    for s in &summaries {
        assert_eq!(s["first_key"], true, "first video frame is a keyframe: {s}");
        assert_eq!(s["gaps"], 0, "no video seq gaps: {s}");
        assert_eq!(s["sessions"], 1, "never disconnected: {s}");
        let n = s["frames"].as_i64().unwrap_or(0);
        assert!(n >= 30, "a viewer got only {n} video frames: {s}");
        frames.push(n);
    }
    let mut ttff: Vec<i64> = viewers
        .all("first")
        .iter()
        .map(|f| f["ms"].as_f64().unwrap_or(0.0) as i64)
        .collect();
    let total: i64 = frames.iter().sum();
    eprintln!(
        "relay_node: {clients} viewers, video frames per viewer min {} max {} total {total}; \
         watch→first frame p50 {} ms max {} ms",
        frames.iter().min().unwrap_or(&0),
        frames.iter().max().unwrap_or(&0),
        percentile(&mut ttff, 50.0),
        percentile(&mut ttff, 100.0),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_with_a_wrong_or_missing_token_gets_connect_error() {
    let relay = Relay::start(&relay_config(&[("pi1", "right")], None));
    for token in ["wrong", ""] {
        let mut p = Peer::python(
            "relay/py_publisher.py",
            &["--url", &relay.url(), "--token", token, "--device", "pi1"],
        );
        let err = p.wait_for("connect_error", Duration::from_secs(10));
        let message = err["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "token {token:?}: {err}");
        assert!(
            p.all("connected").is_empty(),
            "token {token:?} was accepted"
        );
        eprintln!("relay_node: token {token:?} rejected with {message:?}");
    }
    // The right token is accepted (so the rejections above are about the token).
    let mut ok = Peer::python(
        "relay/py_publisher.py",
        &[
            "--url",
            &relay.url(),
            "--token",
            "right",
            "--device",
            "pi1",
            "--frames",
            "30",
        ],
    );
    ok.wait_for("connected", Duration::from_secs(10));
    wait_listed(&relay, "pi1/cam0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_emits_announce_and_media_creates_no_stream() {
    let relay = Relay::start(&relay_config(&[("pi1", "tok")], None));
    let before = listed(&relay).await;
    // Same contract, valid token, but on the viewer namespace "/".
    let mut p = Peer::python(
        "relay/py_publisher.py",
        &[
            "--url",
            &relay.url(),
            "--namespace",
            "/",
            "--token",
            "tok",
            "--device",
            "pi1",
            "--frames",
            "20",
        ],
    );
    p.wait_for("connected", Duration::from_secs(10));
    p.wait_for("done", Duration::from_secs(10));
    assert_eq!(
        p.all("sent").len(),
        20,
        "the fake publisher sent its frames"
    );
    let after = listed(&relay).await;
    assert_eq!(before, after, "a viewer's announce/media created a stream");
    assert!(after.is_empty(), "{after:?}");
}
