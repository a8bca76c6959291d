//! Device discovery on this machine: what `sioedge devices` prints and what a track's `source`
//! resolves to. The thin GStreamer side: each device the monitor reports is described as a
//! [`VideoDevice`]/[`AudioDevice`]; [`super::discovery`] merges them into cameras and
//! microphones, [`super::modes`] plans the capture.
//!
//! The monitor shows *all* devices: libcamera's provider hides the V4L2 one, which would leave
//! USB webcams to libcamera (see [`super::libcamera`]). Video and audio are probed separately:
//! resolving a camera never opens the ALSA devices another track may be capturing from.

use super::discovery::{
    self, AudioDevice, Camera, CameraKind, Caps, Microphone, Provider, VideoDevice,
};
use super::error::MediaError;
use super::libcamera::{self, Version};
use super::modes::{self, Mode, Modes, PixelFormat, Rate, Rates, Want};
use super::pipeline::{AudioInput, Encoder, VideoInput};
use super::rpicam::{self, ListedCamera};
use super::spec::{AudioSource, AudioSpec, VIDEO_FPS, VideoSource, VideoSpec};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A camera as `sioedge devices` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraReport {
    /// The merged camera (name, config value, kind, modes).
    #[serde(flatten)]
    pub camera: Camera,
    /// What sioedge would capture from it for the default `[stream.video]` (1280x720 at 30 fps),
    /// or why it cannot.
    pub default_plan: String,
}

/// Everything `sioedge devices` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Video sources, each once, best first (the first usable one is what `auto` uses).
    pub cameras: Vec<CameraReport>,
    /// Audio sources (monitors of outputs excluded), best first.
    pub microphones: Vec<Microphone>,
    /// Encoders and whether this machine has them.
    pub encoders: Vec<EncoderInfo>,
    /// The libcamera version (its GStreamer plugin's), when installed.
    pub libcamera: Option<String>,
    /// What `source = "auto"` and `encoder = "auto"` resolve to.
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
        "H.264, hardware (Raspberry Pi ≤ 4, Zero 2 W; up to 1920x1920)",
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

/// The devices of one class (`Video/Source`, `Audio/Source`), hidden providers included.
fn monitor(class: &str) -> Vec<gst::Device> {
    let m = gst::DeviceMonitor::new();
    m.set_show_all_devices(true);
    m.add_filter(Some(class), None);
    if m.start().is_err() {
        return Vec::new();
    }
    let list = m.devices().into_iter().collect();
    m.stop();
    list
}

fn int_max(v: &gst::glib::SendValue) -> Option<u32> {
    if let Ok(i) = v.get::<i32>() {
        return u32::try_from(i).ok();
    }
    if let Ok(r) = v.get::<gst::IntRange<i32>>() {
        return u32::try_from(r.max()).ok();
    }
    v.get::<gst::List>()
        .ok()
        .and_then(|l| l.iter().filter_map(|x| x.get::<i32>().ok()).max())
        .and_then(|i| u32::try_from(i).ok())
}

fn rate(f: gst::Fraction) -> Option<Rate> {
    Some(Rate {
        num: u32::try_from(f.numer()).ok()?,
        den: u32::try_from(f.denom()).ok().filter(|d| *d > 0)?,
    })
}

fn rates(s: &gst::StructureRef) -> Rates {
    let Ok(v) = s.value("framerate") else {
        // No rate in the caps: the device takes what it is asked.
        return Rates::Range {
            min: Rate::whole(1),
            max: Rate::whole(*VIDEO_FPS.end()),
        };
    };
    if let Ok(f) = v.get::<gst::Fraction>() {
        return Rates::Discrete(rate(f).into_iter().collect());
    }
    if let Ok(r) = v.get::<gst::FractionRange>()
        && let (Some(min), Some(max)) = (rate(r.min()), rate(r.max()))
    {
        return Rates::Range { min, max };
    }
    let list: Vec<Rate> = v
        .get::<gst::List>()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.get::<gst::Fraction>().ok().and_then(rate))
                .collect()
        })
        .unwrap_or_default();
    Rates::Discrete(list)
}

