//! From what the device providers report to the cameras and microphones a user can pick. Pure:
//! `devices.rs` describes each GStreamer device as a [`VideoDevice`]/[`AudioDevice`]; the tests
//! build them from fixtures.
//!
//! Every camera appears once, as the element that can drive it:
//! - USB (UVC) cameras through `v4l2src`. libcamera lists them too (its `uvcvideo` pipeline
//!   handler); that entry is merged into the V4L2 one by USB vendor, product and port.
//! - CSI cameras (an ISP behind them) through `libcamerasrc`. Their V4L2 nodes (`unicam`,
//!   `rp1-cfe`) deliver Bayer data or need media-controller setup, and the ISP, codec and
//!   back-end nodes (`bcm2835-isp`, `bcm2835-codec`, `pispbe`, `rpivid`, `rpi-hevc-dec`) are no
//!   cameras at all: none of them is listed.
//! - Nodes offering nothing sioedge decodes (a webcam's second, H.264-only node; metadata) are
//!   left out.

use super::libcamera::{self, uvc_id};
use super::modes::{Isp, Mode, Modes, PixelFormat};
use super::spec::{AudioSource, VideoSource};
use serde::Serialize;

/// V4L2 drivers whose nodes are never a camera for `v4l2src` (see the module docs).
const NOT_CAMERAS: &[&str] = &[
    "unicam",
    "rp1-cfe",
    "bcm2835-isp",
    "bcm2835-codec",
    "pispbe",
    "rpivid",
    "rpi-hevc-dec",
];

/// Which device provider reported a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `v4l2deviceprovider` (`v4l2src`).
    V4l2,
    /// `libcameraprovider` (`libcamerasrc`).
    Libcamera,
}

/// What a provider's caps say a device delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Caps {
    /// Listed modes (V4L2).
    Listed(Vec<Mode>),
    /// Any size up to a maximum, in these raw formats (libcamera: the ISP scales).
    Scalable {
        /// Raw formats.
        formats: Vec<String>,
        /// Largest width.
        max_width: u32,
        /// Largest height.
        max_height: u32,
    },
}

/// A video device as its provider describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDevice {
    /// The provider.
    pub provider: Provider,
    /// Display name (V4L2: the card name; libcamera: the camera id).
    pub name: String,
    /// V4L2: the device node, canonical (`/dev/video0`).
    pub path: Option<String>,
    /// V4L2: a `/dev/v4l/by-id` (else `by-path`) link to it, stable across reboots.
    pub stable_path: Option<String>,
    /// libcamera: the camera id.
    pub camera_id: Option<String>,
    /// V4L2: kernel driver (`v4l2.device.driver`).
    pub driver: Option<String>,
    /// V4L2: bus (`v4l2.device.bus_info`, e.g. `usb-xhci-hcd.0-1.2`).
    pub bus_info: Option<String>,
    /// USB vendor id (`device.vendor.id`), 4 hex digits.
    pub vendor_id: Option<String>,
    /// USB product id (`device.product.id`).
    pub product_id: Option<String>,
    /// libcamera ≥ 0.5.2: `api.libcamera.Model` (USB product or sensor model).
    pub model: Option<String>,
    /// What it delivers.
    pub caps: Caps,
}

/// How sioedge drives a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// USB (UVC) camera, `v4l2src`.
    Usb,
    /// CSI camera behind a Raspberry Pi ISP, `libcamerasrc`.
    Csi,
    /// Another V4L2 capture device, `v4l2src`.
    V4l2,
}

/// One camera, once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Camera {
    /// What to call it.
    pub name: String,
    /// The config value selecting it; `None` when sioedge cannot drive it.
    pub source: Option<VideoSource>,
    /// How it is driven.
    pub kind: CameraKind,
    /// Device node or camera id.
    pub device: String,
    /// Other names it was reported under (e.g. `libcamera:<id>` for a USB camera).
    pub also: Vec<String>,
    /// Why it cannot be used, when `source` is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What it delivers.
    pub modes: Modes,
}

fn usable(caps: &Caps) -> bool {
    match caps {
        Caps::Listed(modes) => modes
            .iter()
            .any(|m| !matches!(m.format, PixelFormat::Other(_))),
        Caps::Scalable { formats, .. } => !formats.is_empty(),
    }
}

