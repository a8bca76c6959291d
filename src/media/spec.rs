//! Track descriptions as they appear in the config file (`[stream.video]`, `[stream.audio]`).
//!
//! These are plain serde structs with defaults, so an empty `[stream.video]` table means "the first
//! camera, 1280×720 at 30 fps, H.264 at 2 Mbit/s, a keyframe every second". They are independent of
//! GStreamer (available without the `media` feature) so that `check-config` works in relay-only builds.
//! [`VideoSpec::validate`] and [`AudioSpec::validate`] catch values serde cannot (ranges, codec and
//! encoder combinations) and name the offending field; the config layer attaches the file position.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::RangeInclusive;

// Limits, in one place: validation, error messages, the example config's comments (checked by
// `the_example_config_documents_these_limits`) and the mode choice all read these.

/// Smallest frame width and height (pixels).
pub const VIDEO_SIZE_MIN: u32 = 16;
/// Largest frame width (pixels).
pub const VIDEO_WIDTH_MAX: u32 = 7680;
/// Largest frame height (pixels).
pub const VIDEO_HEIGHT_MAX: u32 = 4320;
/// Frames per second a track may ask for.
pub const VIDEO_FPS: RangeInclusive<u32> = 1..=120;
/// H.264 target bitrates (kbit/s).
pub const VIDEO_BITRATE_KBPS: RangeInclusive<u32> = 16..=100_000;
/// Seconds between keyframes.
pub const KEYFRAME_INTERVAL_S: RangeInclusive<f64> = 0.1..=60.0;
/// The Raspberry Pi ≤ 4 hardware codec takes frames of at most this width *and* height: the
/// bcm2835-codec driver's `MAX_W_CODEC`/`MAX_H_CODEC` (raspberrypi/linux,
/// drivers/staging/vc04_services/bcm2835-codec/bcm2835-v4l2-codec.c).
pub const BCM2835_CODEC_MAX: u32 = 1920;
/// ... and at least this (`MIN_W`/`MIN_H` of the same driver).
pub const BCM2835_CODEC_MIN: u32 = 32;
/// Sample rates Opus encodes.
pub const OPUS_SAMPLE_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];
/// Opus bitrates (kbit/s).
pub const OPUS_BITRATE_KBPS: RangeInclusive<u32> = 6..=510;
/// PCM sample rates.
pub const PCM_SAMPLE_RATES: RangeInclusive<u32> = 8000..=96_000;
/// Audio frame durations (ms), Opus and PCM alike.
pub const AUDIO_FRAME_MS: [u32; 2] = [10, 20];

/// Where video frames come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VideoSource {
    /// The first camera GStreamer's device monitor finds (libcamera first, then V4L2), else `Test`.
    Auto,
    /// A moving SMPTE pattern with a wall clock and a running-time overlay (read latency off a frame).
    Test,
    /// A CSI camera through libcamera (`libcamerasrc`): the Raspberry Pi camera modules on
    /// Bookworm. `libcamera` takes the first camera, `libcamera:<camera name>` a given one.
    Libcamera(Option<String>),
    /// A V4L2 capture device such as a USB UVC webcam (`v4l2:/dev/video0`), raw or MJPEG.
    V4l2(String),
}

/// Where audio samples come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioSource {
    /// The first microphone GStreamer's device monitor finds, else `Test`.
    Auto,
    /// A tick every second (`audiotestsrc wave=ticks`), handy to check A/V sync against the video clock.
    Test,
    /// An ALSA capture device, best by card name (`alsa:plughw:CARD=Device,DEV=0`; `alsa:hw:1,0`
    /// works too; plain `alsa` is `alsa:default`): Pi OS Lite has no PipeWire, and the packaged
    /// service no desktop session.
    Alsa(String),
    /// A PulseAudio/PipeWire source (desktop Pi OS): `pulse` for the default, `pulse:<name>`. Needs
    /// the sound server of a logged-in user session: not available to the system service.
    Pulse(Option<String>),
}

