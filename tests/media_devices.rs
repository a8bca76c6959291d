//! `sioedge devices` on this machine (CI has no camera and no microphone).
#![cfg(feature = "media")]

mod process_support;
mod server_support;

use server_support::run_with_timeout;
use std::process::Command;
use std::time::Duration;

/// Runs `sioedge devices ARGS` with a 30 s limit; returns stdout.
fn devices(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sioedge"));
    cmd.arg("devices").args(args);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "sioedge devices failed: {}",
        out.status
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
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
