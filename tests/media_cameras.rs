//! Real cameras on every board profile, without the hardware: for each camera listed in
//! `tests/fixtures/devices/` × each profile in `target-configs/boards/` × five configurations,
//! what sioedge chooses (source, mode, conversions, encoder) keeps the rules of
//! `src/media/modes.rs`, matches the table in `docs/cameras.md`, and negotiates in GStreamer
//! with the camera replaced by a source offering exactly its caps (`videotestsrc`, through
//! `jpegenc` for MJPEG) and, where the Pi's encoder is absent, x264 behind a caps filter holding
//! the bcm2835-codec limits and formats.
//!
//! `SIOEDGE_UPDATE_DOCS=1 cargo test --test media_cameras` rewrites the table.
#![cfg(feature = "media")]

mod camera_fixtures;

use camera_fixtures::{Board, boards, load_all};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sioedge::media::discovery::{Camera, CameraKind, Provider, VideoDevice};
use sioedge::media::modes::{
    self, IspKind, Mode, Modes, NoPlan, PixelFormat, Plan, Rates, Step, Want,
};
use sioedge::media::pipeline::{self, Encoder};
use sioedge::media::{BCM2835_CODEC_MAX, VideoSpec};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The configurations every camera is tried with on every board: the board's own, then four
/// sizes and rates with the board's encoder setting.
const SIZES: [(&str, u32, u32, u32); 4] = [
    ("1920x1080@30", 1920, 1080, 30),
    ("960x540@25", 960, 540, 25),
    ("2304x1296@30", 2304, 1296, 30),
    ("640x480@15", 640, 480, 15),
];

/// A configuration as `check-config` would take it: the spec, or the validation error.
struct Config {
    label: String,
    spec: Result<VideoSpec, String>,
}