/// The USB port path of a V4L2 bus (`usb-xhci-hcd.0-1.2` → `1.2`).
fn usb_ports(bus_info: &str) -> Option<&str> {
    bus_info
        .strip_prefix("usb-")
        .and_then(|b| b.rsplit_once('-'))
        .map(|(_, ports)| ports)
}

fn v4l2_camera(d: &VideoDevice) -> Option<Camera> {
    let path = d.path.clone()?;
    let driver = d.driver.as_deref().unwrap_or("");
    if NOT_CAMERAS.contains(&driver) || !usable(&d.caps) {
        return None;
    }
    let Caps::Listed(modes) = &d.caps else {
        return None;
    };
    let source = d.stable_path.clone().unwrap_or_else(|| path.clone());
    Some(Camera {
        name: d.name.clone(),
        source: Some(VideoSource::V4l2(source)),
        kind: if driver == "uvcvideo" {
            CameraKind::Usb
        } else {
            CameraKind::V4l2
        },
        device: path,
        also: Vec::new(),
        problem: None,
        modes: Modes::Listed(modes.clone()),
    })
}

/// The V4L2 camera a libcamera UVC entry is: same vendor, product and port; else the only one
/// with that vendor and product; else the one whose card is libcamera's model.
fn same_usb_camera<'a>(
    cams: &'a mut [(Camera, &VideoDevice)],
    id: &libcamera::UsbId,
    model: Option<&str>,
) -> Option<&'a mut Camera> {
    let is = |d: &VideoDevice| {
        d.vendor_id
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            == Some(&id.vendor)
            && d.product_id
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
                == Some(&id.product)
    };
    let by_port = cams
        .iter()
        .position(|(_, d)| is(d) && d.bus_info.as_deref().and_then(usb_ports) == Some(&id.ports));
    let by_ids = || {
        let mut matching = cams.iter().enumerate().filter(|(_, (_, d))| is(d));
        match (matching.next(), matching.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let by_model = || {
        model.and_then(|m| {
            cams.iter()
                .position(|(c, _)| c.kind == CameraKind::Usb && c.name == m)
        })
    };
    let i = by_port.or_else(by_ids).or_else(by_model)?;
    Some(&mut cams[i].0)
}

/// Every camera once, best first: CSI cameras, then USB cameras, then other V4L2 devices (the
/// first is what `source = "auto"` uses).
pub fn cameras(devices: &[VideoDevice]) -> Vec<Camera> {
    let mut v4l2: Vec<(Camera, &VideoDevice)> = Vec::new();
    for d in devices.iter().filter(|d| d.provider == Provider::V4l2) {
        if let Some(c) = v4l2_camera(d)
            && !v4l2.iter().any(|(seen, _)| seen.device == c.device)
        {
            v4l2.push((c, d));
        }
    }
    let mut csi = Vec::new();
    let mut orphans = Vec::new();
    for d in devices.iter().filter(|d| d.provider == Provider::Libcamera) {
        let Some(id) = d.camera_id.clone() else {
            continue;
        };
        if let Some(usb) = uvc_id(&id) {
            match same_usb_camera(&mut v4l2, &usb, d.model.as_deref()) {
                Some(cam) => cam.also.push(format!("libcamera:{id}")),
                None => orphans.push(Camera {
                    name: d.model.clone().unwrap_or_else(|| id.clone()),
                    source: None,
                    kind: CameraKind::Usb,
                    device: id.clone(),
                    also: vec![format!("libcamera:{id}")],
                    problem: Some(
                        "a USB camera only libcamera reports: sioedge drives USB cameras with \
                         v4l2src, and no V4L2 node was found for it (is the user in the `video` \
                         group?)"
                            .into(),
                    ),
                    modes: Modes::Listed(Vec::new()),
                }),
            }
            continue;
        }
        let Caps::Scalable {
            formats,
            max_width,
            max_height,
        } = &d.caps
        else {
            continue;
        };
        csi.push(Camera {
            name: d
                .model
                .clone()
                .unwrap_or_else(|| libcamera::sensor_name(&id).to_string()),
            source: Some(VideoSource::Libcamera(Some(id.clone()))),
            kind: CameraKind::Csi,
            device: id.clone(),
            also: Vec::new(),
            problem: None,
            modes: Modes::Isp(Isp {
                kind: libcamera::isp_kind(&id),
                formats: formats.clone(),
                max_width: *max_width,
                max_height: *max_height,
                sensor_modes: Vec::new(),
                exports_strides: false,
            }),
        });
    }
    let mut v4l2: Vec<Camera> = v4l2.into_iter().map(|(c, _)| c).collect();
    v4l2.sort_by_key(|c| c.kind != CameraKind::Usb);
    csi.into_iter().chain(v4l2).chain(orphans).collect()
}

/// An audio capture device as its provider describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioDevice {
    /// `alsa` or `pulse`.
    pub api: String,
    /// Display name.
    pub name: String,
    /// The element's `device` (`hw:1,0`, or a Pulse source name).
    pub device: Option<String>,
    /// ALSA card id (`alsa.id`, e.g. `Device`): what `CARD=` takes.
    pub card_id: Option<String>,
    /// ALSA card name (`alsa.card_name`, e.g. `USB PnP Sound Device`).
    pub card_name: Option<String>,
    /// `device.class` (`monitor` for Pulse's output monitors).
    pub class: Option<String>,
}

