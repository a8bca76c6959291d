//! Which mode to ask of a camera, and how to get from it to the configured picture.
//!
//! Pure (no GStreamer): a camera's modes and the request in, a [`Plan`] out. `devices.rs` feeds it
//! from the device monitor, `pipeline.rs` turns the plan into launch syntax, and the tests feed it
//! the mode lists of real cameras (`tests/fixtures/devices/`).
//!
//! The rules, for a V4L2 camera (USB webcams):
//! - only modes that reach the configured rate count (a mode listing 30, 25 and 15 fps reaches
//!   25; it is pinned at 25 — or at 30, then `videorate` drops to 25, when 25 is not listed);
//! - among those, sizes of the configured aspect ratio first; then the size nearest the configured
//!   one (by area ratio, the larger of two equally near ones: a 4K MJPEG stream is not decoded in
//!   software to make 2304x1296 when 1920x1080 is nearer); `videoscale` does the rest, with black
//!   borders when the aspect differs;
//! - at that size a raw format when one reaches the rate (the encoder's own formats first, so
//!   nothing is converted in software), else MJPEG (`jpegdec`);
//! - no mode reaching the rate is an error that lists the camera's best modes.
//!
//! For an ISP-backed camera (libcamera on a Raspberry Pi): the ISP scales to the configured size
//! itself, in a format the encoder takes. libcamera picks the sensor mode from the output size
//! (`CameraData::findBestFormat` in raspberrypi/libcamera `pipeline/rpi/common/pipeline_base.cpp`);
//! [`predict_sensor_mode`] follows the same rule so the rate can be checked against that mode.
//! libcamera before 0.5.1 hands out buffers without their real row stride (`GstVideoMeta` came
//! with "gstreamer: Add GstVideoMeta support", first in v0.5.1): widths the ISP pads come out
//! sheared, so the width asked of the ISP is rounded up to its alignment and cropped back.

use serde::Serialize;
use std::fmt;

/// A frame rate, as the fraction V4L2 and GStreamer use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rate {
    /// Frames…
    pub num: u32,
    /// …per this many seconds.
    pub den: u32,
}

impl Rate {
    /// `n` frames per second.
    pub const fn whole(n: u32) -> Rate {
        Rate { num: n, den: 1 }
    }

    /// Frames per second.
    pub fn fps(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }

    /// Whether this rate delivers `fps` (1 % slack: 30000/1001 counts as 30).
    fn reaches(self, fps: u32) -> bool {
        self.fps() >= f64::from(fps) * 0.99
    }
}

/// `30`, or `7.50` for fractional rates.
fn fps_text(fps: f64) -> String {
    if fps.fract() == 0.0 {
        format!("{fps}")
    } else {
        format!("{fps:.2}")
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fps_text(self.fps()))
    }
}

/// How a camera delivers its pictures in one mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PixelFormat {
    /// Uncompressed, by its GStreamer `video/x-raw` format name (`YUY2`, `NV12`, `I420`, …).
    Raw(String),
    /// Motion JPEG (`image/jpeg`), decoded with `jpegdec`.
    Mjpeg,
    /// Something sioedge does not decode (H.264 from the camera, Bayer, metadata).
    Other(String),
}

impl PixelFormat {
    fn usable(&self) -> bool {
        !matches!(self, PixelFormat::Other(_))
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PixelFormat::Raw(name) | PixelFormat::Other(name) => f.write_str(name),
            PixelFormat::Mjpeg => f.write_str("MJPEG"),
        }
    }
}

/// The frame rates of one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Rates {
    /// Exactly these (UVC cameras list them).
    Discrete(Vec<Rate>),
    /// Anything in between (stepwise frame intervals).
    Range {
        /// Slowest.
        min: Rate,
        /// Fastest.
        max: Rate,
    },
}

impl Rates {
    /// The fastest rate, in frames per second.
    pub fn max_fps(&self) -> f64 {
        match self {
            Rates::Discrete(list) => list.iter().map(|r| r.fps()).fold(0.0, f64::max),
            Rates::Range { max, .. } => max.fps(),
        }
    }