fn spec_from(board: &Board, w: &str, h: &str, fps: &str) -> Result<VideoSpec, String> {
    let p = &board.profile;
    let toml = format!(
        "source = \"auto\"\nencoder = \"{}\"\nwidth = {w}\nheight = {h}\nfps = {fps}\nbitrate_kbps = {}\n",
        p["VIDEO_ENCODER"], p["VIDEO_BITRATE_KBPS"]
    );
    let spec: VideoSpec = toml::from_str(&toml).map_err(|e| e.to_string())?;
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

fn configs(board: &Board) -> Vec<Config> {
    let p = &board.profile;
    let mut list = vec![Config {
        label: format!(
            "default ({}x{}@{})",
            p["VIDEO_WIDTH"], p["VIDEO_HEIGHT"], p["VIDEO_FPS"]
        ),
        spec: spec_from(
            board,
            &p["VIDEO_WIDTH"],
            &p["VIDEO_HEIGHT"],
            &p["VIDEO_FPS"],
        ),
    }];
    for (label, w, h, f) in SIZES {
        list.push(Config {
            label: label.into(),
            spec: spec_from(board, &w.to_string(), &h.to_string(), &f.to_string()),
        });
    }
    list
}

/// What sioedge does with one camera, board and configuration.
enum Outcome {
    /// `check-config` rejects the configuration.
    Config(String),
    /// No encoder for it on this board.
    Encoder(String),
    /// The camera has no mode for it.
    NoMode(NoPlan),
    /// The capture.
    Chosen { enc: Encoder, plan: Plan },
}

fn outcome(cam: &Camera, board: &Board, config: &Config) -> Outcome {
    let spec = match &config.spec {
        Ok(s) => s,
        Err(e) => return Outcome::Config(e.clone()),
    };
    let enc = match Encoder::candidates(spec, &|e| board.has(e)) {
        Ok(c) => c[0],
        Err(e) => return Outcome::Encoder(e),
    };
    match modes::choose(&cam.modes, want(spec), enc.input()) {
        Ok(plan) => Outcome::Chosen { enc, plan },
        Err(e) => Outcome::NoMode(e),
    }
}

fn want(spec: &VideoSpec) -> Want {
    Want {
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
    }
}

/// A camera on the boards it can be attached to: USB everywhere, CSI on its own ISP.
fn fits(cam: &Camera, board: &Board) -> bool {
    match &cam.modes {
        Modes::Isp(isp) => board.isp == Some(isp.kind),
        Modes::Listed(_) => true,
    }
}

/// Every usable camera of every fixture, with the fixture's file name.
fn cameras() -> Vec<(String, Camera)> {
    load_all()
        .iter()
        .flat_map(|f| {
            f.cameras()
                .into_iter()
                .filter(|c| c.source.is_some())
                .map(|c| (f.file.clone(), c))
        })
        .collect()
}

fn short_step(step: &Step) -> String {
    match step {
        Step::Crop { left, right } => format!("crop {left}+{right}"),
        other => other.to_string(),
    }
}

/// One table cell.
fn cell(o: &Outcome) -> String {
    match o {
        Outcome::Config(e) => format!(
            "✗ check-config rejects {}",
            e.split(':').next().unwrap_or(e)
        ),
        Outcome::Encoder(e) => format!("✗ {e}"),
        Outcome::NoMode(NoPlan::TooFast { fps, .. }) => format!("✗ no mode reaches {fps} fps"),
        Outcome::NoMode(NoPlan::SensorTooSlow { mode, .. }) => {
            format!("✗ sensor mode {mode} too slow")
        }
        Outcome::NoMode(NoPlan::NoUsableFormat { .. }) => "✗ no usable format".into(),
        Outcome::Chosen { enc, plan } => {
            let p = &plan.pin;
            let mut s = format!("{} {}x{}@{}", p.format, p.width, p.height, p.rate);
            if let Some(m) = &plan.sensor_mode {
                s.push_str(&format!(" (sensor {}x{})", m.width, m.height));
            }
            let steps: Vec<String> = plan.steps.iter().map(short_step).collect();
            if !steps.is_empty() {
                s.push_str(&format!(" → {}", steps.join(", ")));
            }
            format!("{s} → {}", enc.element())
        }
    }
}

fn camera_label(file: &str, cam: &Camera) -> String {
    let kind = match cam.kind {
        CameraKind::Csi => "CSI",
        CameraKind::Usb => "USB",
        CameraKind::V4l2 => "V4L2",
    };
    format!("{} ({kind}) [{file}]", cam.name)
}

/// The generated section of docs/cameras.md.
fn table() -> String {
    let cams = cameras();
    let mut out = String::new();
    for board in boards() {
        let configs = configs(&board);
        out.push_str(&format!(
            "\n### {} — {} (encoder = \"{}\")\n\n| camera |",
            board.name, board.profile["BOARD_DESCRIPTION"], board.profile["VIDEO_ENCODER"]
        ));
        for c in &configs {
            out.push_str(&format!(" {} |", c.label));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(configs.len()));
        out.push('\n');
        for (f, cam) in cams.iter().filter(|(_, c)| fits(c, &board)) {
            out.push_str(&format!("| {} |", camera_label(f, cam)));
            for c in &configs {
                out.push_str(&format!(" {} |", cell(&outcome(cam, &board, c))));
            }
            out.push('\n');
        }
    }
    out
}

const BEGIN: &str = "<!-- BEGIN generated by tests/media_cameras.rs (SIOEDGE_UPDATE_DOCS=1 cargo test --test media_cameras) -->";
const END: &str = "<!-- END generated -->";

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/cameras.md")
}

#[test]
fn the_table_in_docs_cameras_md_is_current() {
    gst::init().unwrap();
    let doc = std::fs::read_to_string(docs()).expect("docs/cameras.md");
    let (head, rest) = doc.split_once(BEGIN).expect("BEGIN marker");
    let (_, tail) = rest.split_once(END).expect("END marker");
    let fresh = format!("{head}{BEGIN}\n{}\n{END}{tail}", table());
    if std::env::var_os("SIOEDGE_UPDATE_DOCS").is_some() {
        std::fs::write(docs(), &fresh).unwrap();
        return;
    }
    assert!(
        doc == fresh,
        "docs/cameras.md is stale: run SIOEDGE_UPDATE_DOCS=1 cargo test --test media_cameras"
    );
}

