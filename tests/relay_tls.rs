//! `[relay_server.tls]`: `sioedge relay` serving wss directly with a certificate and key from
//! files. A gateway publishes to it over wss trusting that certificate (`[relay.tls] ca_file`),
//! and viewers written with the official Node `socket.io-client` (given the certificate as `ca`)
//! receive the frames; without it they are refused by their own certificate check.

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Gateway, Peer, https_get, test_config};
use relay_support::{Relay, relay_config};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (10 s) until the relay's `/api/status` (over verified HTTPS) lists `stream`.
fn wait_listed(relay: &Relay, ca: &Path, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = https_get(relay.addr, Some(ca), "/api/status").unwrap_or_default();
        let body = status.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json: Value = serde_json::from_str(body).unwrap_or_default();
        let listed = json["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["stream"] == stream);
        if listed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "relay does not list {stream} within 10 s: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn gateway_publishes_over_wss_and_node_viewers_receive_over_wss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("relay.crt"), dir.path().join("relay.key"));
    // A pair for 127.0.0.1 made beforehand: the relay is given plain cert and key files.
    sioedge::server::TlsConfig::load_or_generate(&cert, &key).expect("certificate for the relay");
    let relay = Relay::start(&format!(
        "{}[relay_server.tls]\ncert = {:?}\nkey = {:?}\n",
        relay_config(&[("test-gw", "gw-token")], None),
        cert.display().to_string(),
        key.display().to_string()
    ));
    let url = relay.url();
    assert!(url.starts_with("https://"), "relay printed {url}");

    let wss = url.replacen("https://", "wss://", 1);
    let _gw = Gateway::start(&test_config(
        "",
        &format!(
            "[[relay]]\nurl = {wss:?}\nnamespace = \"/publish\"\ntoken = \"gw-token\"\n\
             [relay.tls]\nca_file = {:?}\n",
            cert.display().to_string()
        ),
    ));
    wait_listed(&relay, &cert, "test-gw/cam0");

    let cert_arg = cert.display().to_string();
    let mut viewers = Peer::node(
        "relay/node_viewer.js",
        &[
            "--url",
            &url,
            "--stream",
            "test-gw/cam0",
            "--clients",
            "3",
            "--seconds",
            "3",
            "--ca",
            &cert_arg,
        ],
    );
    viewers.wait_for("done", Duration::from_secs(20));
    assert!(
        viewers.all("connect_error").is_empty(),
        "{:?}",
        viewers.seen
    );
    let mut video: BTreeMap<u64, Vec<(u64, bool)>> = BTreeMap::new();
    for m in viewers.all("media") {
        if m["track"] == "video" {
            let client = m["client"].as_u64().expect("client");
            let frame = (m["seq"].as_u64().expect("seq"), m["key"] == true);
            video.entry(client).or_default().push(frame);
        }
    }
    assert_eq!(video.len(), 3, "every viewer got video: {:?}", video.keys());
    for (client, frames) in &video {
        assert!(
            frames.len() >= 45,
            "viewer {client}: {} video frames in 3 s",
            frames.len()
        );
        assert!(frames[0].1, "viewer {client} starts on a keyframe");
        assert!(
            frames.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            "viewer {client}: video seq in order without gaps"
        );
    }
    eprintln!(
        "relay_tls: video frames per wss viewer {:?}",
        video.values().map(Vec::len).collect::<Vec<_>>()
    );

    // The same viewer without the certificate: its own TLS check refuses the relay.
    let mut untrusting = Peer::node(
        "relay/node_viewer.js",
        &["--url", &url, "--stream", "test-gw/cam0", "--seconds", "2"],
    );
    let refused = untrusting.wait_for("connect_error", Duration::from_secs(10));
    assert_eq!(refused["cause"], "self-signed certificate", "{refused}");
    assert!(untrusting.all("media").is_empty());
    eprintln!("without the certificate: {refused}");
}