/// Which H.264/MJPEG encoder element to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoEncoder {
    /// For H.264: `v4l2h264enc` when the board has the hardware encoder (Pi ≤ 4, Zero 2 W), else
    /// `x264enc`, else `openh264enc`. For MJPEG: `v4l2jpegenc` if present, else `jpegenc`.
    Auto,
    /// The Raspberry Pi ≤ 4 hardware encoder (V4L2 M2M, `/dev/video11`).
    V4l2h264enc,
    /// Software x264 tuned for latency (zerolatency, ultrafast, no B-frames).
    X264,
    /// Software OpenH264 (Cisco), lighter than x264 on small cores.
    Openh264,
    /// `jpegenc`; implies `codec = "mjpeg"`.
    Mjpeg,
    /// The Raspberry Pi ≤ 4 hardware JPEG encoder; implies `codec = "mjpeg"`.
    V4l2jpegenc,
}

/// Encoded video format carried to viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// H.264 constrained-baseline, Annex B, one access unit per frame, SPS/PPS before each keyframe.
    H264,
    /// One JPEG picture per frame (every frame is a keyframe; heavy on bandwidth).
    Mjpeg,
}

/// Encoded audio format carried to viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// Opus packets of `frame_ms` each.
    Opus,
    /// Interleaved S16LE PCM chunks of `frame_ms` each.
    Pcm,
}

/// What Opus optimises for (`opusenc audio-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpusApplication {
    /// Music and mixed content.
    Generic,
    /// Speech.
    Voice,
    /// CELT only: the smallest algorithmic delay (about 2.5 ms less than the others).
    Lowdelay,
}

/// The video track of a stream (`[stream.video]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoSpec {
    /// Track id within the stream (default `video`).
    pub id: String,
    /// `"auto"`, `"test"`, `"libcamera[:<name>]"` or `"v4l2:/dev/videoN"`. Ignored when `pipeline` is set.
    pub source: VideoSource,
    /// Frame width in pixels (even, 16..=7680).
    pub width: u32,
    /// Frame height in pixels (even, 16..=4320).
    pub height: u32,
    /// Frames per second asked from the source (1..=120).
    pub fps: u32,
    /// `"auto"`, `"v4l2h264enc"`, `"x264"`, `"openh264"`, `"mjpeg"` (jpegenc) or `"v4l2jpegenc"`.
    pub encoder: VideoEncoder,
    /// `"h264"` or `"mjpeg"`.
    pub codec: VideoCodec,
    /// Target bitrate of the H.264 encoders in kbit/s (16..=100000).
    pub bitrate_kbps: u32,
    /// Seconds between H.264 keyframes (0.1..=60). Late joiners wait at most this long for a picture.
    pub keyframe_interval: f64,
    /// Continuous autofocus on CSI cameras that have it (Camera Module 3); `false` leaves the lens
    /// where libcamera puts it. Cameras without autofocus ignore it.
    pub autofocus: bool,
    /// Escape hatch: a `gst-launch-1.0` fragment that produces raw video (e.g.
    /// `"v4l2src device=/dev/video2 ! video/x-raw,format=YUY2"`). sioedge appends the conversion to
    /// `width`×`height`, the encoder and its sink. Replaces `source`.
    pub pipeline: Option<String>,
}

impl Default for VideoSpec {
    fn default() -> Self {
        VideoSpec {
            id: "video".into(),
            source: VideoSource::Auto,
            width: 1280,
            height: 720,
            fps: 30,
            encoder: VideoEncoder::Auto,
            codec: VideoCodec::H264,
            bitrate_kbps: 2000,
            keyframe_interval: 1.0,
            autofocus: true,
            pipeline: None,
        }
    }
}

/// The audio track of a stream (`[stream.audio]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSpec {
    /// Track id within the stream (default `audio`).
    pub id: String,
    /// `"auto"`, `"test"`, `"alsa[:<device>]"` or `"pulse[:<name>]"`. Ignored when `pipeline` is set.
    pub source: AudioSource,
    /// `"opus"` or `"pcm"`.
    pub codec: AudioCodec,
    /// Samples per second (Opus: 8000, 12000, 16000, 24000 or 48000; PCM: 8000..=96000).
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: u32,
    /// Opus bitrate in kbit/s (6..=510). Ignored for PCM.
    pub bitrate_kbps: u32,
    /// Duration of one frame in milliseconds: 10 (lower latency) or 20 (less overhead).
    pub frame_ms: u32,
    /// `"generic"`, `"voice"` or `"lowdelay"` (Opus only).
    pub application: OpusApplication,
    /// Escape hatch: a `gst-launch-1.0` fragment that produces raw audio (e.g.
    /// `"alsasrc device=hw:2 buffer-time=40000"`). sioedge appends conversion, encoder and sink.
    /// Replaces `source`.
    pub pipeline: Option<String>,
}