fn formats(s: &gst::StructureRef) -> Vec<String> {
    let Ok(v) = s.value("format") else {
        return Vec::new();
    };
    if let Ok(f) = v.get::<String>() {
        return vec![f];
    }
    v.get::<gst::List>()
        .map(|l| l.iter().filter_map(|x| x.get::<String>().ok()).collect())
        .unwrap_or_default()
}

/// A V4L2 device's modes from its caps (one mode per structure and format; a stepwise size
/// counts as its largest).
pub fn caps_modes(caps: &gst::CapsRef) -> Vec<Mode> {
    let mut modes = Vec::new();
    for s in caps.iter() {
        let (Some(width), Some(height)) = (
            s.value("width").ok().and_then(int_max),
            s.value("height").ok().and_then(int_max),
        ) else {
            continue;
        };
        let kinds: Vec<PixelFormat> = match s.name().as_str() {
            "video/x-raw" => formats(s).into_iter().map(PixelFormat::Raw).collect(),
            "image/jpeg" => vec![PixelFormat::Mjpeg],
            other => vec![PixelFormat::Other(other.to_string())],
        };
        for format in kinds {
            modes.push(Mode {
                format,
                width,
                height,
                rates: rates(s),
            });
        }
    }
    modes
}

/// A libcamera camera's raw formats and largest size from its caps.
pub fn caps_scalable(caps: &gst::CapsRef) -> Caps {
    let (mut all, mut max_width, mut max_height) = (Vec::<String>::new(), 0, 0);
    for s in caps.iter().filter(|s| s.name() == "video/x-raw") {
        for f in formats(s) {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        max_width = max_width.max(s.value("width").ok().and_then(int_max).unwrap_or(0));
        max_height = max_height.max(s.value("height").ok().and_then(int_max).unwrap_or(0));
    }
    Caps::Scalable {
        formats: all,
        max_width,
        max_height,
    }
}

/// A link in `/dev/v4l/by-id` (else `by-path`) to this node, stable across reboots and replugs.
fn stable_link(node: &Path) -> Option<String> {
    ["/dev/v4l/by-id", "/dev/v4l/by-path"]
        .iter()
        .find_map(|dir| {
            let mut links: Vec<_> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| std::fs::canonicalize(p).is_ok_and(|t| t == node))
                .collect();
            links.sort();
            links.first().map(|p| p.display().to_string())
        })
}

fn video_device(device: &gst::Device) -> Option<VideoDevice> {
    let element = device.create_element(None).ok()?;
    let factory = element.factory()?.name().to_string();
    let props = device.properties();
    let props = props.as_deref();
    let caps = device.caps()?;
    let string_prop = |name: &str| -> Option<String> {
        element
            .find_property(name)
            .and_then(|_| element.property_value(name).get::<Option<String>>().ok())
            .flatten()
    };
    let base = VideoDevice {
        provider: Provider::V4l2,
        name: device.display_name().to_string(),
        path: None,
        stable_path: None,
        camera_id: None,
        driver: prop_str(props, "v4l2.device.driver"),
        bus_info: prop_str(props, "v4l2.device.bus_info"),
        vendor_id: prop_str(props, "device.vendor.id"),
        product_id: prop_str(props, "device.product.id"),
        model: prop_str(props, "api.libcamera.Model"),
        caps: Caps::Listed(Vec::new()),
    };
    match factory.as_str() {
        "v4l2src" => {
            let path = string_prop("device").or_else(|| prop_str(props, "device.path"))?;
            let node = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone().into());
            Some(VideoDevice {
                stable_path: stable_link(&node),
                path: Some(node.display().to_string()),
                caps: Caps::Listed(caps_modes(&caps)),
                ..base
            })
        }
        "libcamerasrc" => Some(VideoDevice {
            provider: Provider::Libcamera,
            camera_id: string_prop("camera-name").or_else(|| Some(base.name.clone())),
            caps: caps_scalable(&caps),
            ..base
        }),
        _ => None,
    }
}

