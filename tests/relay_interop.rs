//! `sioedge relay` between foreign peers: a python-socketio publisher sending the contract
//! (tests/peers/relay/py_publisher.py, fake H.264-like frames, keyframe every 10th) and viewers
//! written with the official Node `socket.io-client` (tests/peers/relay/node_viewer.js), which
//! must receive the frames byte-exact, in order, from a keyframe.

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Peer, Viewer};
use relay_support::{Relay, relay_config};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Runs the Node viewers to completion (bounded by `timeout`) and returns their JSON lines.
fn node_viewers(
    url: &str,
    stream: &str,
    clients: usize,
    seconds: u32,
    timeout: Duration,
) -> Vec<Value> {
    let (clients, seconds) = (clients.to_string(), seconds.to_string());
    let mut viewers = Peer::node(
        "relay/node_viewer.js",
        &[
            "--url",
            url,
            "--stream",
            stream,
            "--clients",
            &clients,
            "--seconds",
            &seconds,
        ],
    );
    viewers.wait_for("done", timeout);
    std::mem::take(&mut viewers.seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_publisher_reaches_node_socket_io_client_viewers_byte_exact() {
    let relay = Relay::start(&relay_config(&[("pi1", "tok")], None));
    let mut publisher = Peer::python(
        "relay/py_publisher.py",
        &[
            "--url",
            &relay.url(),
            "--token",
            "tok",
            "--device",
            "pi1",
            "--frames",
            "240",
        ],
    );
    publisher.wait_for("connected", Duration::from_secs(10));
    // Wait until the relay lists the stream under <device>/<stream>.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut v = Viewer::connect(relay.addr).await;
        let ack = v.call("streams", Value::Null).await;
        if ack
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["stream"] == "pi1/cam0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "pi1/cam0 not listed: {ack}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let clients = 3;
    let url = relay.url();
    let lines = tokio::task::spawn_blocking(move || {
        node_viewers(&url, "pi1/cam0", clients, 3, Duration::from_secs(20))
    })
    .await
    .expect("node viewers");
    publisher.wait_for("done", Duration::from_secs(15));
    let sent: HashMap<u64, (bool, String)> = publisher
        .all("sent")
        .iter()
        .map(|s| {
            let seq = s["seq"].as_u64().expect("seq");
            (
                seq,
                (
                    s["key"] == true,
                    s["sha1"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect();
    for c in 0..clients {
        let watching = lines
            .iter()
            .find(|l| l["ev"] == "watching" && l["client"] == c)
            .unwrap_or_else(|| panic!("client {c} never watched: {lines:?}"));
        assert!(watching["err"].is_null(), "{watching}");
        assert_eq!(watching["ack"]["stream"], "pi1/cam0", "{watching}");
        let media: Vec<&Value> = lines
            .iter()
            .filter(|l| l["ev"] == "media" && l["client"] == c)
            .collect();
        assert!(media.len() >= 40, "client {c} got {} frames", media.len());
        assert_eq!(media[0]["key"], true, "client {c} starts at a keyframe");
        let mut prev: Option<u64> = None;
        for m in &media {
            let seq = m["seq"].as_u64().expect("seq");
            if let Some(p) = prev {
                assert_eq!(seq, p + 1, "client {c}: seq {p} then {seq}");
            }
            prev = Some(seq);
            let (key, sha1) = sent
                .get(&seq)
                .unwrap_or_else(|| panic!("seq {seq} never sent"));
            assert_eq!(m["key"] == true, *key, "client {c} seq {seq} key flag");
            assert_eq!(
                m["sha1"].as_str(),
                Some(sha1.as_str()),
                "client {c} seq {seq} bytes"
            );
        }
        eprintln!(
            "relay_interop: node client {c} got {} byte-exact frames, seq {}..={}",
            media.len(),
            media[0]["seq"],
            prev.unwrap_or(0)
        );
    }
}