#[test]
fn the_fixtures_are_real_listings_of_the_cameras_that_matter() {
    gst::init().unwrap();
    let fixtures = load_all();
    assert!(fixtures.len() >= 10, "{} fixtures", fixtures.len());
    for f in &fixtures {
        let source = f.get("source").unwrap_or("");
        assert!(
            source.starts_with("https://github.com/"),
            "{}: source {source:?}",
            f.file
        );
        assert!(!f.devices().is_empty(), "{}: nothing parsed", f.file);
    }
    let cams = cameras();
    let csi = |sensor: &str, kind: IspKind| {
        cams.iter().any(|(_, c)| {
            c.name == sensor
                && matches!(&c.modes, Modes::Isp(i) if i.kind == kind && !i.sensor_modes.is_empty())
        })
    };
    assert!(csi("imx219", IspKind::Vc4), "Camera Module 2");
    assert!(csi("imx708", IspKind::Pisp), "Camera Module 3");
    assert!(csi("imx477", IspKind::Vc4), "HQ camera on a Pi 4");
    assert!(csi("imx477", IspKind::Pisp), "HQ camera on a Pi 5");
    let listed = |c: &Camera, pred: &dyn Fn(&Mode) -> bool| match &c.modes {
        Modes::Listed(m) => !m.is_empty() && m.iter().all(pred),
        Modes::Isp(_) => false,
    };
    assert!(
        cams.iter()
            .any(|(_, c)| listed(c, &|m| m.format == PixelFormat::Raw("YUY2".into()))),
        "a YUYV-only webcam"
    );
    assert!(
        cams.iter()
            .any(|(_, c)| listed(c, &|m| m.format == PixelFormat::Mjpeg)),
        "an MJPEG-only webcam"
    );
    assert!(
        cams.iter().any(|(_, c)| ["C270", "C920", "C922", "Brio"]
            .iter()
            .any(|m| c.name.contains(m))),
        "a Logitech C270, C920, C922 or Brio"
    );
}

/// Hand-checked against the listings.
#[test]
fn known_cameras_get_the_expected_capture() {
    gst::init().unwrap();
    let cams = cameras();
    let boards = boards();
    let board = |n: &str| boards.iter().find(|b| b.name == n).unwrap();
    let run = |file: &str, sensor: Option<&str>, b: &str, config: usize| {
        let (_, cam) = cams
            .iter()
            .find(|(f, c)| f == file && sensor.is_none_or(|s| c.name == s))
            .unwrap_or_else(|| panic!("{file}"));
        let b = board(b);
        cell(&outcome(cam, b, &configs(b)[config]))
    };
    let cases = [
        // Raw YUYV 1280x720 is 10 fps on the C615: MJPEG, decoded, into the Pi encoder.
        (
            "logitech-c615.txt",
            None,
            "rpi4",
            0,
            "MJPEG 1280x720@30 → jpegdec, videoconvert → v4l2h264enc",
        ),
        // Zero 2 W's 960x540@25: the nearest 16:9 size at ≥ 25 fps is 1024x576 (MJPEG at 30).
        (
            "logitech-c615.txt",
            None,
            "rpi-zero2w",
            0,
            "MJPEG 1024x576@30 → jpegdec, videorate, videoscale, videoconvert → v4l2h264enc",
        ),
        // The C920's YUYV reaches 30 fps only up to 800x448 (1280x720 is 10 fps): the Pi 4's
        // default 1280x720@30 is MJPEG, decoded, into the Pi encoder.
        (
            "logitech-c920.txt",
            None,
            "rpi4",
            0,
            "MJPEG 1280x720@30 → jpegdec, videoconvert → v4l2h264enc",
        ),
        // Zero 2 W's 960x540@25: of the 16:9 sizes at ≥ 25 fps (800x448 is within 1 % of 16:9,
        // 864x480 is not), 1024x576 is the nearest by area; YUYV gives it at 15 fps, MJPEG at 30.
        (
            "logitech-c920.txt",
            None,
            "rpi-zero2w",
            0,
            "MJPEG 1024x576@30 → jpegdec, videorate, videoscale, videoconvert → v4l2h264enc",
        ),
        // At 1920x1080 the C920 lists H.264 at 30 fps before MJPEG at 30: the camera's H.264 is
        // not something sioedge decodes, so MJPEG is pinned.
        (
            "logitech-c920.txt",
            None,
            "rpi5",
            1,
            "MJPEG 1920x1080@30 → jpegdec, videoconvert → x264enc",
        ),
        // YUY2 goes to the Pi encoder as it is; x264 needs it converted.
        (
            "usb2-camera-yuyv-only.pi3.txt",
            None,
            "rpi3",
            4,
            "YUY2 640x480@30 → videorate → v4l2h264enc",
        ),
        (
            "usb2-camera-yuyv-only.pi3.txt",
            None,
            "rpi5",
            4,
            "YUY2 640x480@30 → videorate, videoconvert → x264enc",
        ),
        // 2304 is above what the Pi encoder takes: `auto` moves to x264 (an explicit v4l2h264enc
        // is refused by check-config: tests/config_cases/pi_encoder_too_wide.toml).
        (
            "imx219-and-imx477.pi4-docs.txt",
            Some("imx219"),
            "rpi4",
            3,
            "I420 2304x1296@30 (sensor 1920x1080) → x264enc",
        ),
        // The ISP makes the size; the sensor mode is the one libcamera picks for it.
        (
            "imx708-camera-module-3.pi5.txt",
            None,
            "rpi5",
            3,
            "I420 2304x1296@30 (sensor 2304x1296) → x264enc",
        ),
        (
            "imx219-and-imx477.pi4-docs.txt",
            Some("imx477"),
            "rpi4",
            1,
            "NV12 1920x1080@30 (sensor 2028x1080) → v4l2h264enc",
        ),
        (
            "imx500-ai-camera.pi5.txt",
            None,
            "rpi5",
            1,
            "I420 1920x1080@30 (sensor 2028x1520) → x264enc",
        ),
        // The Jabra has no 4:3 mode: the nearest size, with borders.
        (
            "jabra-panacast-mjpeg-only.txt",
            None,
            "generic-aarch64",
            4,
            "MJPEG 640x360@15 → jpegdec, videoscale, videoconvert → x264enc",
        ),
    ];
    for (file, sensor, b, config, expected) in cases {
        assert_eq!(run(file, sensor, b, config), expected, "{file} on {b}");
    }
}

