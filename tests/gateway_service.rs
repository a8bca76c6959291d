//! `sioedge run` as a systemd service: `sd_notify` READY/WATCHDOG/STOPPING over `$NOTIFY_SOCKET`,
//! and SIGHUP config reloads (a valid file is applied without dropping the connected viewer, an
//! invalid one is rejected with its `file:line` error and the old config keeps running).

mod gateway_support;
mod process_support;

use gateway_support::{Gateway, Peer, Viewer, test_config};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use process_support::NotifySocket;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn signal(gw: &Gateway, sig: Signal) {
    kill(Pid::from_raw(gw.pid() as i32), sig).expect("signal the gateway");
}

/// Receives `media` of the watched stream for `d`; returns how many frames arrived.
async fn frames_for(viewer: &mut Viewer, d: Duration) -> usize {
    let deadline = Instant::now() + d;
    let mut n = 0;
    while viewer.next_media(deadline).await.is_some() {
        n += 1;
    }
    n
}

#[test]
fn notifies_ready_watchdog_and_stopping() {
    let sock = NotifySocket::new();
    let notify = sock.path();
    let mut gw = Gateway::start_with(
        &test_config("", ""),
        &[
            ("RUST_LOG", "warn"),
            ("NOTIFY_SOCKET", notify),
            ("WATCHDOG_USEC", "1000000"),
        ],
        Stdio::inherit(),
    );
    // The viewer URL was printed (start_with waited for it); READY names it and the port answers.
    let ready = sock.next().expect("READY=1 within 10 s");
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    let url = format!("http://{}/", gw.addr);
    assert!(ready.contains(&url), "READY status names {url}: {ready:?}");
    std::net::TcpStream::connect(gw.addr).expect("listening when READY arrives");

    // WATCHDOG_USEC=1 s: pings every 0.5 s.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(2200) {
        let msg = sock.next().expect("a notification within 10 s");
        assert_eq!(msg, "WATCHDOG=1");
        pings += 1;
    }
    assert!(
        (4..=7).contains(&pings),
        "{pings} pings in {:?}",
        start.elapsed()
    );

    signal(&gw, Signal::SIGTERM);
    let stopping = loop {
        let msg = sock.next().expect("STOPPING=1 within 10 s of SIGTERM");
        if msg != "WATCHDOG=1" {
            break msg;
        }
    };
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let status = (gw.proc)
        .exit_before(Instant::now() + Duration::from_secs(5))
        .expect("exit within 5 s of SIGTERM");
    assert!(status.success(), "{status}");
}

