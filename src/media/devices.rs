//! Device discovery: what `sioedge devices` prints and what `source = "auto"` resolves to.
//!
//! Cameras and microphones come from GStreamer's `DeviceMonitor` (V4L2, libcamera, ALSA, Pulse
//! providers, whichever are installed); encoders from the element registry. Each device is mapped
//! to the `source = "…"` value a config file would use for it.

use super::error::MediaError;
use super::pipeline::{AudioInput, Encoder, VideoInput};
use super::spec::{AudioSource, AudioSpec, VideoSource, VideoSpec};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;

/// One camera or microphone.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// The name the provider gives it, e.g. `HD Pro Webcam C920`.
    pub name: String,
    /// The config value selecting it (`v4l2:/dev/video0`, `libcamera`, `alsa:hw:1,0`, `pulse`), if
    /// sioedge can drive its element.
    pub source: Option<String>,
    /// The GStreamer source element (`v4l2src`, `libcamerasrc`, `alsasrc`, `pulsesrc`).
    pub element: String,
    /// Kernel driver for V4L2 devices (`uvcvideo`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// One line per caps structure: format, size and rates.
    pub formats: Vec<String>,
    #[serde(skip)]
    caps: Option<gst::Caps>,
    #[serde(skip)]
    rank: u8,
}

/// Whether an encoder element exists here, and what it is for.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderInfo {
    /// Element name.
    pub element: &'static str,
    /// Found in the registry.
    pub available: bool,
    /// What it encodes.
    pub purpose: &'static str,
}

/// Everything `sioedge devices` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Video sources, best first (the first one is what `auto` uses).
    pub cameras: Vec<DeviceInfo>,
    /// Audio sources (monitors of outputs excluded), best first.
    pub microphones: Vec<DeviceInfo>,
    /// Encoders and whether this machine has them.
    pub encoders: Vec<EncoderInfo>,
    /// What `source = "auto"` and `encoder = "auto"` resolve to here.
    pub auto: AutoChoice,
}

/// The resolved `auto` values.
#[derive(Debug, Clone, Serialize)]
pub struct AutoChoice {
    /// Video source (`test` when there is no camera).
    pub video_source: String,
    /// H.264 encoder element, if any.
    pub h264_encoder: Option<&'static str>,
    /// Audio source (`test` when there is no microphone).
    pub audio_source: String,
}

const ENCODERS: [(&str, &str); 6] = [
    (
        "v4l2h264enc",
        "H.264, hardware (Raspberry Pi ≤ 4, Zero 2 W)",
    ),
    ("x264enc", "H.264, software (x264)"),
    ("openh264enc", "H.264, software (OpenH264)"),
    ("jpegenc", "MJPEG, software"),
    ("v4l2jpegenc", "MJPEG, hardware (Raspberry Pi ≤ 4)"),
    ("opusenc", "Opus"),
];

/// True if the GStreamer registry has this element.
pub fn has_element(name: &str) -> bool {
    gst::ElementFactory::find(name).is_some()
}

fn prop_str(props: Option<&gst::StructureRef>, key: &str) -> Option<String> {
    props?.get::<String>(key).ok()
}

