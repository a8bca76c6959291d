//! What sioedge needs to know about libcamera and its GStreamer element, as pure functions of what
//! the machine reports: camera ids, the plugin version, the element's property names.
//!
//! Facts relied on (raspberrypi/libcamera):
//! - A camera's GStreamer device name is `Camera::id()` (src/gstreamer/gstlibcameraprovider.cpp).
//!   A CSI sensor's id is its firmware node, e.g. `/base/soc/i2c0mux/i2c@1/imx708@1a` on a Pi ≤ 4
//!   and `/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a` on a Pi 5 (`CameraSensor::generateId`);
//!   a UVC camera's is `<controller node>-<ports>:<config>.<interface>-<vendor>:<product>`, e.g.
//!   `/base/soc/usb@7e980000/usb1@1-1.2:1.0-32e4:9422` (`UVCCameraData::generateId`).
//! - The provider hides the V4L2 provider (`gst_device_provider_hide_provider(provider,
//!   "v4l2deviceprovider")`), so USB webcams show up as libcamera cameras unless the monitor
//!   shows all devices.
//! - The plugin's version is libcamera's (`GST_PLUGIN_DEFINE(..., VERSION, ...)`), e.g.
//!   `0.3.2+rpt20240927` or `0.7.0`.
//! - Buffers carry `GstVideoMeta` (their real strides) from 0.5.1 on.
//! - Autofocus: up to 0.3 the element has `auto-focus-mode` (`AfModeContinuous`), and setting it
//!   on a camera without autofocus is an element error; from 0.4 every control is a property
//!   (`af-mode=continuous`) and one the camera lacks is ignored with a warning.
//! - Sensors with autofocus have an `rpi.af` section in their tuning files: imx708 (all Camera
//!   Module 3 variants) and ov64a40.

use super::modes::IspKind;
use std::fmt;