impl Default for AudioSpec {
    fn default() -> Self {
        AudioSpec {
            id: "audio".into(),
            source: AudioSource::Auto,
            codec: AudioCodec::Opus,
            sample_rate: 48000,
            channels: 1,
            bitrate_kbps: 32,
            frame_ms: 20,
            application: OpusApplication::Lowdelay,
            pipeline: None,
        }
    }
}

/// A value in a track spec that cannot work. `field` is the TOML key, for the config layer's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    /// The offending key, e.g. `"width"`.
    pub field: &'static str,
    /// What is wrong with it and what is allowed.
    pub problem: String,
}

fn check(ok: bool, field: &'static str, problem: impl FnOnce() -> String) -> Result<(), SpecError> {
    if ok {
        Ok(())
    } else {
        Err(SpecError {
            field,
            problem: problem(),
        })
    }
}

fn check_pipeline(pipeline: &Option<String>) -> Result<(), SpecError> {
    if let Some(p) = pipeline {
        check(!p.trim().is_empty(), "pipeline", || {
            "must not be empty (remove the key to use `source`)".into()
        })?;
        check(!p.contains("appsink"), "pipeline", || {
            "must produce raw media only; sioedge adds the encoder and the appsink".into()
        })?;
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), SpecError> {
    check(
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "id",
        || format!("{id:?} must be non-empty ASCII letters, digits, '-' or '_'"),
    )
}

impl VideoSpec {
    /// Checks ranges and combinations; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_id(&self.id)?;
        for (field, v, max) in [
            ("width", self.width, VIDEO_WIDTH_MAX),
            ("height", self.height, VIDEO_HEIGHT_MAX),
        ] {
            check(
                (VIDEO_SIZE_MIN..=max).contains(&v) && v % 2 == 0,
                field,
                || format!("{v} is not an even number of pixels in {VIDEO_SIZE_MIN}..={max}"),
            )?;
        }
        check(VIDEO_FPS.contains(&self.fps), "fps", || {
            format!("{} is outside {VIDEO_FPS:?}", self.fps)
        })?;
        check(
            VIDEO_BITRATE_KBPS.contains(&self.bitrate_kbps),
            "bitrate_kbps",
            || format!("{} is outside {VIDEO_BITRATE_KBPS:?}", self.bitrate_kbps),
        )?;
        let ki = self.keyframe_interval;
        check(
            ki.is_finite() && KEYFRAME_INTERVAL_S.contains(&ki),
            "keyframe_interval",
            || {
                format!(
                    "{ki} s is outside {}..={}",
                    KEYFRAME_INTERVAL_S.start(),
                    KEYFRAME_INTERVAL_S.end()
                )
            },
        )?;
        let jpeg_encoder = matches!(
            self.encoder,
            VideoEncoder::Mjpeg | VideoEncoder::V4l2jpegenc
        );
        let h264_encoder = !jpeg_encoder && self.encoder != VideoEncoder::Auto;
        check(
            !(jpeg_encoder && self.codec == VideoCodec::H264),
            "encoder",
            || {
                format!(
                    "{:?} produces JPEG: set codec = \"mjpeg\" too",
                    self.encoder
                )
            },
        )?;
        check(
            !(h264_encoder && self.codec == VideoCodec::Mjpeg),
            "encoder",
            || {
                format!(
                    "{:?} is an H.264 encoder but codec = \"mjpeg\"",
                    self.encoder
                )
            },
        )?;
        if self.encoder == VideoEncoder::V4l2h264enc {
            for (field, v) in [("width", self.width), ("height", self.height)] {
                check(
                    (BCM2835_CODEC_MIN..=BCM2835_CODEC_MAX).contains(&v),
                    field,
                    || {
                        format!(
                            "{v} pixels: the Raspberry Pi hardware encoder (encoder = \"v4l2h264enc\") \
                             takes {BCM2835_CODEC_MIN}..={BCM2835_CODEC_MAX} in width and height; lower \
                             the {field}, or set encoder = \"auto\" (x264 above {BCM2835_CODEC_MAX})"
                        )
                    },
                )?;
            }
        }
        check_pipeline(&self.pipeline)
    }

    /// Frames between keyframes (at least 1).
    pub fn keyframe_distance(&self) -> u32 {
        ((self.fps as f64 * self.keyframe_interval).round() as u32).max(1)
    }
}

