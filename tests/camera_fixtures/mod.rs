//! The real camera listings in `tests/fixtures/devices/` and the board profiles in
//! `target-configs/boards/`, turned into what sioedge's discovery and mode choice take.
//!
//! A fixture is `key: value` header lines (`source` is the public page it was copied from,
//! `listing` how to read the text), a `---` line, then the listing exactly as published:
//! `v4l2-ctl --list-formats-ext` (old and new layouts), GStreamer caps (`gst-device-monitor-1.0`
//! or a v4l2src caps dump), `rpicam-hello --list-cameras`, or libcamera's `cam --list`.
#![allow(dead_code)] // each test crate uses a different subset

use gstreamer as gst;
use sioedge::media::discovery::{self, Camera, Caps, Provider, VideoDevice};
use sioedge::media::modes::{IspKind, Mode, Modes, PixelFormat, Rate, Rates};
use sioedge::media::{devices, rpicam};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One listing.
pub struct Fixture {
    /// File name.
    pub file: String,
    /// Header fields.
    pub header: BTreeMap<String, String>,
    /// The listing, verbatim.
    pub body: String,
}

/// Every fixture, by file name.
pub fn load_all() -> Vec<Fixture> {
    let dir = root().join("tests/fixtures/devices");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/devices")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files.iter().map(|p| load(p)).collect()
}

fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let (head, body) = text.split_once("\n---\n").expect("header, ---, listing");
    let header = head
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fixture {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        header,
        body: body.to_string(),
    }
}

/// The YUV formats the Raspberry Pi ISPs write, as libcamera's GStreamer provider reports them
/// (bcm2835-isp's format table in raspberrypi/linux bcm2835-isp-fmts.h; PiSP writes the same).
pub const ISP_FORMATS: &[&str] = &[
    "I420", "YV12", "NV12", "NV21", "YUY2", "UYVY", "YVYU", "VYUY",
];

impl Fixture {
    /// A header field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.header.get(key).map(String::as_str)
    }

    fn field(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    /// The device(s) the listing shows, as the device monitor would describe them.
    pub fn devices(&self) -> Vec<VideoDevice> {
        match self.get("listing").expect("listing") {
            "v4l2-ctl" => vec![self.v4l2(Caps::Listed(v4l2_ctl_modes(&self.body)))],
            "gst-caps" | "gst-device-monitor" => {
                let caps = self.gst_caps().expect("caps parse");
                vec![self.v4l2(Caps::Listed(devices::caps_modes(&caps)))]
            }
            "rpicam" => rpicam::parse(&self.body)
                .into_iter()
                .map(|cam| libcamera_device(&cam.id, cam.modes.iter().map(|m| (m.width, m.height))))
                .collect(),
            "cam-list" => self
                .body
                .lines()
                .filter_map(|l| l.rsplit_once(" (").map(|(_, id)| id.trim_end_matches(')')))
                .filter(|id| is_camera_id(id))
                .map(|id| libcamera_device(id, std::iter::empty()))
                .collect(),
            other => panic!("{}: unknown listing {other}", self.file),
        }
    }

    fn v4l2(&self, caps: Caps) -> VideoDevice {
        VideoDevice {
            provider: Provider::V4l2,
            name: self.field("name").expect("name"),
            path: self.field("path"),
            stable_path: None,
            camera_id: None,
            driver: self.field("driver"),
            bus_info: self.field("bus"),
            vendor_id: self.field("vendor"),
            product_id: self.field("product"),
            model: None,
            caps,
        }
    }

    /// A GStreamer caps listing as caps (`gst-device-monitor-1.0`'s `caps :` block or one
    /// structure per line).
    pub fn gst_caps(&self) -> Option<gst::Caps> {
        let text: Vec<&str> = self
            .body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("name") && !l.starts_with("class") && !l.is_empty())
            .map(|l| l.strip_prefix("caps  :").unwrap_or(l).trim())
            .map(|l| l.trim_end_matches(';').trim())
            .collect();
        gst::Caps::from_str(&text.join("; ")).ok()
    }

    /// CSI cameras' sensor modes by camera id.
    pub fn sensor_modes(&self) -> Vec<rpicam::ListedCamera> {
        if self.get("listing") == Some("rpicam") {
            rpicam::parse(&self.body)
        } else {
            Vec::new()
        }
    }

    /// The cameras discovery makes of this listing, CSI ones with their sensor modes and, as on
    /// a Raspberry Pi OS whose libcamera predates 0.5.1, without exported strides.
    pub fn cameras(&self) -> Vec<Camera> {
        let mut cams = discovery::cameras(&self.devices());
        let listing = self.sensor_modes();
        for cam in &mut cams {
            if let Modes::Isp(isp) = &mut cam.modes
                && let Some(l) = listing.iter().find(|l| l.id == cam.device)
            {
                isp.sensor_modes = l.modes.clone();
            }
        }
        cams
    }
}

fn is_camera_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(' ')
}