fn describe(device: &gst::Device) -> Option<DeviceInfo> {
    let element = device.create_element(None).ok()?;
    let factory = element.factory()?.name().to_string();
    let props = device.properties();
    let props = props.as_deref();
    let device_prop = |name: &str| -> Option<String> {
        element
            .find_property(name)
            .and_then(|_| element.property_value(name).get::<Option<String>>().ok())
            .flatten()
    };
    let driver = prop_str(props, "v4l2.device.driver");
    let (source, rank) = match factory.as_str() {
        "libcamerasrc" => (
            Some(
                device_prop("camera-name").map_or("libcamera".into(), |c| format!("libcamera:{c}")),
            ),
            0,
        ),
        "v4l2src" => {
            let path = device_prop("device").or_else(|| prop_str(props, "device.path"));
            // Pi ISP/CSI-receiver nodes deliver Bayer or need libcamera; USB cameras are uvcvideo.
            let rank = match driver.as_deref() {
                Some("uvcvideo") => 1,
                Some(d)
                    if d.starts_with("bcm2835")
                        || d == "unicam"
                        || d.starts_with("rp1")
                        || d.starts_with("pisp") =>
                {
                    9
                }
                _ => 2,
            };
            (path.map(|p| format!("v4l2:{p}")), rank)
        }
        "alsasrc" => (device_prop("device").map(|d| format!("alsa:{d}")), 1),
        "pulsesrc" => (
            Some(device_prop("device").map_or("pulse".into(), |d| format!("pulse:{d}"))),
            0,
        ),
        _ => (None, 5),
    };
    let caps = device.caps();
    let formats = caps.as_ref().map(summarize_caps).unwrap_or_default();
    let usable = caps.as_ref().is_none_or(|c| {
        c.iter().any(|s| {
            matches!(
                s.name().as_str(),
                "video/x-raw" | "image/jpeg" | "audio/x-raw"
            )
        })
    });
    Some(DeviceInfo {
        name: device.display_name().to_string(),
        source,
        element: factory,
        driver,
        formats,
        caps,
        rank: if usable { rank } else { 9 },
    })
}

fn summarize_caps(caps: &gst::Caps) -> Vec<String> {
    let field = |s: &gst::StructureRef, k: &str| -> Option<String> {
        s.value(k)
            .ok()
            .and_then(|v| v.serialize().ok())
            .map(|g| g.to_string())
    };
    caps.iter()
        .map(|s| {
            let mut line = match s.name().as_str() {
                "image/jpeg" => "MJPEG".to_string(),
                name => field(s, "format").unwrap_or_else(|| name.to_string()),
            };
            if let (Some(w), Some(h)) = (field(s, "width"), field(s, "height")) {
                let _ = write!(line, " {w}x{h}");
            }
            if let Some(f) = field(s, "framerate") {
                let _ = write!(line, " @ {f}");
            }
            if let Some(r) = field(s, "rate") {
                let _ = write!(line, " {r} Hz");
            }
            if let Some(c) = field(s, "channels") {
                let _ = write!(line, " {c} ch");
            }
            line
        })
        .collect()
}

fn monitor(class: &str) -> Vec<DeviceInfo> {
    let m = gst::DeviceMonitor::new();
    m.add_filter(Some(class), None);
    if m.start().is_err() {
        return Vec::new();
    }
    let mut list: Vec<DeviceInfo> = m
        .devices()
        .iter()
        .filter(|d| {
            // Pulse lists each output's monitor as a source; it is not a microphone.
            prop_str(d.properties().as_deref(), "device.class").as_deref() != Some("monitor")
        })
        .filter_map(describe)
        .collect();
    m.stop();
    list.sort_by_key(|d| d.rank);
    list
}

/// Enumerates cameras, microphones and encoders. Needs `gst::init` (done by [`crate::media::init`]).
pub fn probe() -> Result<Inventory, MediaError> {
    super::pipeline::init()?;
    let cameras = monitor("Video/Source");
    let microphones = monitor("Audio/Source");
    let auto = AutoChoice {
        video_source: first_source(&cameras).unwrap_or_else(|| "test".into()),
        h264_encoder: Encoder::choose(&VideoSpec::default(), &has_element)
            .ok()
            .map(Encoder::element),
        audio_source: first_source(&microphones).unwrap_or_else(|| "test".into()),
    };
    let encoders = ENCODERS
        .iter()
        .map(|&(element, purpose)| EncoderInfo {
            element,
            available: has_element(element),
            purpose,
        })
        .collect();
    Ok(Inventory {
        cameras,
        microphones,
        encoders,
        auto,
    })
}

fn first_source(list: &[DeviceInfo]) -> Option<String> {
    list.iter()
        .filter(|d| d.rank < 9)
        .find_map(|d| d.source.clone())
}