    /// The rate to pin for `fps`: `fps` itself when offered, else the slowest faster one.
    fn pin(&self, fps: u32) -> Option<Rate> {
        match self {
            Rates::Discrete(list) => list
                .iter()
                .copied()
                .filter(|r| r.reaches(fps))
                .min_by(|a, b| a.fps().total_cmp(&b.fps())),
            Rates::Range { min, max } if max.reaches(fps) => Some(if min.fps() > f64::from(fps) {
                *min
            } else {
                Rate::whole(fps)
            }),
            Rates::Range { .. } => None,
        }
    }
}

impl fmt::Display for Rates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rates::Discrete(list) => {
                let mut sorted = list.clone();
                sorted.sort_by(|a, b| b.fps().total_cmp(&a.fps()));
                sorted.dedup();
                let rates: Vec<String> = sorted.iter().map(Rate::to_string).collect();
                f.write_str(&rates.join(", "))
            }
            Rates::Range { min, max } => write!(f, "{min}..{max}"),
        }
    }
}

/// One format, size and set of rates a camera offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mode {
    /// Pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates at this format and size.
    pub rates: Rates,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} @ {}",
            self.format, self.width, self.height, self.rates
        )
    }
}

/// A sensor readout mode of a CSI camera (`rpicam-hello --list-cameras`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SensorMode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel of the readout.
    pub bit_depth: u32,
    /// Fastest frame rate, when the listing says.
    pub max_fps: Option<f64>,
}

impl fmt::Display for SensorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} {}-bit", self.width, self.height, self.bit_depth)?;
        if let Some(fps) = self.max_fps {
            write!(f, " @ {fps:.2}")?;
        }
        Ok(())
    }
}

/// Which Raspberry Pi ISP sits behind a libcamera camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IspKind {
    /// Pi ≤ 4 and Zero 2 W: bcm2835-isp, rows aligned to 32 bytes (64 for packed 4:2:2)
    /// (`bytesperline_align` in raspberrypi/linux bcm2835-isp-fmts.h).
    Vc4,
    /// Pi 5: PiSP, rows aligned to 64 bytes, the Y row of I420 to twice the chroma row
    /// (`compute_optimal_stride` in raspberrypi/libpisp, `computeOptimalStride` in libcamera's
    /// pipeline/rpi/pisp/pisp.cpp).
    Pisp,
}

impl IspKind {
    /// The widths (pixels) this ISP writes without padding its rows, for a format.
    pub fn width_alignment(self, format: &str) -> u32 {
        match (self, format) {
            (IspKind::Vc4, _) => 32,
            (IspKind::Pisp, "I420" | "YV12") => 128,
            (IspKind::Pisp, "YUY2" | "UYVY" | "YVYU" | "VYUY") => 32,
            (IspKind::Pisp, _) => 64,
        }
    }
}

/// An ISP-backed camera: scales to any size up to the sensor's, in any of `formats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Isp {
    /// Which ISP.
    pub kind: IspKind,
    /// Raw formats it outputs (GStreamer names).
    pub formats: Vec<String>,
    /// Largest output width.
    pub max_width: u32,
    /// Largest output height.
    pub max_height: u32,
    /// The sensor's readout modes (empty when unknown: the rate is then not checked).
    pub sensor_modes: Vec<SensorMode>,
    /// libcamera ≥ 0.5.1: buffers carry their real strides, any width is safe.
    pub exports_strides: bool,
}

/// What a camera can deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Modes {
    /// A V4L2 device: exactly these modes.
    Listed(Vec<Mode>),
    /// A libcamera camera behind a Raspberry Pi ISP.
    Isp(Isp),
}

/// What the encoder takes: raw formats without conversion, preferred first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderInput {
    /// The formats.
    pub formats: &'static [&'static str],
}

/// The configured picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// What the source is asked for (its caps filter).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pin {
    /// Format.
    pub format: PixelFormat,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Rate.
    pub rate: Rate,
}

/// One conversion between the source and the encoder, in pipeline order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    /// `jpegdec`.
    DecodeJpeg,
    /// `videorate` (drops or repeats frames to the configured rate).
    Rate,
    /// `videocrop`: columns the ISP added for its row alignment.
    Crop {
        /// Columns removed on the left.
        left: u32,
        /// Columns removed on the right.
        right: u32,
    },
    /// `videoscale` to the configured size (black borders keep the aspect ratio).
    Scale,
    /// `videoconvert` to a format the encoder takes.
    Convert,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DecodeJpeg => f.write_str("jpegdec"),
            Step::Rate => f.write_str("videorate"),
            Step::Crop { left, right } => write!(f, "videocrop {left}+{right}"),
            Step::Scale => f.write_str("videoscale"),
            Step::Convert => f.write_str("videoconvert"),
        }
    }
}