#[test]
fn cameras_seen_by_both_providers_appear_once_and_unusable_nodes_not_at_all() {
    gst::init().unwrap();
    let fixtures = load_all();
    let file = |n: &str| fixtures.iter().find(|f| f.file == n).unwrap();
    // A webcam's H.264-only node is no camera.
    assert!(
        file("arducam-1080p-0c45-6366-h264-node.pi5.txt")
            .cameras()
            .is_empty()
    );
    // H.264 beside YUYV and MJPEG on one node (the C920) leaves one camera, its H.264 modes
    // listed but never pinned (see known_cameras_get_the_expected_capture).
    let c920 = file("logitech-c920.txt").cameras();
    assert_eq!(c920.len(), 1);
    assert_eq!(
        c920[0].source.as_ref().map(ToString::to_string).as_deref(),
        Some("v4l2:/dev/camera")
    );
    assert!(
        matches!(&c920[0].modes, Modes::Listed(m) if m.iter().any(|m| m.format == PixelFormat::Other("H264".into())))
    );
    // USB cameras only libcamera reports cannot be driven, and say why.
    let orphans = file("uvc-cameras-cam-list.x86.txt").cameras();
    assert_eq!(orphans.len(), 2);
    assert!(
        orphans
            .iter()
            .all(|c| c.source.is_none() && c.problem.is_some())
    );
    // With its V4L2 node present (vendor, product and port from the id in the listing), the USB
    // camera libcamera lists is merged into it; the CSI camera stays libcamera's.
    let listing = file("uvc-and-imx219-as-libcamera-lists-them.pi.txt");
    let mut devices = listing.devices();
    devices.push(VideoDevice {
        provider: Provider::V4l2,
        name: "H264 USB Camera: USB Camera".into(),
        path: Some("/dev/video0".into()),
        stable_path: None,
        camera_id: None,
        driver: Some("uvcvideo".into()),
        bus_info: Some("usb-3f980000.usb-1.2".into()),
        vendor_id: Some("32e4".into()),
        product_id: Some("9422".into()),
        model: None,
        caps: file("arducam-1080p-0c45-6366.pi5.txt").devices()[0]
            .caps
            .clone(),
    });
    let cams = sioedge::media::discovery::cameras(&devices);
    let summary: Vec<(String, Vec<String>)> = cams
        .iter()
        .map(|c| (c.source.clone().map(String::from).unwrap(), c.also.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("libcamera:/base/soc/12c0mux/i2c@1/imx219@10".into(), vec![]),
            (
                "v4l2:/dev/video0".into(),
                vec!["libcamera:/base/soc/usb@7e980000/usb1@1-1.2:1.0-32e4:9422".into()]
            ),
        ]
    );
}

