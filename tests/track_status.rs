//! The event contract's `status`: every track state change reaches everyone attached. A track
//! that comes up after a LAN viewer, a relay or a viewer of `sioedge relay` is already attached
//! (on a camera, audio is up ~20 ms before video, which waits for SPS/PPS) must reach them as
//! `announce` *and* `status` live, exactly once — the same as when they attach afterwards.
//!
//! The gateway here captures `cam0` with a video track held back ~1.5 s by a queue, so every
//! receiver is attached (and has seen the audio-only announce) well before video comes up.
#![cfg(feature = "media")]

mod gateway_support;
mod process_support;
#[path = "peers/relay/support.rs"]
mod relay_support;

use gateway_support::{Ev, Gateway, Peer, Viewer, test_config};
use relay_support::{Relay, relay_config};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `cam0` from the test sources with the video track's first 1.5 s held back, plus `extra`.
fn late_video_config(extra: &str) -> String {
    test_config(
        "pipeline = \"videotestsrc is-live=true ! video/x-raw,framerate=30/1 ! queue min-threshold-time=1500000000 max-size-time=0 max-size-buffers=0 max-size-bytes=0\"",
        extra,
    )
}

fn start_gateway(extra: &str) -> Gateway {
    Gateway::start_with(
        &late_video_config(extra),
        &[("RUST_LOG", "warn")],
        Stdio::inherit(),
    )
}

fn track_names(announce: &Value) -> Vec<&str> {
    announce["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["track"].as_str())
        .collect()
}

/// Watches `stream` on the viewer namespace at `addr` as soon as it is announced (5 s), and checks
/// the test's premise: only audio is up yet.
async fn watch_early(addr: SocketAddr, stream: &str) -> Viewer {
    let mut viewer = Viewer::connect(addr).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ack = viewer.watch(stream).await;
        if ack["error"].is_null() {
            assert_eq!(
                track_names(&ack),
                ["audio"],
                "the viewer must watch before video is up (the test's premise): {ack}"
            );
            return viewer;
        }
        assert!(Instant::now() < deadline, "{stream} not announced: {ack}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads what a viewer that watched while only audio was up gets until video is live (10 s):
/// the announce listing video, then one `status` live for video. Returns the events read.
async fn expect_video_live(viewer: &mut Viewer, who: &str) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while let Some(ev) = viewer.next(deadline).await {
        match ev {
            Ev::Event(name, v) => events.push((name, v)),
            Ev::Media(m) if m.track == "video" => break,
            Ev::Media(_) | Ev::Ack(..) => {}
            Ev::Disconnect => panic!("{who}: disconnected"),
        }
    }
    // Whatever else arrives shortly after the first video frame (a late or duplicate status).
    let settle = Instant::now() + Duration::from_millis(300);
    while let Some(ev) = viewer.next(settle).await {
        if let Ev::Event(name, v) = ev {
            events.push((name, v));
        }
    }
    let with_video = events
        .iter()
        .position(|(n, v)| n == "announce" && track_names(v).contains(&"video"))
        .unwrap_or_else(|| panic!("{who}: no announce with video in {events:?}"));
    let video_live: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (n, v))| n == "status" && v["track"] == "video" && v["state"] == "live")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        video_live.len(),
        1,
        "{who}: one status live for video expected in {events:?}"
    );
    assert!(
        video_live[0] > with_video,
        "{who}: status before the announce: {events:?}"
    );
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_viewer_watching_before_video_is_up_gets_status_live_for_it() {
    let gw = start_gateway("");
    let mut viewer = watch_early(gw.addr, "cam0").await;
    expect_video_live(&mut viewer, "LAN viewer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_relay_attached_before_video_is_up_gets_status_live_for_it() {
    let (mut relay, port) = Peer::python_relay("s3cret");
    let _gw = start_gateway(&format!(
        "[[relay]]\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"s3cret\"\n"
    ));
    relay.wait_for("publisher", Duration::from_secs(10));
    let first = relay.wait_for("announce", Duration::from_secs(10));
    assert_eq!(
        track_names(&first["announce"]),
        ["audio"],
        "the relay must be attached before video is up (the test's premise): {first}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.all("media").iter().all(|m| m["track"] != "video") {
        assert!(Instant::now() < deadline, "no video on the relay");
        relay.collect_for(Duration::from_millis(100));
    }
    relay.collect_for(Duration::from_millis(300));
    let seen: Vec<&Value> = relay
        .seen
        .iter()
        .filter(|v| v["ev"] == "announce" || v["ev"] == "status")
        .collect();
    let with_video = seen
        .iter()
        .position(|v| track_names(&v["announce"]).contains(&"video"))
        .unwrap_or_else(|| panic!("no announce with video: {seen:?}"));
    let live: Vec<usize> = (0..seen.len())
        .filter(|&i| {
            seen[i]["status"]
                == json!({"stream": "cam0", "track": "video", "state": "live", "reason": ""})
        })
        .collect();
    assert_eq!(
        live.len(),
        1,
        "one status live for video expected: {seen:?}"
    );
    assert!(live[0] > with_video, "status before the announce: {seen:?}");
    let audio_live = seen
        .iter()
        .filter(|v| v["status"]["track"] == "audio" && v["status"]["state"] == "live")
        .count();
    assert_eq!(audio_live, 1, "one status live for audio: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_sioedge_relay_watching_before_video_is_up_gets_status_live_for_it() {
    let relay = Relay::start(&relay_config(&[("test-gw", "gw-token")], None));
    let _gw = start_gateway(&format!(
        "[[relay]]\nurl = \"{}\"\ntoken = \"gw-token\"\n",
        relay.url()
    ));
    let mut viewer = watch_early(relay.addr, "test-gw/cam0").await;
    expect_video_live(&mut viewer, "viewer of sioedge relay").await;
}