/// The decision for one camera and one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// What the source is pinned to.
    pub pin: Pin,
    /// ISP cameras: the sensor mode libcamera is expected to choose.
    pub sensor_mode: Option<SensorMode>,
    /// Conversions, in order.
    pub steps: Vec<Step>,
    /// Formats the encoder may receive (one unless a decoder's output decides).
    pub formats: Vec<&'static str>,
}

impl Plan {
    /// One line for logs, `/api/status` and `sioedge devices`, e.g.
    /// `MJPEG 1280x720@30 → jpegdec → videoscale → I420/NV12 1024x576@25`.
    pub fn describe(&self, want: Want) -> String {
        let mut s = format!(
            "{} {}x{}@{}",
            self.pin.format, self.pin.width, self.pin.height, self.pin.rate
        );
        if let Some(m) = &self.sensor_mode {
            s.push_str(&format!(" (sensor {m})"));
        }
        for step in &self.steps {
            s.push_str(&format!(" → {step}"));
        }
        s.push_str(&format!(
            " → {} {}x{}@{}",
            self.formats.join("/"),
            want.width,
            want.height,
            want.fps
        ));
        s
    }
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoPlan {
    /// Every mode is in a format sioedge cannot decode.
    #[error(
        "the camera offers no format sioedge can use ({formats}); raw video or MJPEG is needed"
    )]
    NoUsableFormat {
        /// The formats it does offer.
        formats: String,
    },
    /// No mode reaches the configured rate.
    #[error(
        "the camera cannot deliver {fps} fps at any size; its fastest modes: {best}; lower fps"
    )]
    TooFast {
        /// The configured rate.
        fps: u32,
        /// Its best modes, fastest first.
        best: String,
    },
    /// libcamera would pick a sensor mode that cannot reach the rate at this size.
    #[error(
        "at {width}x{height} libcamera reads the sensor as {mode}, which cannot deliver {fps} fps; \
         sensor modes: {modes}; lower fps or the size"
    )]
    SensorTooSlow {
        /// Configured width.
        width: u32,
        /// Configured height.
        height: u32,
        /// Configured rate.
        fps: u32,
        /// The sensor mode libcamera would use.
        mode: String,
        /// All sensor modes.
        modes: String,
    },
}

/// Chooses how to capture `want` from a camera with `modes` for `encoder`.
pub fn choose(modes: &Modes, want: Want, encoder: EncoderInput) -> Result<Plan, NoPlan> {
    match modes {
        Modes::Listed(list) => choose_listed(list, want, encoder),
        Modes::Isp(isp) => choose_isp(isp, want, encoder),
    }
}

fn same_aspect(w: u32, h: u32, want: Want) -> bool {
    let (a, b) = (
        u64::from(w) * u64::from(want.height),
        u64::from(h) * u64::from(want.width),
    );
    a.abs_diff(b) * 100 <= b
}

/// How far a size is from the wanted one: |ln(area ratio)|, in thousandths (smaller is nearer).
fn distance(w: u32, h: u32, want: Want) -> u64 {
    let ratio = (f64::from(w) * f64::from(h)) / (f64::from(want.width) * f64::from(want.height));
    (ratio.ln().abs() * 1000.0).round() as u64
}

/// The `n` fastest usable modes (then largest), for messages.
pub fn best_modes(list: &[Mode], n: usize) -> String {
    let mut usable: Vec<&Mode> = list.iter().filter(|m| m.format.usable()).collect();
    usable.sort_by(|a, b| {
        b.rates
            .max_fps()
            .total_cmp(&a.rates.max_fps())
            .then((b.width * b.height).cmp(&(a.width * a.height)))
    });
    let best: Vec<String> = usable
        .iter()
        .take(n)
        .map(|m| {
            format!(
                "{} {}x{}@{}",
                m.format,
                m.width,
                m.height,
                fps_text(m.rates.max_fps())
            )
        })
        .collect();
    best.join(", ")
}