/// Whether `rate` is one a mode lists (or lies in its range).
fn offers(rates: &Rates, rate: modes::Rate) -> bool {
    match rates {
        Rates::Discrete(list) => list.contains(&rate),
        Rates::Range { min, max } => rate.fps() >= min.fps() && rate.fps() <= max.fps(),
    }
}

#[test]
fn every_choice_keeps_the_rules() {
    gst::init().unwrap();
    let mut checked = 0;
    for board in boards() {
        for config in configs(&board) {
            for (f, cam) in cameras().iter().filter(|(_, c)| fits(c, &board)) {
                let ctx = format!("{f} on {} at {}", board.name, config.label);
                let Ok(spec) = &config.spec else { continue };
                let o = outcome(cam, &board, &config);
                let Outcome::Chosen { enc, plan } = o else {
                    if let Outcome::NoMode(NoPlan::TooFast { fps, .. }) = &o
                        && let Modes::Listed(list) = &cam.modes
                    {
                        assert!(
                            list.iter()
                                .all(|m| m.rates.max_fps() < f64::from(*fps) * 0.99),
                            "{ctx}: a mode reaches {fps} fps"
                        );
                    }
                    continue;
                };
                checked += 1;
                assert!(enc.takes_size(spec.width, spec.height), "{ctx}: {enc:?}");
                let p = &plan.pin;
                let native = matches!(&p.format, PixelFormat::Raw(f) if enc.input().formats.contains(&f.as_str()));
                assert_eq!(
                    plan.steps.contains(&Step::Convert),
                    !native,
                    "{ctx}: conversion only for formats the encoder does not take"
                );
                match &cam.modes {
                    Modes::Listed(list) => {
                        let mode = list
                            .iter()
                            .find(|m| {
                                m.format == p.format && (m.width, m.height) == (p.width, p.height)
                            })
                            .unwrap_or_else(|| panic!("{ctx}: pinned mode not listed"));
                        assert!(offers(&mode.rates, p.rate), "{ctx}: rate not offered");
                        assert!(
                            p.rate.fps() >= f64::from(spec.fps) * 0.99,
                            "{ctx}: too slow"
                        );
                        assert_eq!(
                            plan.steps.contains(&Step::Scale),
                            (p.width, p.height) != (spec.width, spec.height),
                            "{ctx}: scale"
                        );
                        assert_eq!(
                            plan.steps.contains(&Step::Rate),
                            p.rate != modes::Rate::whole(spec.fps),
                            "{ctx}: videorate"
                        );
                        if p.format == PixelFormat::Mjpeg {
                            let raw_reaches = list.iter().any(|m| {
                                matches!(m.format, PixelFormat::Raw(_))
                                    && (m.width, m.height) == (p.width, p.height)
                                    && m.rates.max_fps() >= f64::from(spec.fps) * 0.99
                            });
                            assert!(!raw_reaches, "{ctx}: MJPEG although raw reaches the rate");
                        }
                    }
                    Modes::Isp(isp) => {
                        assert_eq!(p.rate, modes::Rate::whole(spec.fps), "{ctx}");
                        let PixelFormat::Raw(format) = &p.format else {
                            panic!("{ctx}: ISP gives raw")
                        };
                        assert_eq!(
                            p.width % isp.kind.width_alignment(format),
                            0,
                            "{ctx}: shear"
                        );
                        let cropped: u32 = plan
                            .steps
                            .iter()
                            .map(|s| match s {
                                Step::Crop { left, right } => left + right,
                                _ => 0,
                            })
                            .sum();
                        assert_eq!(p.width - cropped, spec.width, "{ctx}: width after crop");
                        if let Some(max) = plan.sensor_mode.and_then(|m| m.max_fps) {
                            assert!(max >= f64::from(spec.fps) * 0.99, "{ctx}: sensor too slow");
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} choices checked");
}

/// Caps of the modes of one media type, as the camera would offer them.
fn device_caps(cam: &Camera, mjpeg: bool) -> String {
    match &cam.modes {
        Modes::Isp(isp) => format!(
            "video/x-raw,format=(string){{{}}},width=(int)[32,{}],height=(int)[32,{}]",
            isp.formats.join(","),
            isp.max_width,
            isp.max_height
        ),
        Modes::Listed(list) => {
            let structures: Vec<String> = list
                .iter()
                .filter(|m| (m.format == PixelFormat::Mjpeg) == mjpeg)
                .filter_map(|m| {
                    let media = match &m.format {
                        PixelFormat::Mjpeg => "image/jpeg".to_string(),
                        PixelFormat::Raw(f) => format!("video/x-raw,format={f}"),
                        PixelFormat::Other(_) => return None,
                    };
                    let rates = match &m.rates {
                        Rates::Discrete(list) => {
                            let r: Vec<String> = list
                                .iter()
                                .map(|r| format!("{}/{}", r.num, r.den))
                                .collect();
                            format!("(fraction){{{}}}", r.join(","))
                        }
                        Rates::Range { min, max } => format!(
                            "(fraction)[{}/{},{}/{}]",
                            min.num, min.den, max.num, max.den
                        ),
                    };
                    Some(format!(
                        "{media},width={},height={},framerate={rates}",
                        m.width, m.height
                    ))
                })
                .collect();
            structures.join(";")
        }
    }
}

/// The launch line with the camera and the Pi encoder replaced.
fn stand_in_launch(cam: &Camera, spec: &VideoSpec, enc: Encoder, plan: &Plan) -> String {
    let out_fps = f64::from(spec.fps);
    let buffers = (14.0 * (plan.pin.rate.fps() / out_fps).max(1.0)).ceil() as u32 + 2;
    let mjpeg = plan.pin.format == PixelFormat::Mjpeg;
    let source = format!(
        "videotestsrc num-buffers={buffers} pattern=ball{} ! capsfilter caps=\"{}\"",
        if mjpeg { " ! jpegenc" } else { "" },
        device_caps(cam, mjpeg)
    );
    let encoder = match enc {
        Encoder::V4l2h264 => format!(
            "capsfilter caps=\"video/x-raw,format=(string){{{}}},width=(int)[32,{BCM2835_CODEC_MAX}],\
             height=(int)[32,{BCM2835_CODEC_MAX}]\" ! videoconvert ! {}",
            enc.input().formats.join(","),
            pipeline::encode(spec, Encoder::X264)
        ),
        other => pipeline::encode(spec, other),
    };
    format!(
        "{source} ! {} ! {encoder} ! appsink name=sink sync=false",
        pipeline::convert(spec, plan)
    )
}

/// Runs a launch line to its end: the number of encoded frames, or why it failed.
fn frames_out(launch: &str) -> Result<usize, String> {
    let pipeline = gst::parse::launch(launch).map_err(|e| e.to_string())?;
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("sink"))
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("PLAYING refused: {e}"))?;
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let result = loop {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            break Err(format!("{msg:?}"));
        }
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            Some(_) => n += 1,
            None if sink.is_eos() => break Ok(n),
            None if Instant::now() > deadline => break Err(format!("timed out after {n} frames")),
            None => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[test]
fn every_choice_negotiates_in_gstreamer_and_encodes_ten_frames() {
    gst::init().unwrap();
    let started = Instant::now();
    let mut launches = BTreeSet::new();
    for board in boards() {
        for config in configs(&board) {
            let Ok(spec) = &config.spec else { continue };
            for (f, cam) in cameras().iter().filter(|(_, c)| fits(c, &board)) {
                if let Outcome::Chosen { enc, plan } = outcome(cam, &board, &config) {
                    // The bitrate changes no caps: one bitrate keeps equal pipelines equal.
                    let spec = VideoSpec {
                        bitrate_kbps: 1000,
                        ..spec.clone()
                    };
                    launches.insert((stand_in_launch(cam, &spec, enc, &plan), f.clone()));
                }
            }
        }
    }
    for (launch, file) in &launches {
        match frames_out(launch) {
            Ok(n) => assert!(n >= 10, "{file}: {n} frames from {launch}"),
            Err(e) => panic!("{file}: {e}\n{launch}"),
        }
    }
    eprintln!(
        "{} distinct pipelines negotiated and ran in {:.1} s",
        launches.len(),
        started.elapsed().as_secs_f64()
    );
}
