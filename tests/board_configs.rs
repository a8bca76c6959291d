//! The config each board's .deb installs (`scripts/board-config NAME`, rendered from
//! `target-configs/sioedge.toml.in` and `target-configs/boards/NAME.board`) is accepted by
//! `sioedge check-config` and carries the board profile's encoder, size, rate and bitrate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `KEY=value` lines of a board profile (comments and blank lines skipped).
fn profile(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .expect("board profile readable")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

fn boards() -> Vec<(String, PathBuf)> {
    let mut boards: Vec<_> = std::fs::read_dir(root().join("target-configs/boards"))
        .expect("target-configs/boards")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "board"))
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, p)
        })
        .collect();
    boards.sort();
    boards
}

#[test]
fn every_board_profile_is_complete() {
    let boards = boards();
    let names: Vec<&str> = boards.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "rpi-zero2w",
        "rpi3",
        "rpi4",
        "rpi5",
        "rpi-armhf",
        "generic-aarch64",
        "generic-armv7",
    ] {
        assert!(names.contains(&expected), "missing board {expected}");
    }
    for (name, path) in &boards {
        let p = profile(path);
        for key in [
            "BOARD_DESCRIPTION",
            "TARGET",
            "VIDEO_ENCODER",
            "VIDEO_WIDTH",
            "VIDEO_HEIGHT",
            "VIDEO_FPS",
            "VIDEO_BITRATE_KBPS",
            "DEB_VARIANT",
        ] {
            assert!(p.contains_key(key), "{name}: no {key}");
        }
        assert!(
            ["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"]
                .contains(&p["TARGET"].as_str()),
            "{name}: TARGET {}",
            p["TARGET"]
        );
        // Pi <= 4 and Zero 2 W have the hardware encoder; the Pi 5 has none. Their packages pick
        // at start (v4l2h264enc when present and the picture fits its 1920 limit, else x264enc),
        // so a failing hardware encoder falls back to x264 instead of retrying forever.
        let want_encoder = match name.as_str() {
            "rpi-zero2w" | "rpi3" | "rpi4" | "rpi-armhf" => Some("auto"),
            "rpi5" => Some("x264"),
            _ => None,
        };
        if let Some(want) = want_encoder {
            assert_eq!(p["VIDEO_ENCODER"], want, "{name}");
        }
        // Raspberry Pi boards use CSI cameras through libcamera.
        assert_eq!(
            p["DEB_VARIANT"] == "libcamera",
            name.starts_with("rpi"),
            "{name}: DEB_VARIANT"
        );
    }
}

/// Raspberry Pi OS comes as arm64 and as armhf: each needs a Raspberry Pi package (one that pulls
/// in libcamera), or a CSI camera on that OS silently becomes the test pattern.
#[test]
fn both_raspberry_pi_os_architectures_have_a_libcamera_package() {
    let boards = boards();
    for target in ["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"] {
        let pi: Vec<&str> = boards
            .iter()
            .filter(|(name, path)| {
                let p = profile(path);
                name.starts_with("rpi") && p["TARGET"] == target && p["DEB_VARIANT"] == "libcamera"
            })
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(!pi.is_empty(), "no Raspberry Pi board profile for {target}");
    }
}

#[test]
fn every_board_config_passes_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, path) in boards() {
        let out = Command::new("bash")
            .arg(root().join("scripts/board-config"))
            .arg(&name)
            .output()
            .expect("run scripts/board-config");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, &out.stdout).expect("write config");

        let check = Command::new(env!("CARGO_BIN_EXE_sioedge"))
            .arg("check-config")
            .arg(&file)
            .output()
            .expect("run sioedge check-config");
        assert!(
            check.status.success(),
            "{name}: check-config failed: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        let cfg = sioedge::config::Config::from_file(&file).expect("valid config");
        let p = profile(&path);
        assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080", "{name}");
        assert_eq!(cfg.streams.len(), 1, "{name}");
        let video = cfg.streams[0].video.as_ref().expect("video track");
        let encoder = serde_json::to_value(video.encoder).expect("encoder serializes");
        assert_eq!(encoder, p["VIDEO_ENCODER"].as_str(), "{name}: encoder");
        assert_eq!(video.width.to_string(), p["VIDEO_WIDTH"], "{name}: width");
        assert_eq!(
            video.height.to_string(),
            p["VIDEO_HEIGHT"],
            "{name}: height"
        );
        assert_eq!(video.fps.to_string(), p["VIDEO_FPS"], "{name}: fps");
        assert_eq!(
            video.bitrate_kbps.to_string(),
            p["VIDEO_BITRATE_KBPS"],
            "{name}: bitrate"
        );
        assert!(cfg.streams[0].audio.is_some(), "{name}: audio track");
    }
}