fn choose_listed(list: &[Mode], want: Want, encoder: EncoderInput) -> Result<Plan, NoPlan> {
    let usable: Vec<&Mode> = list.iter().filter(|m| m.format.usable()).collect();
    if usable.is_empty() {
        let mut formats: Vec<String> = list.iter().map(|m| m.format.to_string()).collect();
        formats.sort();
        formats.dedup();
        return Err(NoPlan::NoUsableFormat {
            formats: formats.join(", "),
        });
    }
    let reaching: Vec<(&Mode, Rate)> = usable
        .iter()
        .filter_map(|m| m.rates.pin(want.fps).map(|r| (*m, r)))
        .collect();
    if reaching.is_empty() {
        return Err(NoPlan::TooFast {
            fps: want.fps,
            best: best_modes(list, 4),
        });
    }
    let aspect_ok = reaching
        .iter()
        .any(|(m, _)| same_aspect(m.width, m.height, want));
    let sizes: Vec<(u32, u32)> = reaching
        .iter()
        .filter(|(m, _)| !aspect_ok || same_aspect(m.width, m.height, want))
        .map(|(m, _)| (m.width, m.height))
        .collect();
    let size = sizes
        .iter()
        .min_by_key(|&&(w, h)| (distance(w, h, want), u64::MAX - u64::from(w) * u64::from(h)))
        .copied()
        .ok_or_else(|| NoPlan::TooFast {
            fps: want.fps,
            best: best_modes(list, 4),
        })?;
    // At that size: raw in the encoder's own formats, then any raw, then MJPEG.
    let rank = |m: &Mode| match &m.format {
        PixelFormat::Raw(f) => encoder
            .formats
            .iter()
            .position(|e| e == f)
            .unwrap_or(encoder.formats.len()),
        _ => encoder.formats.len() + 1,
    };
    let (mode, rate) = reaching
        .iter()
        .filter(|(m, _)| (m.width, m.height) == size)
        .min_by_key(|(m, r)| (rank(m), r.num * 1000 / r.den.max(1)))
        .copied()
        .ok_or_else(|| NoPlan::TooFast {
            fps: want.fps,
            best: best_modes(list, 4),
        })?;
    let mut steps = Vec::new();
    let direct = match &mode.format {
        PixelFormat::Raw(f) => encoder.formats.iter().copied().find(|e| e == f),
        _ => None,
    };
    if mode.format == PixelFormat::Mjpeg {
        steps.push(Step::DecodeJpeg);
    }
    let faster = rate.fps() > f64::from(want.fps);
    let slower = rate.fps() < f64::from(want.fps);
    if faster {
        steps.push(Step::Rate);
    }
    if (mode.width, mode.height) != (want.width, want.height) {
        steps.push(Step::Scale);
    }
    if slower {
        steps.push(Step::Rate);
    }
    let formats = match direct {
        Some(f) => vec![f],
        None => {
            steps.push(Step::Convert);
            match mode.format {
                // jpegdec gives I420 or Y42B: let videoconvert pass I420 (or NV12) through.
                PixelFormat::Mjpeg => encoder
                    .formats
                    .iter()
                    .copied()
                    .filter(|f| *f != "YUY2")
                    .collect(),
                _ => vec![encoder.formats[0]],
            }
        }
    };
    Ok(Plan {
        pin: Pin {
            format: mode.format.clone(),
            width: mode.width,
            height: mode.height,
            rate,
        },
        sensor_mode: None,
        steps,
        formats,
    })
}

/// libcamera's sensor-mode score for an output size (lower is better): closeness in each
/// dimension (a larger mode costs an eighth per pixel, a smaller one a full pixel; inexact sizes
/// count double), a heavy aspect-ratio penalty and 500 per bit away from 12-bit readout. The same
/// rule as `CameraData::scoreFormat`/`findBestFormat` in raspberrypi/libcamera.
fn sensor_score(mode: &SensorMode, width: u32, height: u32) -> f64 {
    fn closeness(desired: f64, actual: f64) -> f64 {
        let mut score = desired - actual;
        if score < 0.0 {
            score = -score / 8.0;
        }
        if actual != desired {
            score *= 2.0;
        }
        score
    }
    let want_ar = f64::from(width) / f64::from(height);
    let mode_ar = f64::from(mode.width) / f64::from(mode.height);
    closeness(f64::from(width), f64::from(mode.width))
        + closeness(f64::from(height), f64::from(mode.height))
        + 1500.0 * closeness(want_ar, mode_ar)
        + 500.0 * f64::from(mode.bit_depth.abs_diff(12))
}