impl AudioSpec {
    /// Checks ranges and combinations; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_id(&self.id)?;
        match self.codec {
            AudioCodec::Opus => {
                check(
                    OPUS_SAMPLE_RATES.contains(&self.sample_rate),
                    "sample_rate",
                    || {
                        format!(
                            "Opus supports {}, not {}",
                            or_list(&OPUS_SAMPLE_RATES),
                            self.sample_rate
                        )
                    },
                )?;
                check(
                    OPUS_BITRATE_KBPS.contains(&self.bitrate_kbps),
                    "bitrate_kbps",
                    || format!("{} is outside {OPUS_BITRATE_KBPS:?}", self.bitrate_kbps),
                )?;
            }
            AudioCodec::Pcm => {
                check(
                    PCM_SAMPLE_RATES.contains(&self.sample_rate),
                    "sample_rate",
                    || format!("{} is outside {PCM_SAMPLE_RATES:?}", self.sample_rate),
                )?;
            }
        }
        check(AUDIO_FRAME_MS.contains(&self.frame_ms), "frame_ms", || {
            format!("{} is not {}", self.frame_ms, or_list(&AUDIO_FRAME_MS))
        })?;
        check((1..=2).contains(&self.channels), "channels", || {
            format!("{} is not 1 or 2", self.channels)
        })?;
        check_pipeline(&self.pipeline)
    }
}

/// `8000, 12000 or 48000`: how messages and the example config list allowed values.
pub fn or_list(values: &[u32]) -> String {
    match values {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u32::to_string).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

impl TryFrom<String> for VideoSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "auto" => Ok(VideoSource::Auto),
            None if s == "test" => Ok(VideoSource::Test),
            None if s == "libcamera" => Ok(VideoSource::Libcamera(None)),
            Some(("libcamera", cam)) if !cam.is_empty() => {
                Ok(VideoSource::Libcamera(Some(cam.to_string())))
            }
            Some(("v4l2", path)) if path.starts_with('/') => {
                Ok(VideoSource::V4l2(path.to_string()))
            }
            _ => Err(format!(
                "unknown video source {s:?}: expected \"auto\", \"test\", \"libcamera\", \
                 \"libcamera:<name>\" or \"v4l2:/dev/videoN\""
            )),
        }
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Auto => f.write_str("auto"),
            VideoSource::Test => f.write_str("test"),
            VideoSource::Libcamera(None) => f.write_str("libcamera"),
            VideoSource::Libcamera(Some(c)) => write!(f, "libcamera:{c}"),
            VideoSource::V4l2(p) => write!(f, "v4l2:{p}"),
        }
    }
}

impl From<VideoSource> for String {
    fn from(s: VideoSource) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for AudioSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "auto" => Ok(AudioSource::Auto),
            None if s == "test" => Ok(AudioSource::Test),
            None if s == "alsa" => Ok(AudioSource::Alsa("default".into())),
            None if s == "pulse" => Ok(AudioSource::Pulse(None)),
            Some(("alsa", dev)) if !dev.is_empty() => Ok(AudioSource::Alsa(dev.to_string())),
            Some(("pulse", dev)) if !dev.is_empty() => {
                Ok(AudioSource::Pulse(Some(dev.to_string())))
            }
            _ => Err(format!(
                "unknown audio source {s:?}: expected \"auto\", \"test\", \"alsa[:<device>]\" or \
                 \"pulse[:<name>]\""
            )),
        }
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Auto => f.write_str("auto"),
            AudioSource::Test => f.write_str("test"),
            AudioSource::Pulse(None) => f.write_str("pulse"),
            AudioSource::Pulse(Some(d)) => write!(f, "pulse:{d}"),
            AudioSource::Alsa(d) => write!(f, "alsa:{d}"),
        }
    }
}

impl From<AudioSource> for String {
    fn from(s: AudioSource) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tables_give_the_documented_defaults() {
        let v: VideoSpec = toml::from_str("").unwrap();
        assert_eq!(v, VideoSpec::default());
        assert_eq!(v.keyframe_distance(), 30);
        v.validate().unwrap();
        let a: AudioSpec = toml::from_str("").unwrap();
        assert_eq!(a, AudioSpec::default());
        a.validate().unwrap();
    }