/// A libcamera version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses a plugin version such as `0.3.2+rpt20240927`, `v0.5.0+53-29156679` or `0.7.0`.
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['+', '-', ' ']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Version(major, minor, patch))
    }

    /// Buffers carry their real strides (`GstVideoMeta`): any width is safe.
    pub fn exports_strides(self) -> bool {
        self >= Version(0, 5, 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A USB camera's place and identity, from its libcamera id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbId {
    /// Hub port path, e.g. `1.2`.
    pub ports: String,
    /// Vendor id, 4 hex digits, e.g. `046d`.
    pub vendor: String,
    /// Product id, e.g. `0825`.
    pub product: String,
}

fn hex4(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Some` when a libcamera camera id is a UVC camera's (`…-<ports>:<cfg>.<if>-<vid>:<pid>`).
pub fn uvc_id(id: &str) -> Option<UsbId> {
    let (rest, ids) = id.rsplit_once('-')?;
    let (vendor, product) = ids.split_once(':')?;
    if !hex4(vendor) || !hex4(product) {
        return None;
    }
    let usb = rest.rsplit_once('-').map_or(rest, |(_, usb)| usb);
    let (ports, interface) = usb.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.split('.').all(|p| p.parse::<u32>().is_ok());
    if !digits(ports) || !digits(interface) {
        return None;
    }
    Some(UsbId {
        ports: ports.to_string(),
        vendor: vendor.to_ascii_lowercase(),
        product: product.to_ascii_lowercase(),
    })
}

/// The sensor a CSI camera id names: `imx708` for `/base/soc/i2c0mux/i2c@1/imx708@1a`.
pub fn sensor_name(id: &str) -> &str {
    let node = id.rsplit('/').next().unwrap_or(id);
    node.split('@').next().unwrap_or(node)
}

/// The ISP behind a CSI camera: the Pi 5's sensors sit behind RP1.
pub fn isp_kind(id: &str) -> IspKind {
    if id.split('/').any(|n| n == "rp1") {
        IspKind::Pisp
    } else {
        IspKind::Vc4
    }
}

/// Whether a sensor (by name or libcamera model, e.g. `imx708_wide`) has autofocus.
pub fn has_autofocus(sensor: &str) -> bool {
    sensor.starts_with("imx708") || sensor.starts_with("ov64a40")
}

/// The `libcamerasrc` property setting that turns continuous autofocus on, for an element with
/// the given properties (`has_property`) and a sensor with or without autofocus. `None` when
/// nothing should be set (autofocus off, no such property, or an old element on a fixed-focus
/// camera, where setting it would be an error).
pub fn autofocus_setting(
    wanted: bool,
    has_property: &dyn Fn(&str) -> bool,
    sensor_has_af: bool,
) -> Option<&'static str> {
    if !wanted {
        None
    } else if has_property("af-mode") {
        Some("af-mode=continuous")
    } else if has_property("auto-focus-mode") && sensor_has_af {
        Some("auto-focus-mode=AfModeContinuous")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_the_plugins_raspberry_pi_os_ships() {
        let v = |s| Version::parse(s);
        assert_eq!(v("0.3.2+rpt20240927"), Some(Version(0, 3, 2)));
        assert_eq!(v("v0.4.0+53-29156679"), Some(Version(0, 4, 0)));
        assert_eq!(v("0.7.0"), Some(Version(0, 7, 0)));
        assert_eq!(v("0.0.3"), Some(Version(0, 0, 3)));
        assert_eq!(v("unknown"), None);
        assert!(!Version(0, 5, 0).exports_strides());
        assert!(Version(0, 5, 1).exports_strides());
        assert!(Version(0, 7, 1).exports_strides());
    }

    #[test]
    fn uvc_ids_are_told_from_csi_ids() {
        // libcamera-hello --list-cameras on a Pi with a USB camera (mavlink/mavlink-camera-manager#66)
        assert_eq!(
            uvc_id("/base/soc/usb@7e980000/usb1@1-1.2:1.0-32e4:9422"),
            Some(UsbId {
                ports: "1.2".into(),
                vendor: "32e4".into(),
                product: "9422".into()
            })
        );
        // cam --list on a laptop (kbingham/libcamera#23)
        assert_eq!(
            uvc_id(r"\_SB_.PCI0.XHC_.RHUB.HS05-5:1.2-0408:5251").map(|u| u.ports),
            Some("5".into())
        );
        for csi in [
            "/base/soc/i2c0mux/i2c@1/imx708@1a",
            "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a",
            "/base/axi/pcie@120000/rp1/i2c@80000/imx585@1A",
        ] {
            assert_eq!(uvc_id(csi), None, "{csi}");
        }
    }

    #[test]
    fn sensors_isps_and_autofocus() {
        assert_eq!(sensor_name("/base/soc/i2c0mux/i2c@1/imx708@1a"), "imx708");
        assert_eq!(isp_kind("/base/soc/i2c0mux/i2c@1/imx708@1a"), IspKind::Vc4);
        assert_eq!(
            isp_kind("/base/axi/pcie@1000120000/rp1/i2c@80000/imx477@1a"),
            IspKind::Pisp
        );
        assert!(has_autofocus("imx708_wide_noir"));
        assert!(!has_autofocus("imx477"));
        let new = |p: &str| p == "af-mode";
        let old = |p: &str| p == "auto-focus-mode";
        let none = |_: &str| false;
        assert_eq!(
            autofocus_setting(true, &new, false),
            Some("af-mode=continuous")
        );
        assert_eq!(
            autofocus_setting(true, &old, true),
            Some("auto-focus-mode=AfModeContinuous")
        );
        // old element, fixed-focus camera: setting it would stop the pipeline
        assert_eq!(autofocus_setting(true, &old, false), None);
        assert_eq!(autofocus_setting(false, &new, true), None);
        assert_eq!(autofocus_setting(true, &none, true), None);
    }
}