/// The sensor mode libcamera's Raspberry Pi pipeline picks for an output of `width`×`height`
/// (the last of equal scores wins, as there).
pub fn predict_sensor_mode(modes: &[SensorMode], width: u32, height: u32) -> Option<SensorMode> {
    let mut best: Option<(f64, SensorMode)> = None;
    for m in modes {
        let score = sensor_score(m, width, height);
        if best.is_none_or(|(b, _)| score <= b) {
            best = Some((score, *m));
        }
    }
    best.map(|(_, m)| m)
}

fn choose_isp(isp: &Isp, want: Want, encoder: EncoderInput) -> Result<Plan, NoPlan> {
    let native: Vec<&'static str> = encoder
        .formats
        .iter()
        .copied()
        .filter(|f| isp.formats.iter().any(|i| i == f))
        .collect();
    let Some(&first) = native.first() else {
        return Err(NoPlan::NoUsableFormat {
            formats: isp.formats.join(", "),
        });
    };
    // Without real strides, prefer a format whose alignment the width already meets.
    let aligned = |f: &str| want.width.is_multiple_of(isp.kind.width_alignment(f));
    let format = if isp.exports_strides {
        first
    } else {
        native.iter().copied().find(|f| aligned(f)).unwrap_or(first)
    };
    let mut width = want.width.min(isp.max_width);
    let height = want.height.min(isp.max_height);
    let mut steps = Vec::new();
    if !isp.exports_strides && !aligned(format) {
        let align = isp.kind.width_alignment(format);
        let padded = want.width.div_ceil(align) * align;
        if padded <= isp.max_width {
            let extra = padded - want.width;
            // Even split, keeping 4:2:x chroma pairs whole.
            let left = extra / 2 / 2 * 2;
            steps.push(Step::Crop {
                left,
                right: extra - left,
            });
            width = padded;
        }
    }
    if steps.is_empty() && (width, height) != (want.width, want.height) {
        steps.push(Step::Scale);
    }
    let sensor_mode = predict_sensor_mode(&isp.sensor_modes, width, height);
    if let Some(m) = sensor_mode
        && let Some(max) = m.max_fps
        && max < f64::from(want.fps) * 0.99
    {
        let modes: Vec<String> = isp.sensor_modes.iter().map(|m| m.to_string()).collect();
        return Err(NoPlan::SensorTooSlow {
            width: want.width,
            height: want.height,
            fps: want.fps,
            mode: m.to_string(),
            modes: modes.join(", "),
        });
    }
    Ok(Plan {
        pin: Pin {
            format: PixelFormat::Raw(format.to_string()),
            width,
            height,
            rate: Rate::whole(want.fps),
        },
        sensor_mode,
        steps,
        formats: vec![format],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const X264: EncoderInput = EncoderInput {
        formats: &["I420", "NV12"],
    };
    const PI: EncoderInput = EncoderInput {
        formats: &["NV12", "I420", "YUY2"],
    };

    fn mode(format: PixelFormat, w: u32, h: u32, rates: &[u32]) -> Mode {
        Mode {
            format,
            width: w,
            height: h,
            rates: Rates::Discrete(rates.iter().map(|&r| Rate::whole(r)).collect()),
        }
    }
    fn yuy2() -> PixelFormat {
        PixelFormat::Raw("YUY2".into())
    }
    fn want(width: u32, height: u32, fps: u32) -> Want {
        Want { width, height, fps }
    }

    /// A typical USB 2.0 webcam: raw only up to 640x480 at full rate, MJPEG at every size.
    fn webcam() -> Modes {
        Modes::Listed(vec![
            mode(yuy2(), 640, 480, &[30, 15]),
            mode(yuy2(), 1280, 720, &[10, 5]),
            mode(yuy2(), 1920, 1080, &[5]),
            mode(PixelFormat::Mjpeg, 640, 480, &[30]),
            mode(PixelFormat::Mjpeg, 1280, 720, &[30, 15]),
            mode(PixelFormat::Mjpeg, 1920, 1080, &[30]),
            mode(PixelFormat::Other("H264".into()), 1920, 1080, &[30]),
        ])
    }

    #[test]
    fn raw_when_it_reaches_the_rate_mjpeg_when_not() {
        let p = choose(&webcam(), want(640, 480, 15), PI).unwrap();
        assert_eq!(p.pin.format, yuy2());
        assert_eq!(
            (p.pin.width, p.pin.height, p.pin.rate),
            (640, 480, Rate::whole(15))
        );
        // YUY2 goes to the Pi encoder as it is: no software conversion, nothing else
        assert_eq!(p.steps, vec![]);
        assert_eq!(p.formats, vec!["YUY2"]);
        let p = choose(&webcam(), want(1280, 720, 30), PI).unwrap();
        assert_eq!(p.pin.format, PixelFormat::Mjpeg);
        assert_eq!((p.pin.width, p.pin.height), (1280, 720));
        assert_eq!(p.steps, vec![Step::DecodeJpeg, Step::Convert]);
        assert_eq!(p.formats, vec!["NV12", "I420"]);
        // x264 does not take YUY2: converted
        let p = choose(&webcam(), want(640, 480, 30), X264).unwrap();
        assert_eq!(p.steps, vec![Step::Convert]);
        assert_eq!(p.formats, vec!["I420"]);
    }

    #[test]
    fn nearest_size_of_the_same_aspect_at_the_rate_then_scaled_and_rate_converted() {
        // 960x540@25: 1280x720 MJPEG (listed 30 and 15) pinned at 30, dropped to 25, scaled
        let p = choose(&webcam(), want(960, 540, 25), PI).unwrap();
        assert_eq!(
            (p.pin.format.clone(), p.pin.width, p.pin.height, p.pin.rate),
            (PixelFormat::Mjpeg, 1280, 720, Rate::whole(30))
        );
        assert_eq!(
            p.steps,
            vec![Step::DecodeJpeg, Step::Rate, Step::Scale, Step::Convert]
        );
        assert_eq!(
            p.describe(want(960, 540, 25)),
            "MJPEG 1280x720@30 → jpegdec → videorate → videoscale → videoconvert → NV12/I420 960x540@25"
        );
        // bigger than every mode: the largest, upscaled
        let p = choose(&webcam(), want(2304, 1296, 30), X264).unwrap();
        assert_eq!((p.pin.width, p.pin.height), (1920, 1080));
        // between two: the nearer by area, not the larger (4K MJPEG is too much to decode)
        let uhd = Modes::Listed(vec![
            mode(PixelFormat::Mjpeg, 1920, 1080, &[30]),
            mode(PixelFormat::Mjpeg, 3840, 2160, &[30]),
        ]);
        let p = choose(&uhd, want(2304, 1296, 30), X264).unwrap();
        assert_eq!((p.pin.width, p.pin.height), (1920, 1080));
        let p = choose(&uhd, want(3200, 1800, 30), X264).unwrap();
        assert_eq!((p.pin.width, p.pin.height), (3840, 2160));
        // no 16:9 mode reaches the rate: another aspect (borders added by videoscale)
        let only_4_3 = Modes::Listed(vec![mode(yuy2(), 640, 480, &[30])]);
        let p = choose(&only_4_3, want(1920, 1080, 30), X264).unwrap();
        assert_eq!((p.pin.width, p.pin.height), (640, 480));
        assert_eq!(p.steps, vec![Step::Scale, Step::Convert]);
    }

    #[test]
    fn unreachable_rates_and_unusable_formats_are_errors_naming_the_best_modes() {
        let e = choose(&webcam(), want(1280, 720, 60), X264).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the camera cannot deliver 60 fps at any size; its fastest modes: MJPEG 1920x1080@30, \
             MJPEG 1280x720@30, YUY2 640x480@30, MJPEG 640x480@30; lower fps"
        );
        let h264 = Modes::Listed(vec![mode(
            PixelFormat::Other("H264".into()),
            1920,
            1080,
            &[30],
        )]);
        let e = choose(&h264, want(1280, 720, 30), X264).unwrap_err();
        assert!(matches!(e, NoPlan::NoUsableFormat { .. }), "{e}");
    }

    #[test]
    fn stepwise_rates_pin_the_wanted_rate() {
        let m = Modes::Listed(vec![Mode {
            format: PixelFormat::Raw("I420".into()),
            width: 1280,
            height: 720,
            rates: Rates::Range {
                min: Rate::whole(1),
                max: Rate::whole(90),
            },
        }]);
        let p = choose(&m, want(1280, 720, 25), X264).unwrap();
        assert_eq!(p.pin.rate, Rate::whole(25));
        assert!(p.steps.is_empty(), "{:?}", p.steps);
    }

    fn imx708(kind: IspKind, exports_strides: bool) -> Modes {
        let m = |width, height, fps| SensorMode {
            width,
            height,
            bit_depth: 10,
            max_fps: Some(fps),
        };
        Modes::Isp(Isp {
            kind,
            formats: vec!["NV12".into(), "I420".into(), "YUY2".into()],
            max_width: 4608,
            max_height: 2592,
            sensor_modes: vec![
                m(1536, 864, 120.13),
                m(2304, 1296, 56.03),
                m(4608, 2592, 14.35),
            ],
            exports_strides,
        })
    }

    #[test]
    fn isp_scales_itself_and_the_sensor_mode_follows_libcamera() {
        let p = choose(&imx708(IspKind::Vc4, false), want(1280, 720, 30), PI).unwrap();
        assert_eq!(p.pin.format, PixelFormat::Raw("NV12".into()));
        assert_eq!((p.pin.width, p.pin.height), (1280, 720));
        assert_eq!(p.sensor_mode.map(|m| m.width), Some(1536));
        assert!(p.steps.is_empty());
        let p = choose(&imx708(IspKind::Pisp, false), want(1920, 1080, 30), X264).unwrap();
        assert_eq!(p.sensor_mode.map(|m| m.width), Some(2304));
        // 4608x2592 reads at 14 fps: 30 fps at full size is refused, naming the modes
        let e = choose(&imx708(IspKind::Pisp, false), want(4608, 2592, 30), X264).unwrap_err();
        assert!(e.to_string().contains("4608x2592 10-bit @ 14.35"), "{e}");
    }

    #[test]
    fn old_libcamera_gets_widths_the_isp_does_not_pad() {
        // 960 is not a multiple of 128 (PiSP I420) but is of 64 (PiSP NV12): x264 gets NV12
        let p = choose(&imx708(IspKind::Pisp, false), want(960, 540, 25), X264).unwrap();
        assert_eq!(p.pin.format, PixelFormat::Raw("NV12".into()));
        assert_eq!(p.pin.width, 960);
        assert!(p.steps.is_empty());
        let openh264 = EncoderInput { formats: &["I420"] };
        // (ISP, strides exported, width wanted) → width asked of the ISP, columns cropped
        for (kind, strides, width, asked, crop) in [
            // openh264 takes I420 only: 1024 wide asked, cropped back to 960
            (IspKind::Pisp, false, 960, 1024, Some((32, 32))),
            // libcamera ≥ 0.5.1 exports the stride: any width
            (IspKind::Pisp, true, 960, 960, None),
            // Pi 4: 32 columns
            (IspKind::Vc4, false, 1000, 1024, Some((12, 12))),
        ] {
            let p = choose(&imx708(kind, strides), want(width, 562, 25), openh264).unwrap();
            assert_eq!(p.pin.width, asked, "{kind:?} {width}");
            let expected: Vec<Step> = crop
                .map(|(left, right)| Step::Crop { left, right })
                .into_iter()
                .collect();
            assert_eq!(p.steps, expected, "{kind:?} {width}");
        }
    }

    #[test]
    fn rates_print_as_frames_per_second() {
        assert_eq!(Rate { num: 15, den: 2 }.to_string(), "7.50");
        assert_eq!(Rate::whole(30).to_string(), "30");
        assert_eq!(
            Rates::Discrete(vec![Rate::whole(15), Rate::whole(30)]).to_string(),
            "30, 15"
        );
    }
}