/// The libcamera version of the installed GStreamer plugin.
pub fn libcamera_version() -> Option<Version> {
    let plugin = gst::Registry::get().find_plugin("libcamera")?;
    Version::parse(plugin.version().as_str())
}

/// Whether the installed `libcamerasrc` has a property.
fn libcamerasrc_has(property: &str) -> bool {
    gst::ElementFactory::make("libcamerasrc")
        .build()
        .is_ok_and(|e| e.find_property(property).is_some())
}

/// Sensor modes by camera id, listed once per process: the listing acquires every camera, which
/// must not happen while one of our pipelines holds it.
static SENSOR_LISTING: Mutex<Option<Vec<ListedCamera>>> = Mutex::new(None);

/// How long `rpicam-hello --list-cameras` may take.
const LISTING_TIMEOUT: Duration = Duration::from_secs(5);

fn run_listing(program: &str) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--list-cameras")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let until = Instant::now() + LISTING_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!("{program} --list-cameras did not finish; sensor modes unknown");
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

fn sensor_listing() -> Vec<ListedCamera> {
    let mut cached = crate::sync::lock(&SENSOR_LISTING);
    if let Some(list) = cached.as_ref() {
        return list.clone();
    }
    let list = ["rpicam-hello", "libcamera-hello"]
        .iter()
        .find_map(|p| run_listing(p))
        .map(|text| rpicam::parse(&text))
        .unwrap_or_default();
    if !list.is_empty() {
        *cached = Some(list.clone());
    }
    list
}

/// The devices of one class, each as `describe` makes it (those it cannot are left out).
fn described<T>(
    class: &str,
    describe: fn(&gst::Device) -> Option<T>,
) -> Result<Vec<T>, MediaError> {
    super::pipeline::init()?;
    Ok(monitor(class).iter().filter_map(describe).collect())
}

/// Every camera on this machine, once, best first, CSI cameras with their sensor modes.
pub fn cameras() -> Result<Vec<Camera>, MediaError> {
    let mut cams = discovery::cameras(&described("Video/Source", video_device)?);
    if cams.iter().any(|c| c.kind == CameraKind::Csi) {
        let strides = libcamera_version().is_some_and(Version::exports_strides);
        let listing = sensor_listing();
        for cam in &mut cams {
            if let Modes::Isp(isp) = &mut cam.modes {
                isp.exports_strides = strides;
                if let Some(listed) = listing.iter().find(|l| l.id == cam.device) {
                    isp.sensor_modes = listed.modes.clone();
                }
            }
        }
    }
    Ok(cams)
}

fn audio_device(device: &gst::Device) -> Option<AudioDevice> {
    let element = device.create_element(None).ok()?;
    let api = match element.factory()?.name().as_str() {
        "alsasrc" => "alsa",
        "pulsesrc" => "pulse",
        _ => return None,
    };
    let props = device.properties();
    let props = props.as_deref();
    let device_prop = element
        .find_property("device")
        .and_then(|_| {
            element
                .property_value("device")
                .get::<Option<String>>()
                .ok()
        })
        .flatten();
    Some(AudioDevice {
        api: api.into(),
        name: device.display_name().to_string(),
        device: device_prop,
        card_id: prop_str(props, "alsa.id"),
        card_name: prop_str(props, "alsa.card_name"),
        class: prop_str(props, "device.class"),
    })
}

/// Every microphone on this machine, best first.
pub fn microphones() -> Result<Vec<Microphone>, MediaError> {
    Ok(discovery::microphones(&described(
        "Audio/Source",
        audio_device,
    )?))
}