    #[test]
    fn sources_parse_and_round_trip() {
        let v: VideoSpec = toml::from_str(
            "source = \"v4l2:/dev/video2\"\nwidth = 640\nheight = 480\nencoder = \"x264\"",
        )
        .unwrap();
        assert_eq!(v.source, VideoSource::V4l2("/dev/video2".into()));
        assert_eq!(v.encoder, VideoEncoder::X264);
        let back = toml::to_string(&v).unwrap();
        assert!(back.contains("source = \"v4l2:/dev/video2\""), "{back}");
        let a: AudioSpec = toml::from_str("source = \"alsa:plughw:CARD=Device,DEV=0\"").unwrap();
        assert_eq!(
            a.source,
            AudioSource::Alsa("plughw:CARD=Device,DEV=0".into())
        );
        for bad in ["v4l2:", "v4l2:video0", "camera", ""] {
            let e = toml::from_str::<VideoSpec>(&format!("source = {bad:?}")).unwrap_err();
            assert!(e.to_string().contains("unknown video source"), "{e}");
        }
        let e = toml::from_str::<AudioSpec>("source = \"alsa:\"").unwrap_err();
        assert!(e.to_string().contains("unknown audio source"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<VideoSpec>("widht = 640").unwrap_err();
        assert!(e.to_string().contains("widht"), "{e}");
        let e = toml::from_str::<AudioSpec>("samplerate = 48000").unwrap_err();
        assert!(e.to_string().contains("samplerate"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(VideoSpec, &str)> = vec![
            (
                VideoSpec {
                    width: 641,
                    ..Default::default()
                },
                "width",
            ),
            (
                VideoSpec {
                    height: 8,
                    ..Default::default()
                },
                "height",
            ),
            (
                VideoSpec {
                    fps: 0,
                    ..Default::default()
                },
                "fps",
            ),
            (
                VideoSpec {
                    bitrate_kbps: 10,
                    ..Default::default()
                },
                "bitrate_kbps",
            ),
            (
                VideoSpec {
                    keyframe_interval: 0.0,
                    ..Default::default()
                },
                "keyframe_interval",
            ),
            (
                VideoSpec {
                    keyframe_interval: f64::NAN,
                    ..Default::default()
                },
                "keyframe_interval",
            ),
            (
                VideoSpec {
                    encoder: VideoEncoder::Mjpeg,
                    ..Default::default()
                },
                "encoder",
            ),
            (
                VideoSpec {
                    codec: VideoCodec::Mjpeg,
                    encoder: VideoEncoder::X264,
                    ..Default::default()
                },
                "encoder",
            ),
            (
                VideoSpec {
                    pipeline: Some(" ".into()),
                    ..Default::default()
                },
                "pipeline",
            ),
            (
                VideoSpec {
                    pipeline: Some("videotestsrc ! appsink".into()),
                    ..Default::default()
                },
                "pipeline",
            ),
        ];
        let more = [
            (
                VideoSpec {
                    width: 7682,
                    ..Default::default()
                },
                "width",
            ),
            (
                VideoSpec {
                    id: String::new(),
                    ..Default::default()
                },
                "id",
            ),
            (
                VideoSpec {
                    id: "v deo".into(),
                    ..Default::default()
                },
                "id",
            ),
            (
                VideoSpec {
                    encoder: VideoEncoder::V4l2jpegenc,
                    ..Default::default()
                },
                "encoder",
            ),
        ];
        for (spec, field) in cases.into_iter().chain(more) {
            assert_eq!(spec.validate().unwrap_err().field, field, "{spec:?}");
        }
        let ok = VideoSpec {
            codec: VideoCodec::Mjpeg,
            encoder: VideoEncoder::Auto,
            ..Default::default()
        };
        ok.validate().unwrap();
        let cases: Vec<(AudioSpec, &str)> = vec![
            (
                AudioSpec {
                    sample_rate: 44100,
                    ..Default::default()
                },
                "sample_rate",
            ),
            (
                AudioSpec {
                    channels: 3,
                    ..Default::default()
                },
                "channels",
            ),
            (
                AudioSpec {
                    bitrate_kbps: 1000,
                    ..Default::default()
                },
                "bitrate_kbps",
            ),
            (
                AudioSpec {
                    frame_ms: 5,
                    ..Default::default()
                },
                "frame_ms",
            ),
        ];
        let more = [
            (
                AudioSpec {
                    frame_ms: 40,
                    ..Default::default()
                },
                "frame_ms",
            ),
            (
                AudioSpec {
                    codec: AudioCodec::Pcm,
                    frame_ms: 15,
                    ..Default::default()
                },
                "frame_ms",
            ),
            (
                AudioSpec {
                    codec: AudioCodec::Pcm,
                    sample_rate: 192_000,
                    ..Default::default()
                },
                "sample_rate",
            ),
        ];
        for (spec, field) in cases.into_iter().chain(more) {
            let e = spec.validate().unwrap_err();
            assert_eq!(e.field, field, "{spec:?}");
            assert!(e.to_string().starts_with(field));
        }
        AudioSpec {
            codec: AudioCodec::Pcm,
            sample_rate: 44100,
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn camera_and_pulse_names_parse() {
        let v: VideoSpec =
            toml::from_str("source = \"libcamera:/base/soc/i2c0mux/imx708@1a\"").unwrap();
        assert_eq!(
            v.source,
            VideoSource::Libcamera(Some("/base/soc/i2c0mux/imx708@1a".into()))
        );
        let a: AudioSpec = toml::from_str("source = \"pulse:alsa_input.usb\"").unwrap();
        assert_eq!(a.source, AudioSource::Pulse(Some("alsa_input.usb".into())));
        let a: AudioSpec = toml::from_str("source = \"alsa\"").unwrap();
        assert_eq!(a.source, AudioSource::Alsa("default".into()));
        assert_eq!(String::from(AudioSource::Pulse(None)), "pulse");
    }

    #[test]
    fn the_example_config_documents_these_limits() {
        let example = include_str!("../../target-configs/sioedge.example.toml");
        let range = |r: &RangeInclusive<u32>| format!("{}..{}", r.start(), r.end());
        for phrase in [
            format!(
                "width {VIDEO_SIZE_MIN}..{VIDEO_WIDTH_MAX}, height {VIDEO_SIZE_MIN}..{VIDEO_HEIGHT_MAX}"
            ),
            format!("frames per second ({})", range(&VIDEO_FPS)),
            format!(
                "H.264 target bitrate in kbit/s ({})",
                range(&VIDEO_BITRATE_KBPS)
            ),
            format!(
                "Seconds between keyframes ({}..{})",
                KEYFRAME_INTERVAL_S.start(),
                KEYFRAME_INTERVAL_S.end()
            ),
            format!("({BCM2835_CODEC_MIN}..{BCM2835_CODEC_MAX} pixels wide and high)"),
            format!(
                "Opus: {}. PCM: {}.",
                or_list(&OPUS_SAMPLE_RATES),
                range(&PCM_SAMPLE_RATES)
            ),
            format!("Opus bitrate in kbit/s ({})", range(&OPUS_BITRATE_KBPS)),
            format!("Opus and PCM: {} ", or_list(&AUDIO_FRAME_MS)),
        ] {
            assert!(
                example.contains(&phrase),
                "sioedge.example.toml does not document what validation accepts: {phrase:?}"
            );
        }
    }

    #[test]
    fn the_pi_encoder_is_refused_above_its_size_limit() {
        let pi = |width, height| VideoSpec {
            encoder: VideoEncoder::V4l2h264enc,
            width,
            height,
            ..Default::default()
        };
        pi(1920, 1080).validate().unwrap();
        pi(1080, 1920).validate().unwrap();
        let e = pi(2304, 1296).validate().unwrap_err();
        assert_eq!(e.field, "width");
        assert!(e.problem.contains("32..=1920"), "{e}");
        assert_eq!(pi(1920, 2160).validate().unwrap_err().field, "height");
        // `auto` is not refused: it uses x264 there
        VideoSpec {
            width: 2304,
            height: 1296,
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn the_embedded_default_config_has_valid_specs() {
        for s in crate::config::Config::embedded_default().streams {
            if let Some(v) = &s.video {
                v.validate().unwrap();
            }
            if let Some(a) = &s.audio {
                a.validate().unwrap();
            }
        }
    }
}