/// A second `[[stream]]` appended to the test config.
fn with_second_stream(config: &str) -> String {
    format!(
        r#"{config}
[[stream]]
id = "cam1"
[stream.video]
source = "test"
width = 320
height = 240
fps = 15
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_stream_without_dropping_the_viewer() {
    let config = test_config("", "");
    let gw = Gateway::start(&config);
    let mut viewer = Viewer::connect(gw.addr).await;
    let ack = viewer.watch("cam0").await;
    assert!(ack.to_string().contains("cam0"), "{ack}");
    let before = viewer.call("streams", serde_json::json!({})).await;
    assert!(!before.to_string().contains("cam1"), "{before}");
    assert!(frames_for(&mut viewer, Duration::from_millis(500)).await > 5);

    std::fs::write(&gw.config_path, with_second_stream(&config)).expect("rewrite config");
    signal(&gw, Signal::SIGHUP);

    // The same socket sees cam1 in `streams` once its capture is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let streams = viewer.call("streams", serde_json::json!({})).await;
        if streams.to_string().contains("\"cam1\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cam1 not listed in 10 s: {streams}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.wait_live(3);
    // cam0 kept flowing to the untouched viewer, which was never disconnected.
    let after = frames_for(&mut viewer, Duration::from_secs(1)).await;
    assert!(
        after > 20,
        "only {after} cam0 frames in 1 s after the reload"
    );
    assert!(!viewer.closed, "the viewer was disconnected by the reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_an_invalid_file_keeps_the_old_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let config = test_config("", "");
    let gw = Gateway::start_with(&config, &[("RUST_LOG", "info")], Stdio::from(log));
    gw.wait_live(2);
    let mut viewer = Viewer::connect(gw.addr).await;
    viewer.watch("cam0").await;
    assert!(frames_for(&mut viewer, Duration::from_millis(500)).await > 5);

    // Line 13 of the new file: `width = "wide"`.
    let bad = config.replace("width = 320", "width = \"wide\"");
    let line = bad
        .lines()
        .position(|l| l.contains("\"wide\""))
        .expect("the bad line")
        + 1;
    std::fs::write(&gw.config_path, bad).expect("rewrite config");
    signal(&gw, Signal::SIGHUP);

    let expected = format!("{}:{line}:", gw.config_path.display());
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("config reload rejected") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no rejection logged in 10 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        text.contains(&expected) && text.contains("width"),
        "error names {expected} and the field:\n{text}"
    );
    let after = frames_for(&mut viewer, Duration::from_secs(1)).await;
    assert!(
        after > 20,
        "only {after} frames in 1 s after the rejected reload"
    );
    assert!(!viewer.closed);
    let status = gw.get("/api/status");
    assert!(status.contains("cam0"), "{status}");
}

#[test]
fn root_drops_to_the_configured_user_after_binding() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the drop is covered by service::tests (NotRoot)");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("user nobody exists");
    let config = format!("user = \"nobody\"\n{}", test_config("", ""));
    let gw = Gateway::start_with(&config, &[("RUST_LOG", "warn")], Stdio::inherit());
    // Capture runs (as nobody) and the socket bound as root still serves.
    gw.wait_live(2);
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).expect("proc");
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("field")
            .split_whitespace()
            .map(|v| v.parse().expect("id"))
            .collect()
    };
    let uid = nobody.uid.as_raw();
    let gid = nobody.gid.as_raw();
    assert_eq!(ids("Uid:"), vec![uid; 4], "{status}");
    assert_eq!(ids("Gid:"), vec![gid; 4], "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_restarts_a_changed_stream_and_its_watcher_follows() {
    let config = test_config("", "");
    let gw = Gateway::start(&config);
    let mut viewer = Viewer::connect(gw.addr).await;
    viewer.watch("cam0").await;
    assert!(frames_for(&mut viewer, Duration::from_millis(500)).await > 5);

    // cam0 changes: its audio track goes away.
    let cut = config.find("[stream.audio]").expect("audio section");
    std::fs::write(&gw.config_path, &config[..cut]).expect("rewrite config");
    signal(&gw, Signal::SIGHUP);

    // The watcher sees the restart and a new announce with the video track only.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tracks = loop {
        match viewer.next(deadline).await {
            Some(gateway_support::Ev::Event(name, ann)) if name == "announce" => {
                let tracks = ann["tracks"].as_array().cloned().unwrap_or_default();
                if tracks.len() == 1 {
                    break tracks;
                }
            }
            Some(gateway_support::Ev::Disconnect) | None => {
                panic!("no one-track announce within 10 s")
            }
            Some(_) => {}
        }
    };
    assert_eq!(tracks[0]["track"], "video", "{tracks:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut video = 0;
    while let Some(m) = viewer.next_media(deadline).await {
        assert_ne!(m.track, "audio", "audio after it was removed");
        video += 1;
        if video == 20 {
            break;
        }
    }
    assert_eq!(
        video, 20,
        "video of the restarted stream reaches the watcher"
    );
    assert!(!viewer.closed);
}

/// Asserts how many relays the gateway's `/api/status` lists.
fn assert_relays(gw: &Gateway, n: usize) {
    let status: serde_json::Value = serde_json::from_str(&gw.get("/api/status")).expect("status");
    assert_eq!(
        status["relays"].as_array().map(Vec::len),
        Some(n),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_connects_an_added_relay_and_disconnects_a_removed_one() {
    let (mut relay, port) = Peer::python_relay("t0k");
    let config = test_config("", "");
    let gw = Gateway::start(&config);
    let mut viewer = Viewer::connect(gw.addr).await;
    viewer.watch("cam0").await;

    let with_relay =
        format!("{config}\n[[relay]]\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"t0k\"\n");
    std::fs::write(&gw.config_path, with_relay).expect("rewrite config");
    signal(&gw, Signal::SIGHUP);
    let publisher = relay.wait_for("publisher", Duration::from_secs(10));
    assert_eq!(publisher["auth"]["device"], "test-gw");
    relay.wait_for("media", Duration::from_secs(10));
    assert_relays(&gw, 1);

    std::fs::write(&gw.config_path, &config).expect("rewrite config");
    signal(&gw, Signal::SIGHUP);
    relay.wait_for("publisher_gone", Duration::from_secs(10));
    assert_relays(&gw, 0);
    // The LAN viewer rode through both reloads.
    assert!(frames_for(&mut viewer, Duration::from_millis(500)).await > 5);
    assert!(!viewer.closed, "the viewer was disconnected by a reload");
}
