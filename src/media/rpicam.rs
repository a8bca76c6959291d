//! The sensor modes of Raspberry Pi CSI cameras, read from `rpicam-hello --list-cameras`
//! (`libcamera-hello` before Bookworm). GStreamer's libcamera provider only reports the ISP's
//! output range; this listing says which readout modes the sensor has and how fast each is.
//!
//! Every form rpicam-apps has printed is accepted:
//! `1536x864 [120.13 fps - (768, 432)/3072x1728 crop]` (current), `1332x990 (120.00 fps)` and
//! plain `2028x1080 2028x1520` (2022).

use super::modes::SensorMode;

/// One camera of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedCamera {
    /// Sensor (or product) name, e.g. `imx708`.
    pub name: String,
    /// libcamera camera id, e.g. `/base/soc/i2c0mux/i2c@1/imx708@1a`.
    pub id: String,
    /// Readout modes, in listing order.
    pub modes: Vec<SensorMode>,
}

/// Bits per pixel named by a mode format such as `SRGGB10_CSI2P`, `R8` or `SBGGR12`.
fn bit_depth(format: &str) -> u32 {
    let name = format.split('_').next().unwrap_or(format);
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

/// `1536x864` → (1536, 864).
fn size(token: &str) -> Option<(u32, u32)> {
    let (w, h) = token.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The frames per second a bracket says (`120.13 fps - …` or `120.00 fps`).
fn fps(bracket: &str) -> Option<f64> {
    let (number, rest) = bracket.trim().split_once(' ')?;
    rest.trim_start()
        .starts_with("fps")
        .then(|| number.parse().ok())
        .flatten()
}

/// Adds the modes named on one line (after `'FORMAT' :` when present) with `depth`.
fn modes_of(line: &str, depth: u32, out: &mut Vec<SensorMode>) {
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        match c {
            '[' | '(' => {
                let close = if c == '[' { ']' } else { ')' };
                let end = rest.find(close).unwrap_or(rest.len());
                if let (Some(f), Some(last)) = (fps(&rest[1..end]), out.last_mut()) {
                    last.max_fps = Some(f);
                }
                rest = rest.get(end + 1..).unwrap_or("");
            }
            c if c.is_ascii_digit() => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '(')
                    .unwrap_or(rest.len());
                if let Some((width, height)) = size(&rest[..end]) {
                    out.push(SensorMode {
                        width,
                        height,
                        bit_depth: depth,
                        max_fps: None,
                    });
                }
                rest = &rest[end..];
            }
            _ => rest = &rest[c.len_utf8()..],
        }
    }
}

/// Parses a `--list-cameras` listing (log lines around it are ignored).
pub fn parse(text: &str) -> Vec<ListedCamera> {
    let mut cameras: Vec<ListedCamera> = Vec::new();
    let mut depth = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        let header = trimmed
            .split_once(" : ")
            .filter(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()));
        if let Some((_, rest)) = header
            && let (Some(open), Some(close)) = (rest.rfind('('), rest.rfind(')'))
            && open < close
        {
            let name = rest[..open].split('[').next().unwrap_or("").trim();
            cameras.push(ListedCamera {
                name: name.to_string(),
                id: rest[open + 1..close].to_string(),
                modes: Vec::new(),
            });
            continue;
        }
        let Some(camera) = cameras.last_mut() else {
            continue;
        };
        let mut body = trimmed.strip_prefix("Modes:").unwrap_or(trimmed).trim();
        if let Some(quoted) = body.strip_prefix('\'')
            && let Some((format, after)) = quoted.split_once('\'')
        {
            depth = bit_depth(format);
            body = after.trim_start().strip_prefix(':').unwrap_or(after);
        } else if !body.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        modes_of(body, depth, &mut camera.modes);
    }
    cameras
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: u32, height: u32, bit_depth: u32, max_fps: Option<f64>) -> SensorMode {
        SensorMode {
            width,
            height,
            bit_depth,
            max_fps,
        }
    }

    #[test]
    fn current_listing_with_rates_and_crops() {
        // raspberrypi/documentation, camera/rpicam_options_common.adoc (`list-cameras`)
        let text = "Available cameras
-----------------
0 : imx219 [3280x2464] (/base/soc/i2c0mux/i2c@1/imx219@10)
    Modes: 'SRGGB10_CSI2P' : 640x480 [206.65 fps - (1000, 752)/1280x960 crop]
                             1640x1232 [41.85 fps - (0, 0)/3280x2464 crop]
           'SRGGB8' : 640x480 [206.65 fps - (1000, 752)/1280x960 crop]
1 : imx477 [4056x3040] (/base/soc/i2c0mux/i2c@1/imx477@1a)
    Modes: 'SRGGB10_CSI2P' : 1332x990 [120.05 fps - (696, 528)/2664x1980 crop]
           'SRGGB12_CSI2P' : 2028x1080 [50.03 fps - (0, 440)/4056x2160 crop]
";
        let cams = parse(text);
        assert_eq!(cams.len(), 2);
        assert_eq!(cams[0].name, "imx219");
        assert_eq!(cams[0].id, "/base/soc/i2c0mux/i2c@1/imx219@10");
        assert_eq!(
            cams[0].modes,
            [
                m(640, 480, 10, Some(206.65)),
                m(1640, 1232, 10, Some(41.85)),
                m(640, 480, 8, Some(206.65))
            ]
        );
        assert_eq!(
            cams[1].modes,
            [
                m(1332, 990, 10, Some(120.05)),
                m(2028, 1080, 12, Some(50.03))
            ]
        );
    }

    #[test]
    fn older_listings_and_uvc_entries() {
        // raspberrypi/rpicam-apps#312 and #215
        let with_rates = "0 : imx477 [4056x3040] (/base/soc/i2c0mux/i2c@1/imx477@1a)
    Modes: 'SRGGB10_CSI2P' : 1332x990 (120.00 fps)
           'SRGGB12_CSI2P' : 2028x1080 (50.00 fps), 2028x1520 (40.00 fps), 4056x3040 (10.00 fps)";
        let cams = parse(with_rates);
        assert_eq!(cams[0].modes.len(), 4);
        assert_eq!(cams[0].modes[3], m(4056, 3040, 12, Some(10.0)));
        let plain = "0 : imx477 [4056x3040] (/base/soc/i2c0mux/i2c@1/imx477@1a)
    Modes: 'SRGGB10_CSI2P' : 1332x990 
           'SRGGB12_CSI2P' : 2028x1080 2028x1520 4056x3040";
        assert_eq!(parse(plain)[0].modes[1], m(2028, 1080, 12, None));
        // a USB camera listed by libcamera (mavlink/mavlink-camera-manager#66); its name has a colon
        let uvc = "1 : H264 USB Camera: USB Camera [1920x1080] (/base/soc/usb@7e980000/usb1@1-1.2:1.0-32e4:9422)
    Modes: 'MJPEG'  : 320x240 352x288";
        let cams = parse(uvc);
        assert_eq!(cams[0].name, "H264 USB Camera: USB Camera");
        assert_eq!(
            cams[0].id,
            "/base/soc/usb@7e980000/usb1@1-1.2:1.0-32e4:9422"
        );
        assert_eq!(cams[0].modes, [m(320, 240, 0, None), m(352, 288, 0, None)]);
        assert!(parse("No cameras available!").is_empty());
    }
}