/// One microphone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Microphone {
    /// What to call it.
    pub name: String,
    /// The config value selecting it.
    pub source: AudioSource,
}

/// `alsa:plughw:CARD=<id>,DEV=<n>`: by card name, which survives other cards coming and going
/// (unlike `hw:1,0`), through the plug layer, which converts rates and formats the card lacks.
fn alsa_source(d: &AudioDevice) -> Option<AudioSource> {
    let device = d.device.as_deref()?;
    let dev = device
        .strip_prefix("hw:")
        .and_then(|n| n.split_once(','))
        .map(|(_, dev)| dev);
    Some(AudioSource::Alsa(match (&d.card_id, dev) {
        (Some(card), Some(dev)) => format!("plughw:CARD={card},DEV={dev}"),
        _ => device.to_string(),
    }))
}

/// Microphones, ALSA first (it works under the system service; Pulse only in a desktop session),
/// monitors of outputs left out.
pub fn microphones(devices: &[AudioDevice]) -> Vec<Microphone> {
    let mut mics: Vec<(bool, Microphone)> = devices
        .iter()
        .filter(|d| d.class.as_deref() != Some("monitor"))
        .filter_map(|d| {
            let source = match d.api.as_str() {
                "alsa" => alsa_source(d)?,
                "pulse" => AudioSource::Pulse(d.device.clone()),
                _ => return None,
            };
            let name = d.card_name.clone().unwrap_or_else(|| d.name.clone());
            Some((d.api != "alsa", Microphone { name, source }))
        })
        .collect();
    mics.sort_by_key(|(pulse, _)| *pulse);
    mics.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::modes::{Rate, Rates};

    fn listed(formats: &[&str]) -> Caps {
        Caps::Listed(
            formats
                .iter()
                .map(|f| Mode {
                    format: match *f {
                        "MJPEG" => PixelFormat::Mjpeg,
                        "H264" | "RG10" => PixelFormat::Other(f.to_string()),
                        raw => PixelFormat::Raw(raw.to_string()),
                    },
                    width: 640,
                    height: 480,
                    rates: Rates::Discrete(vec![Rate::whole(30)]),
                })
                .collect(),
        )
    }

    fn v4l2(path: &str, driver: &str, caps: Caps) -> VideoDevice {
        VideoDevice {
            provider: Provider::V4l2,
            name: format!("{driver} {path}"),
            path: Some(path.into()),
            stable_path: None,
            camera_id: None,
            driver: Some(driver.into()),
            bus_info: None,
            vendor_id: None,
            product_id: None,
            model: None,
            caps,
        }
    }

    fn usb(path: &str, name: &str, vid: &str, pid: &str, bus: &str) -> VideoDevice {
        VideoDevice {
            name: name.into(),
            bus_info: Some(bus.into()),
            vendor_id: Some(vid.into()),
            product_id: Some(pid.into()),
            ..v4l2(path, "uvcvideo", listed(&["YUY2", "MJPEG"]))
        }
    }

    fn libcam(id: &str, model: Option<&str>) -> VideoDevice {
        VideoDevice {
            provider: Provider::Libcamera,
            name: id.into(),
            path: None,
            stable_path: None,
            camera_id: Some(id.into()),
            driver: None,
            bus_info: None,
            vendor_id: None,
            product_id: None,
            model: model.map(Into::into),
            caps: Caps::Scalable {
                formats: vec!["NV12".into(), "YUY2".into()],
                max_width: 4608,
                max_height: 2592,
            },
        }
    }

    #[test]
    fn a_pi_4_with_a_csi_camera_and_two_webcams_of_the_same_model() {
        let devices = [
            v4l2("/dev/video0", "unicam", listed(&["YUY2", "RG10"])),
            v4l2("/dev/video13", "bcm2835-isp", listed(&["YUY2"])),
            v4l2("/dev/video10", "bcm2835-codec", listed(&["NV12"])),
            usb(
                "/dev/video2",
                "HD Pro Webcam C920",
                "046d",
                "082d",
                "usb-0000:01:00.0-1.2",
            ),
            usb(
                "/dev/video4",
                "HD Pro Webcam C920",
                "046d",
                "082d",
                "usb-0000:01:00.0-1.3",
            ),
            v4l2("/dev/video3", "uvcvideo", listed(&["H264"])),
            libcam("/base/soc/i2c0mux/i2c@1/imx708@1a", None),
            libcam(
                "/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.3:1.0-046d:082d",
                Some("HD Pro Webcam C920"),
            ),
        ];
        let cams = cameras(&devices);
        let summary: Vec<(Option<String>, CameraKind, Vec<String>)> = cams
            .iter()
            .map(|c| (c.source.clone().map(String::from), c.kind, c.also.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Some("libcamera:/base/soc/i2c0mux/i2c@1/imx708@1a".into()),
                    CameraKind::Csi,
                    vec![]
                ),
                (Some("v4l2:/dev/video2".into()), CameraKind::Usb, vec![]),
                (
                    Some("v4l2:/dev/video4".into()),
                    CameraKind::Usb,
                    vec![
                        "libcamera:/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.3:1.0-046d:082d"
                            .into()
                    ]
                ),
            ]
        );
        assert_eq!(cams[0].name, "imx708");
        assert!(
            matches!(&cams[0].modes, Modes::Isp(i) if i.kind == crate::media::modes::IspKind::Vc4)
        );
    }

    #[test]
    fn stable_paths_are_the_config_value_and_unmatched_uvc_entries_say_why() {
        let mut cam = usb(
            "/dev/video0",
            "USB Camera",
            "0c45",
            "6366",
            "usb-xhci-hcd.0-1",
        );
        cam.stable_path = Some("/dev/v4l/by-id/usb-Microdia_USB_Camera-video-index0".into());
        let orphan = libcam("/base/axi/pcie@120000/rp1/usb@200000-2:1.0-32e4:0317", None);
        let cams = cameras(&[cam, orphan]);
        assert_eq!(
            cams[0].source,
            Some(VideoSource::V4l2(
                "/dev/v4l/by-id/usb-Microdia_USB_Camera-video-index0".into()
            ))
        );
        assert_eq!(cams[0].device, "/dev/video0");
        assert_eq!(cams[1].source, None);
        assert!(cams[1].problem.as_deref().unwrap().contains("v4l2src"));
    }

    #[test]
    fn microphones_by_alsa_card_name_without_monitors() {
        let alsa = AudioDevice {
            api: "alsa".into(),
            name: "USB PnP Sound Device, USB Audio".into(),
            device: Some("hw:2,0".into()),
            card_id: Some("Device".into()),
            card_name: Some("USB PnP Sound Device".into()),
            class: Some("sound".into()),
        };
        let monitor = AudioDevice {
            api: "pulse".into(),
            name: "Monitor of Built-in Audio".into(),
            device: Some("alsa_output.monitor".into()),
            card_id: None,
            card_name: None,
            class: Some("monitor".into()),
        };
        let pulse = AudioDevice {
            name: "Webcam mic".into(),
            device: Some("alsa_input.usb-mic".into()),
            class: Some("sound".into()),
            ..monitor.clone()
        };
        let mics = microphones(&[pulse, monitor, alsa]);
        assert_eq!(
            mics,
            [
                Microphone {
                    name: "USB PnP Sound Device".into(),
                    source: AudioSource::Alsa("plughw:CARD=Device,DEV=0".into())
                },
                Microphone {
                    name: "Webcam mic".into(),
                    source: AudioSource::Pulse(Some("alsa_input.usb-mic".into()))
                }
            ]
        );
    }
}