/// A libcamera camera as the provider reports it: the ISP's formats at any size up to the
/// sensor's (its largest readout mode).
fn libcamera_device(id: &str, sizes: impl Iterator<Item = (u32, u32)>) -> VideoDevice {
    let (max_width, max_height) = sizes.max_by_key(|(w, h)| w * h).unwrap_or((0, 0));
    VideoDevice {
        provider: Provider::Libcamera,
        name: id.to_string(),
        path: None,
        stable_path: None,
        camera_id: Some(id.to_string()),
        driver: None,
        bus_info: None,
        vendor_id: None,
        product_id: None,
        model: None,
        caps: Caps::Scalable {
            formats: ISP_FORMATS.iter().map(|f| f.to_string()).collect(),
            max_width,
            max_height,
        },
    }
}

/// The GStreamer format of a V4L2 fourcc (gst-plugins-good sys/v4l2/gstv4l2object.c's table,
/// for the fourccs the fixtures use); compressed and Bayer ones are not raw video.
fn format_of(fourcc: &str) -> PixelFormat {
    match fourcc {
        "YUYV" => PixelFormat::Raw("YUY2".into()),
        "YU12" => PixelFormat::Raw("I420".into()),
        "NV12" | "NV21" | "UYVY" | "YVYU" => PixelFormat::Raw(fourcc.into()),
        "MJPG" | "JPEG" => PixelFormat::Mjpeg,
        other => PixelFormat::Other(other.into()),
    }
}

/// Modes of a `v4l2-ctl --list-formats-ext` listing (`[0]: 'YUYV' (…)` and the older
/// `Pixel Format: 'YUYV'` layout; discrete sizes and intervals).
pub fn v4l2_ctl_modes(text: &str) -> Vec<Mode> {
    let mut modes: Vec<Mode> = Vec::new();
    let mut format = None;
    for line in text.lines().map(str::trim) {
        let quoted = |l: &str| l.split('\'').nth(1).map(format_of);
        if line.starts_with('[') && line.contains("]: '") || line.starts_with("Pixel Format:") {
            format = quoted(line);
        } else if let Some(size) = line.strip_prefix("Size: Discrete ") {
            let (w, h) = size.split_once('x').expect("WxH");
            modes.push(Mode {
                format: format.clone().expect("format before size"),
                width: w.parse().expect("width"),
                height: h.parse().expect("height"),
                rates: Rates::Discrete(Vec::new()),
            });
        } else if let Some(interval) = line.strip_prefix("Interval: Discrete ") {
            // "0.033s (30.000 fps)": the rate is the reciprocal of the interval, as 1/30.
            let fps: f64 = interval
                .split('(')
                .nth(1)
                .and_then(|f| f.split(' ').next())
                .and_then(|f| f.parse().ok())
                .expect("fps");
            let rate = if fps.fract() == 0.0 {
                Rate::whole(fps as u32)
            } else {
                Rate {
                    num: (fps * 2.0).round() as u32,
                    den: 2,
                }
            };
            if let Some(Mode {
                rates: Rates::Discrete(list),
                ..
            }) = modes.last_mut()
            {
                list.push(rate);
            }
        }
    }
    modes
}

/// A board profile (`target-configs/boards/NAME.board`) and what that board has.
pub struct Board {
    /// Profile name.
    pub name: String,
    /// `KEY=value` lines.
    pub profile: BTreeMap<String, String>,
    /// Encoder elements present on it.
    pub elements: Vec<&'static str>,
    /// Its ISP, for CSI cameras (none on generic boards).
    pub isp: Option<IspKind>,
}

impl Board {
    /// Whether the board has an element.
    pub fn has(&self, element: &str) -> bool {
        self.elements.contains(&element)
    }
}

/// Every board profile, once per Raspberry Pi hardware generation it runs on (`PI_HARDWARE`:
/// `vc4` = Pi ≤ 4 with the bcm2835 encoder and the VC4 ISP, `pisp` = Pi 5 with no hardware H.264;
/// a profile for both, such as the 32-bit one, gives two boards named `profile (vc4)` and
/// `profile (pisp)`). Profiles without it are generic boards with software encoders and no ISP.
pub fn boards() -> Vec<Board> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("target-configs/boards"))
        .expect("boards")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "board"))
        .collect();
    paths.sort();
    let mut boards = Vec::new();
    for p in &paths {
        let profile: BTreeMap<String, String> = std::fs::read_to_string(p)
            .expect("profile")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
            .collect();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let hardware: Vec<IspKind> = profile
            .get("PI_HARDWARE")
            .map(|h| {
                h.split_whitespace()
                    .map(|k| match k {
                        "vc4" => IspKind::Vc4,
                        "pisp" => IspKind::Pisp,
                        other => panic!("{name}: unknown PI_HARDWARE {other}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let software = vec!["x264enc", "openh264enc", "jpegenc"];
        if hardware.is_empty() {
            boards.push(Board {
                name,
                profile,
                elements: software,
                isp: None,
            });
            continue;
        }
        for &isp in &hardware {
            let mut elements = software.clone();
            if isp == IspKind::Vc4 {
                elements.extend(["v4l2h264enc", "v4l2jpegenc"]);
            }
            boards.push(Board {
                name: match hardware.len() {
                    1 => name.clone(),
                    _ => format!(
                        "{name} ({})",
                        if isp == IspKind::Vc4 { "vc4" } else { "pisp" }
                    ),
                },
                profile: profile.clone(),
                elements,
                isp: Some(isp),
            });
        }
    }
    boards
}