/// Resolves a video spec's source to a concrete input (probing devices for `auto` and for the
/// raw-or-MJPEG choice of V4L2 cameras).
pub fn resolve_video(spec: &VideoSpec) -> Result<VideoInput, MediaError> {
    if let Some(p) = &spec.pipeline {
        return Ok(VideoInput::Custom(p.clone()));
    }
    let test = VideoInput::Test {
        overlay: has_element("clockoverlay") && has_element("timeoverlay"),
    };
    let source = match &spec.source {
        VideoSource::Auto => {
            let inv = probe()?;
            match VideoSource::try_from(inv.auto.video_source) {
                Ok(VideoSource::Auto) | Err(_) => VideoSource::Test,
                Ok(s) => s,
            }
        }
        s => s.clone(),
    };
    Ok(match source {
        VideoSource::Auto | VideoSource::Test => test,
        VideoSource::Libcamera(camera) => VideoInput::Libcamera(camera),
        VideoSource::V4l2(path) => {
            let wanted = |name: &str| {
                gst::Caps::builder(name)
                    .field("width", spec.width as i32)
                    .field("height", spec.height as i32)
                    .field("framerate", gst::Fraction::new(spec.fps as i32, 1))
                    .build()
            };
            let cams = monitor("Video/Source");
            let caps = cams
                .iter()
                .find(|d| d.source.as_deref() == Some(&format!("v4l2:{path}")))
                .and_then(|d| d.caps.clone());
            match caps {
                Some(c)
                    if !c.can_intersect(&wanted("video/x-raw"))
                        && c.can_intersect(&wanted("image/jpeg")) =>
                {
                    VideoInput::V4l2Jpeg(path)
                }
                _ => VideoInput::V4l2Raw(path),
            }
        }
    })
}

/// Resolves an audio spec's source to a concrete input (probing devices for `auto`).
pub fn resolve_audio(spec: &AudioSpec) -> Result<AudioInput, MediaError> {
    if let Some(p) = &spec.pipeline {
        return Ok(AudioInput::Custom(p.clone()));
    }
    let source = match &spec.source {
        AudioSource::Auto => {
            super::pipeline::init()?;
            let mics = monitor("Audio/Source");
            first_source(&mics)
                .and_then(|s| AudioSource::try_from(s).ok())
                .unwrap_or(AudioSource::Test)
        }
        s => s.clone(),
    };
    Ok(match source {
        AudioSource::Auto | AudioSource::Test => AudioInput::Test,
        AudioSource::Alsa(d) => AudioInput::Alsa(d),
        AudioSource::Pulse(dev) => AudioInput::Pulse(dev),
    })
}

/// The `sioedge devices` output: a readable table, or JSON with `json`.
pub fn report(json: bool) -> Result<String, MediaError> {
    let inv = probe()?;
    if json {
        return serde_json::to_string_pretty(&inv).map_err(|e| MediaError::Probe(e.to_string()));
    }
    let mut out = String::new();
    let section = |out: &mut String, title: &str, list: &[DeviceInfo], none: &str| {
        let _ = writeln!(out, "{title}:");
        if list.is_empty() {
            let _ = writeln!(out, "  {none}");
        }
        for d in list {
            let src = d.source.as_deref().unwrap_or("(not usable by sioedge)");
            let drv = d
                .driver
                .as_deref()
                .map(|d| format!(", driver {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}\n    source = \"{src}\"   ({}{drv})",
                d.name, d.element
            );
            for f in &d.formats {
                let _ = writeln!(out, "      {f}");
            }
        }
        let _ = writeln!(out);
    };
    section(
        &mut out,
        "Cameras",
        &inv.cameras,
        "no cameras found; `auto` will use the test pattern",
    );
    section(
        &mut out,
        "Microphones",
        &inv.microphones,
        "no microphones found; `auto` will use the test tone",
    );
    let _ = writeln!(out, "Encoders:");
    for e in &inv.encoders {
        let mark = if e.available { "yes" } else { "no " };
        let _ = writeln!(out, "  {:<12} {mark}  {}", e.element, e.purpose);
    }
    let _ = writeln!(
        out,
        "\nauto: video source = \"{}\", H.264 encoder = {}, audio source = \"{}\"",
        inv.auto.video_source,
        inv.auto.h264_encoder.unwrap_or("none"),
        inv.auto.audio_source
    );
    Ok(out)
}