/// The camera a video source names (`auto`: the first usable one).
fn find_camera(source: &VideoSource, cams: &[Camera]) -> Result<Option<Camera>, MediaError> {
    let usable = |c: &&Camera| c.source.is_some();
    let found = match source {
        VideoSource::Auto => cams.iter().find(usable),
        VideoSource::Test => None,
        VideoSource::Libcamera(None) => {
            cams.iter().find(|c| c.kind == CameraKind::Csi).or_else(|| {
                // `libcamera` on a machine whose only libcamera camera is a USB one
                cams.iter().find(|c| usable(c) && !c.also.is_empty())
            })
        }
        VideoSource::Libcamera(Some(id)) => cams
            .iter()
            .find(|c| c.device == *id || c.also.iter().any(|a| a == &format!("libcamera:{id}"))),
        VideoSource::V4l2(path) => {
            let node = std::fs::canonicalize(path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.clone());
            cams.iter().find(|c| c.device == node)
        }
    };
    match (found, source) {
        (Some(c), _) => Ok(Some(c.clone())),
        (None, VideoSource::Auto | VideoSource::Test) => Ok(None),
        (None, VideoSource::Libcamera(_)) if !has_element("libcamerasrc") => {
            Err(MediaError::Probe(
                "libcamerasrc is not installed: install gstreamer1.0-libcamera".into(),
            ))
        }
        (None, s) => Err(MediaError::Probe(format!(
            "no camera {s} found (run `sioedge devices` to list the cameras this user can open)"
        ))),
    }
}

/// Resolves a video spec's source to a concrete input for encoder `enc`: finds the camera and
/// plans the capture. Only video devices are probed.
pub fn resolve_video(spec: &VideoSpec, enc: Encoder) -> Result<VideoInput, MediaError> {
    if let Some(p) = &spec.pipeline {
        return Ok(VideoInput::Custom(p.clone()));
    }
    let test = VideoInput::Test {
        overlay: has_element("clockoverlay") && has_element("timeoverlay"),
    };
    if spec.source == VideoSource::Test {
        return Ok(test);
    }
    let cams = cameras()?;
    let Some(cam) = find_camera(&spec.source, &cams)? else {
        return Ok(test);
    };
    let Some(source) = cam.source.clone() else {
        return Err(MediaError::Probe(format!(
            "{}: {}",
            cam.name,
            cam.problem.unwrap_or_default()
        )));
    };
    let want = Want {
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
    };
    let plan = modes::choose(&cam.modes, want, enc.input()).map_err(|reason| MediaError::Mode {
        camera: format!("{} ({source})", cam.name),
        reason,
    })?;
    Ok(match cam.kind {
        CameraKind::Csi => {
            let af = libcamera::has_autofocus(&cam.name)
                || libcamera::has_autofocus(libcamera::sensor_name(&cam.device));
            VideoInput::Libcamera {
                settings: libcamera::autofocus_setting(spec.autofocus, &libcamerasrc_has, af)
                    .into_iter()
                    .collect(),
                camera: Some(cam.device),
                plan,
            }
        }
        // The configured path as given (a by-id link survives replugging), else the stable one.
        CameraKind::Usb | CameraKind::V4l2 => VideoInput::V4l2 {
            device: match (&spec.source, source) {
                (VideoSource::V4l2(configured), _) => configured.clone(),
                (_, VideoSource::V4l2(path)) => path,
                _ => cam.device,
            },
            plan,
        },
    })
}

/// Resolves an audio spec's source to a concrete input (probing microphones for `auto` only).
pub fn resolve_audio(spec: &AudioSpec) -> Result<AudioInput, MediaError> {
    if let Some(p) = &spec.pipeline {
        return Ok(AudioInput::Custom(p.clone()));
    }
    let source = match &spec.source {
        AudioSource::Auto => microphones()?
            .into_iter()
            .next()
            .map_or(AudioSource::Test, |m| m.source),
        s => s.clone(),
    };
    Ok(match source {
        AudioSource::Auto | AudioSource::Test => AudioInput::Test,
        AudioSource::Alsa(d) => AudioInput::Alsa(d),
        AudioSource::Pulse(dev) => AudioInput::Pulse(dev),
    })
}

