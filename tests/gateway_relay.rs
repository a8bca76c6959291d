//! `sioedge run` publishing to a python-socketio relay (tests/peers/relay.py) that implements the
//! contract, and a python-socketio viewer on that relay.
#![cfg(feature = "media")]

mod gateway_support;
mod process_support;

use gateway_support::{Gateway, Peer, Viewer, crc32, test_config};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn relay_config(port: u64, token: &str) -> String {
    relay_config_with(port, &format!("token = \"{token}\""))
}

/// A `[[relay]]` on the local port with `credential` (a `token` or `token_file` line) that
/// reconnects quickly.
fn relay_config_with(port: u64, credential: &str) -> String {
    format!(
        "[[relay]]\nurl = \"http://127.0.0.1:{port}\"\n{credential}\n[relay.reconnection]\ndelay = \"200ms\"\nmax_delay = \"1s\"\n"
    )
}

/// Checks frames (JSON lines with track/seq/key/crc) are consecutive per track and video starts
/// at a keyframe (every audio frame is one); returns how many were checked.
fn assert_in_order_from_a_keyframe(frames: &[&Value], who: &str) -> usize {
    let first = frames
        .iter()
        .find(|f| f["track"] == "video")
        .unwrap_or_else(|| panic!("{who}: no video"));
    assert_eq!(first["key"], true, "{who}: first video frame is a keyframe");
    let mut last: HashMap<String, u64> = HashMap::new();
    for f in frames {
        let track = f["track"].as_str().unwrap_or("").to_owned();
        let seq = f["seq"].as_u64().expect("seq");
        if let Some(prev) = last.insert(track.clone(), seq) {
            assert_eq!(seq, prev + 1, "{who}: {track} seq {prev} then {seq}");
        }
    }
    frames.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_gets_announce_and_byte_exact_media_and_its_viewer_gets_them_in_order() {
    let (mut relay, port) = Peer::python_relay("s3cret");
    let gw = Gateway::start(&test_config("", &relay_config(port, "s3cret")));
    // A LAN viewer on the gateway records what the gateway itself serves.
    let mut lan = Viewer::connect(gw.addr).await;
    lan.watch("cam0").await;
    let lan_task = tokio::spawn(async move {
        let mut got = HashMap::new();
        let stop = Instant::now() + Duration::from_secs(8);
        while let Some(m) = lan.next_media(stop).await {
            got.insert((m.track.clone(), m.seq), (m.data.len(), crc32(&m.data)));
        }
        got
    });
    let publisher = relay.wait_for("publisher", Duration::from_secs(10));
    assert_eq!(publisher["auth"]["token"], "s3cret");
    assert_eq!(publisher["auth"]["device"], "test-gw");
    // Tracks come up one by one; each change is announced again. Wait for the full one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let announce = loop {
        let full = relay
            .all("announce")
            .into_iter()
            .map(|a| a["announce"].clone())
            .find(|a| a["tracks"].as_array().map_or(0, Vec::len) == 2);
        if let Some(a) = full {
            break a;
        }
        assert!(Instant::now() < deadline, "no announce with both tracks");
        relay.collect_for(Duration::from_millis(100));
    };
    assert_eq!(announce["stream"], "cam0");
    let video = &announce["tracks"][0];
    assert_eq!(video["track"], "video");
    assert_eq!(video["codec"], "h264");
    assert!(
        video["codecString"]
            .as_str()
            .unwrap_or("")
            .starts_with("avc1."),
        "{video}"
    );
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(announce["tracks"][1]["codec"], "opus");
    assert_eq!(announce["tracks"][1]["sampleRate"], 48000);
    // A python-socketio viewer on the relay.
    let url = format!("http://127.0.0.1:{port}");
    let mut viewer = Peer::python(
        "gateway_viewer.py",
        &["--url", &url, "--stream", "cam0", "--seconds", "4"],
    );
    let watching = viewer.wait_for("watching", Duration::from_secs(10));
    assert_eq!(watching["ack"]["stream"], "cam0");
    viewer.wait_for("done", Duration::from_secs(10));
    relay.collect_for(Duration::from_millis(200));
    let lan_frames = lan_task.await.expect("LAN viewer");

    let relay_media = relay.all("media");
    let n = assert_in_order_from_a_keyframe(&relay_media, "relay");
    assert!(n > 150, "relay got {n} frames");
    let viewer_media = viewer.all("media");
    let m = assert_in_order_from_a_keyframe(&viewer_media, "viewer on the relay");
    // relay.py lets a viewer in at a video keyframe: that is its very first media event.
    assert_eq!(viewer_media[0]["track"], "video");
    assert_eq!(viewer_media[0]["key"], true);
    assert!(m > 100, "viewer on the relay got {m} frames");
    // Byte-exact: every frame the relay and its viewer got matches what the gateway served.
    let mut compared = 0;
    for f in relay_media.iter().chain(viewer_media.iter()) {
        let key = (
            f["track"].as_str().unwrap_or("").to_owned(),
            f["seq"].as_u64().unwrap_or(0),
        );
        if let Some(&(len, crc)) = lan_frames.get(&key) {
            assert_eq!(f["len"].as_u64(), Some(len as u64), "{key:?} length");
            assert_eq!(f["crc"].as_u64(), Some(u64::from(crc)), "{key:?} content");
            compared += 1;
        }
    }
    assert!(compared > 200, "only {compared} frames compared");
    eprintln!(
        "relay got {n} frames, its viewer {m}; {compared} compared byte-exact with the LAN viewer"
    );
    let status: Value = serde_json::from_str(&gw.get("/api/status")).expect("status");
    assert_eq!(status["relays"][0]["state"], "connected", "{status}");
    assert!(status["relays"][0]["sent"].as_u64().unwrap_or(0) > 0);
    // SIGTERM: the relay is told (DISCONNECT from the publisher) and the gateway exits within 2 s.
    let mut gw = gw;
    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let gone = relay.wait_for("publisher_gone", Duration::from_secs(2));
    assert_eq!(gone["reason"], "client disconnect", "{gone}");
    let status = (gw.proc)
        .exit_before(sent + Duration::from_secs(2))
        .expect("gateway exited within 2 s");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_reported_in_the_status_and_viewers_still_watch() {
    let (mut relay, port) = Peer::python_relay("right");
    let gw = Gateway::start(&test_config("", &relay_config(port, "wrong")));
    relay.wait_for("refused", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status: Value = serde_json::from_str(&gw.get("/api/status")).expect("status");
        if status["relays"][0]["lastError"].is_string() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no relay error in status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let relay_status = &status["relays"][0];
    assert_ne!(relay_status["state"], "connected");
    assert!(
        relay_status["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("bad token"),
        "{relay_status}"
    );
    assert!(gw.get("/metrics").contains(&format!(
        "sioedge_relay_connected{{relay=\"http://127.0.0.1:{port}/publish\"}} 0"
    )));
    let mut v = Viewer::connect(gw.addr).await;
    v.watch("cam0").await;
    let m = v
        .next_media(Instant::now() + Duration::from_secs(5))
        .await
        .expect("LAN viewing is unaffected");
    assert!(m.key);
}

/// A python relay accepting `accepted`, and a `[[relay]]` to it whose `token_file` holds `token`:
/// the file's directory (keep it), the file, the relay, its port and the `[[relay]]` text.
fn token_file_relay(
    token: &str,
    accepted: &str,
) -> (tempfile::TempDir, std::path::PathBuf, Peer, u64, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("relay.token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write token");
    let (relay, port) = Peer::python_relay(accepted);
    let relays = relay_config_with(port, &format!("token_file = \"{}\"", token_file.display()));
    (dir, token_file, relay, port, relays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_is_presented_at_the_next_reconnection() {
    let (_dir, token_file, mut relay, port, relays) = token_file_relay("first", "first");
    let _gw = Gateway::start(&test_config("", &relays));
    let publisher = relay.wait_for("publisher", Duration::from_secs(10));
    assert_eq!(publisher["auth"]["token"], "first");

    // Rotate the token, then restart the relay on the same port with only the new one.
    std::fs::write(&token_file, "second\n").expect("rotate token");
    drop(relay);
    let port_arg = port.to_string();
    let mut relay = Peer::python("relay.py", &["--port", &port_arg, "--token", "second"]);
    relay.wait_for("ready", Duration::from_secs(10));
    let publisher = relay.wait_for("publisher", Duration::from_secs(10));
    assert_eq!(publisher["auth"]["token"], "second");
    assert_eq!(publisher["auth"]["device"], "test-gw");
    assert!(
        relay.all("refused").is_empty(),
        "the old token was presented: {:?}",
        relay.all("refused")
    );
}

/// The gateway's log lines (stderr), collected as they come.
fn collect_log(gw: &mut Gateway) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = gw.proc.0.stderr.take().expect("stderr piped");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("gateway: {line}");
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Log lines at `level` (`WARN`, `INFO`, …) that contain `text`.
fn logged(log: &std::sync::Mutex<Vec<String>>, level: &str, text: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&format!(" {level} ")) && l.contains(text))
        .cloned()
        .collect()
}

/// Operators' view of a refusal loop: one WARN when it starts (not two lines per attempt), the
/// attempts counted in /api/status (`attempts`, `reconnects`) with the error and when it
/// happened, one INFO line when the relay accepts again, and a clean SIGTERM that logs no
/// warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_loop_is_one_warning_counted_in_the_status_and_recovery_one_info_line() {
    let (_dir, token_file, mut relay, port, relays) = token_file_relay("wrong", "right");
    let mut gw = Gateway::start_with(
        &test_config("", &relays),
        &[("RUST_LOG", "info")],
        std::process::Stdio::piped(),
    );
    let log = collect_log(&mut gw);
    let deadline = Instant::now() + Duration::from_secs(15);
    while relay.all("refused").len() < 5 {
        assert!(Instant::now() < deadline, "fewer than 5 attempts in 15 s");
        relay.collect_for(Duration::from_millis(100));
    }
    let refusals = relay.all("refused").len() as u64;
    let status: Value = serde_json::from_str(&gw.get("/api/status")).expect("status");
    let link = &status["relays"][0];
    assert_ne!(link["state"], "connected", "{link}");
    assert!(link["attempts"].as_u64() >= Some(refusals - 1), "{link}");
    assert!(link["reconnects"].as_u64() >= Some(refusals - 1), "{link}");
    assert!(
        link["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("bad token"),
        "{link}"
    );
    let at = link["lastErrorAt"].as_str().unwrap_or("");
    assert!(
        at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "lastErrorAt is not an RFC 3339 UTC time: {link}"
    );
    assert!(gw.get("/metrics").contains(&format!(
        "sioedge_relay_failed_attempts{{relay=\"http://127.0.0.1:{port}/publish\"}} {}",
        link["attempts"]
    )));
    let warnings = logged(&log, "WARN", "bad token");
    assert_eq!(
        warnings.len(),
        1,
        "{refusals} refusals must be one warning (a summary follows after a minute): {warnings:#?}"
    );

    // The token is fixed: the next attempt is accepted, and that is one INFO line.
    std::fs::write(&token_file, "right\n").expect("fix token");
    relay.wait_for("publisher", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(5);
    let link = loop {
        let status: Value = serde_json::from_str(&gw.get("/api/status")).expect("status");
        if status["relays"][0]["state"] == "connected" {
            break status["relays"][0].clone();
        }
        assert!(Instant::now() < deadline, "not connected: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(link["attempts"], 0, "{link}");
    assert_eq!(link["lastErrorAt"], at, "{link}");
    let again = logged(&log, "INFO", "connected again after");
    assert_eq!(again.len(), 1, "{again:#?}");
    assert!(again[0].contains(" failures over "), "{again:#?}");
    assert_eq!(logged(&log, "WARN", "bad token").len(), 1);

    // SIGTERM: the relay link closes cleanly — one INFO line, no warning.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let exit = gw
        .proc
        .exit_before(Instant::now() + Duration::from_secs(3))
        .expect("gateway exited");
    assert!(exit.success(), "{exit:?}");
    std::thread::sleep(Duration::from_millis(200));
    let closed = logged(
        &log,
        "INFO",
        &format!("relay http://127.0.0.1:{port}: closed"),
    );
    assert_eq!(closed.len(), 1, "{:#?}", log.lock().unwrap());
    let warned: Vec<String> = logged(&log, "WARN", "")
        .into_iter()
        .filter(|l| !l.contains("bad token"))
        .collect();
    assert!(
        warned.is_empty(),
        "warnings besides the refusal: {warned:#?}"
    );
}
