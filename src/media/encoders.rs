//! What each video encoder takes, which ones `encoder = "auto"` tries and in what order, and the
//! fallback to the next one when an encoder keeps failing.

use super::modes::EncoderInput;
use super::pipeline::Encoder;
use super::spec::{BCM2835_CODEC_MAX, BCM2835_CODEC_MIN, VideoCodec, VideoEncoder, VideoSpec};

/// Runs that failed in the encoder, in a row, before `auto` moves on to the next encoder.
pub const FAILURES_BEFORE_FALLBACK: u32 = 3;

impl Encoder {
    /// The raw formats it takes without a software conversion, preferred first. x264 is pinned
    /// because left to negotiate it picks 4:4:4 10-bit, which browsers cannot decode. The Pi
    /// encoder takes I420, NV12 and YUYV (bcm2835-codec's format table), NV12 with the smallest row
    /// alignment (32 bytes, I420 and YUYV 64), so NV12 is what a conversion produces for it.
    pub fn input(self) -> EncoderInput {
        let formats: &'static [&'static str] = match self {
            Encoder::V4l2h264 => &["NV12", "I420", "YUY2"],
            Encoder::X264 => &["I420", "NV12"],
            Encoder::Openh264 => &["I420"],
            Encoder::Jpeg | Encoder::V4l2Jpeg => &["I420", "NV12", "YUY2"],
        };
        EncoderInput { formats }
    }

    /// Whether it encodes frames of this size: the Pi ≤ 4 H.264 encoder takes 32..=1920 pixels
    /// in both directions.
    pub fn takes_size(self, width: u32, height: u32) -> bool {
        match self {
            Encoder::V4l2h264 => [width, height]
                .iter()
                .all(|v| (BCM2835_CODEC_MIN..=BCM2835_CODEC_MAX).contains(v)),
            _ => true,
        }
    }

    /// The encoders a spec may use, in the order `auto` tries them, among those this machine has
    /// (`has(element)`) and that take the configured size. An explicit choice is the only one.
    pub fn candidates(
        spec: &VideoSpec,
        has: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Encoder>, String> {
        use Encoder::*;
        let all: &[Encoder] = match (spec.codec, spec.encoder) {
            (_, VideoEncoder::Mjpeg) => &[Jpeg],
            (_, VideoEncoder::V4l2jpegenc) => &[V4l2Jpeg],
            (VideoCodec::Mjpeg, _) => &[V4l2Jpeg, Jpeg],
            (VideoCodec::H264, VideoEncoder::Auto) => &[V4l2h264, X264, Openh264],
            (VideoCodec::H264, VideoEncoder::V4l2h264enc) => &[V4l2h264],
            (VideoCodec::H264, VideoEncoder::X264) => &[X264],
            (VideoCodec::H264, VideoEncoder::Openh264) => &[Openh264],
        };
        let found: Vec<Encoder> = all
            .iter()
            .copied()
            .filter(|e| has(e.element()) && e.takes_size(spec.width, spec.height))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        Err(match all {
            [one] if !has(one.element()) => format!(
                "encoder element {} is not available on this machine",
                one.element()
            ),
            [one] => format!(
                "{} does not take {}x{} frames",
                one.element(),
                spec.width,
                spec.height
            ),
            [_, Jpeg] => "no JPEG encoder: install gstreamer1.0-plugins-good (jpegenc)".into(),
            _ => "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or \
                  gstreamer1.0-plugins-bad (openh264enc)"
                .into(),
        })
    }
}

/// Which encoder a track uses now, moving to the next candidate after
/// [`FAILURES_BEFORE_FALLBACK`] failed runs of one encoder in a row.
#[derive(Debug, Default)]
pub struct Fallback {
    /// Encoders given up on, with the failure that decided it.
    given_up: Vec<(Encoder, String)>,
    /// Failed runs in a row of the current encoder.
    failures: u32,
}

impl Fallback {
    /// The encoder to use among `candidates`: the first one not given up on (the last one is never
    /// given up on).
    pub fn pick(&self, candidates: &[Encoder]) -> Option<Encoder> {
        candidates
            .iter()
            .copied()
            .find(|c| !self.given_up.iter().any(|(g, _)| g == c))
            .or(candidates.last().copied())
    }

    /// Records a run of `enc` that failed in the encoder; returns the log/status line when this
    /// gives up on it for the next candidate.
    pub fn failed(&mut self, enc: Encoder, reason: &str, candidates: &[Encoder]) -> Option<String> {
        self.failures += 1;
        let next = candidates
            .iter()
            .copied()
            .skip_while(|c| *c != enc)
            .nth(1)?;
        if self.failures < FAILURES_BEFORE_FALLBACK {
            return None;
        }
        self.failures = 0;
        self.given_up.push((enc, reason.to_string()));
        Some(format!(
            "{} failed {FAILURES_BEFORE_FALLBACK} times ({reason}); using {} instead",
            enc.element(),
            next.element()
        ))
    }

