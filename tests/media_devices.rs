//! `sioedge devices` on this machine (CI has no camera and no microphone).
#![cfg(feature = "media")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sioedge devices ARGS` with a 30 s limit; returns stdout.
fn devices(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sioedge"))
        .arg("devices")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "sioedge devices failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sioedge devices did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    out
}

fn machine_has_cameras() -> bool {
    std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("video"))
        })
        .unwrap_or(false)
}

#[test]
fn human_table_lists_encoders_and_says_when_there_is_no_camera() {
    let out = devices(&[]);
    for section in ["Cameras:", "Microphones:", "Encoders:"] {
        assert!(out.contains(section), "{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("x264enc") && l.contains("yes")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("opusenc") && l.contains("yes")),
        "{out}"
    );
    if !machine_has_cameras() {
        assert!(
            out.contains("no cameras found; `auto` will use the test pattern"),
            "{out}"
        );
        assert!(out.contains("video source = \"test\""), "{out}");
        // without the Pi's M2M encoder device the hardware element cannot exist
        assert!(out.contains("H.264 encoder = x264enc"), "{out}");
    }
}

#[test]
fn json_output_parses() {
    let out = devices(&["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let encoders = v["encoders"].as_array().unwrap();
    let avail =
        |name: &str| encoders.iter().find(|e| e["element"] == name).unwrap()["available"].clone();
    assert_eq!(avail("x264enc"), true);
    assert_eq!(avail("jpegenc"), true);
    assert!(v["cameras"].is_array() && v["microphones"].is_array());
    if !machine_has_cameras() {
        assert_eq!(v["cameras"].as_array().unwrap().len(), 0);
        assert_eq!(v["auto"]["video_source"], "test");
        assert_eq!(avail("v4l2h264enc"), false);
    }
}