/// Enumerates cameras, microphones and encoders.
pub fn probe() -> Result<Inventory, MediaError> {
    let cams = cameras()?;
    let microphones = microphones()?;
    let spec = VideoSpec::default();
    let encoder = Encoder::choose(&spec, &has_element);
    let want = Want {
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
    };
    let cameras = cams
        .into_iter()
        .map(|camera| {
            let default_plan = match (&camera.source, &encoder) {
                (None, _) => camera.problem.clone().unwrap_or_default(),
                (Some(_), Err(e)) => e.clone(),
                (Some(_), Ok(enc)) => match modes::choose(&camera.modes, want, enc.input()) {
                    Ok(plan) => format!("{} → {}", plan.describe(want), enc.element()),
                    Err(e) => e.to_string(),
                },
            };
            CameraReport {
                camera,
                default_plan,
            }
        })
        .collect::<Vec<_>>();
    let auto = AutoChoice {
        video_source: cameras
            .iter()
            .find_map(|c| c.camera.source.clone())
            .map_or("test".into(), String::from),
        h264_encoder: encoder.ok().map(Encoder::element),
        audio_source: microphones
            .first()
            .map_or("test".into(), |m| m.source.to_string()),
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
        libcamera: libcamera_version().map(|v| v.to_string()),
        auto,
    })
}

/// A camera's modes for the human-readable report.
fn mode_lines(modes: &Modes) -> Vec<String> {
    match modes {
        Modes::Listed(list) => list
            .iter()
            .filter(|m| !matches!(m.format, PixelFormat::Other(_)))
            .map(Mode::to_string)
            .collect(),
        Modes::Isp(isp) => {
            let mut lines = vec![format!(
                "{} at any size up to {}x{} (the ISP scales)",
                isp.formats.join("/"),
                isp.max_width,
                isp.max_height
            )];
            if isp.sensor_modes.is_empty() {
                lines.push(
                    "sensor modes unknown (rpicam-hello not found, or the camera is busy)".into(),
                );
            }
            for m in &isp.sensor_modes {
                lines.push(format!("sensor mode {m}"));
            }
            lines
        }
    }
}

/// The `sioedge devices` output: a readable table, or JSON with `json`.
pub fn report(json: bool) -> Result<String, MediaError> {
    let inv = probe()?;
    if json {
        return serde_json::to_string_pretty(&inv).map_err(|e| MediaError::Probe(e.to_string()));
    }
    let mut out = String::from("Cameras:\n");
    if inv.cameras.is_empty() {
        out.push_str("  no cameras found; `auto` will use the test pattern\n");
    }
    for c in &inv.cameras {
        let cam = &c.camera;
        let src = cam
            .source
            .clone()
            .map_or("(not usable by sioedge)".into(), String::from);
        let _ = writeln!(out, "  {}  [{:?}, {}]", cam.name, cam.kind, cam.device);
        let _ = writeln!(out, "    source = \"{src}\"");
        for also in &cam.also {
            let _ = writeln!(out, "    (also listed as {also})");
        }
        for line in mode_lines(&cam.modes) {
            let _ = writeln!(out, "      {line}");
        }
        let _ = writeln!(out, "    1280x720@30 → {}", c.default_plan);
    }
    out.push_str("\nMicrophones:\n");
    if inv.microphones.is_empty() {
        out.push_str("  no microphones found; `auto` will use the test tone\n");
    }
    for m in &inv.microphones {
        let _ = writeln!(out, "  {}\n    source = \"{}\"", m.name, m.source);
    }
    out.push_str("\nEncoders:\n");
    for e in &inv.encoders {
        let mark = if e.available { "yes" } else { "no " };
        let _ = writeln!(out, "  {:<12} {mark}  {}", e.element, e.purpose);
    }
    if let Some(v) = &inv.libcamera {
        let _ = writeln!(out, "\nlibcamera {v}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn libcamera_caps_give_the_isp_formats_and_largest_size() {
        gst::init().unwrap();
        // listed sizes (libcamera ≤ 0.1, as bitsy-ai/printnanny-os#158 shows) and stepped ranges
        let caps = gst::Caps::from_str(
            "video/x-raw, format=NV21, width=160, height=120; \
             video/x-raw, format=NV21, width=1920, height=1080; \
             video/x-raw, format=NV12, width=[ 32, 4608, 2 ], height=[ 32, 2592, 2 ]",
        )
        .unwrap();
        assert_eq!(
            caps_scalable(&caps),
            Caps::Scalable {
                formats: vec!["NV21".into(), "NV12".into()],
                max_width: 4608,
                max_height: 2592
            }
        );
    }
}