    /// Records a run that produced frames (or failed elsewhere than in the encoder).
    pub fn not_the_encoder(&mut self) {
        self.failures = 0;
    }

    /// `fell back from v4l2h264enc: <why>` while a fallback is in effect.
    pub fn note(&self) -> Option<String> {
        self.given_up
            .last()
            .map(|(e, why)| format!("fell back from {}: {why}", e.element()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |e| names.contains(&e)
    }

    #[test]
    fn auto_prefers_hardware_then_x264_then_openh264() {
        let spec = VideoSpec::default();
        let all = only(&["v4l2h264enc", "x264enc", "openh264enc"]);
        assert_eq!(Encoder::choose(&spec, &all), Ok(Encoder::V4l2h264));
        assert_eq!(
            Encoder::choose(&spec, &only(&["x264enc", "openh264enc"])),
            Ok(Encoder::X264)
        );
        assert_eq!(
            Encoder::choose(&spec, &only(&["openh264enc"])),
            Ok(Encoder::Openh264)
        );
        assert!(Encoder::choose(&spec, &only(&[])).is_err());
        let explicit = VideoSpec {
            encoder: VideoEncoder::X264,
            ..Default::default()
        };
        assert_eq!(Encoder::choose(&explicit, &all), Ok(Encoder::X264));
        assert!(
            Encoder::choose(&explicit, &only(&["openh264enc"]))
                .unwrap_err()
                .contains("x264enc")
        );
        let mjpeg = VideoSpec {
            codec: VideoCodec::Mjpeg,
            ..Default::default()
        };
        assert_eq!(
            Encoder::choose(&mjpeg, &only(&["jpegenc"])),
            Ok(Encoder::Jpeg)
        );
        assert_eq!(
            Encoder::choose(&mjpeg, &only(&["jpegenc", "v4l2jpegenc"])),
            Ok(Encoder::V4l2Jpeg)
        );
        assert!(
            Encoder::choose(&mjpeg, &only(&[]))
                .unwrap_err()
                .contains("jpegenc")
        );
    }

    #[test]
    fn auto_skips_the_pi_encoder_above_1920() {
        let pi = only(&["v4l2h264enc", "x264enc", "openh264enc"]);
        let spec = |width, height| VideoSpec {
            width,
            height,
            ..Default::default()
        };
        assert_eq!(
            Encoder::candidates(&spec(1920, 1080), &pi).unwrap(),
            [Encoder::V4l2h264, Encoder::X264, Encoder::Openh264]
        );
        assert_eq!(
            Encoder::candidates(&spec(2304, 1296), &pi).unwrap(),
            [Encoder::X264, Encoder::Openh264]
        );
        // portrait 1080x1920 is inside the limit (1920 on both axes)
        assert_eq!(
            Encoder::candidates(&spec(1080, 1920), &pi).unwrap()[0],
            Encoder::V4l2h264
        );
        let explicit = VideoSpec {
            encoder: VideoEncoder::V4l2h264enc,
            ..spec(2304, 1296)
        };
        let e = Encoder::candidates(&explicit, &pi).unwrap_err();
        assert_eq!(e, "v4l2h264enc does not take 2304x1296 frames");
    }

    #[test]
    fn three_encoder_failures_in_a_row_move_to_the_next_candidate() {
        let c = [Encoder::V4l2h264, Encoder::X264];
        let mut f = Fallback::default();
        assert_eq!(f.pick(&c), Some(Encoder::V4l2h264));
        assert_eq!(f.failed(Encoder::V4l2h264, "busy", &c), None);
        f.not_the_encoder();
        assert_eq!(f.failed(Encoder::V4l2h264, "busy", &c), None);
        assert_eq!(f.failed(Encoder::V4l2h264, "busy", &c), None);
        let msg = f.failed(Encoder::V4l2h264, "enc: device busy", &c).unwrap();
        assert_eq!(
            msg,
            "v4l2h264enc failed 3 times (enc: device busy); using x264enc instead"
        );
        assert_eq!(f.pick(&c), Some(Encoder::X264));
        assert_eq!(
            f.note().as_deref(),
            Some("fell back from v4l2h264enc: enc: device busy")
        );
        // the last candidate is kept, however often it fails
        for _ in 0..5 {
            assert_eq!(f.failed(Encoder::X264, "x", &c), None);
        }
        assert_eq!(f.pick(&c), Some(Encoder::X264));
    }
}
