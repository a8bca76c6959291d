//! `[[stream]]`: what to capture and how to encode it. Mirrors what the media module needs to
//! build a pipeline; kept free of GStreamer so it compiles with `--no-default-features`.

use super::units;
use crate::media::Codec;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// One stream: an id plus an optional video and an optional audio track (at least one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Stream id as viewers and relays see it, e.g. `cam0`.
    pub id: String,
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
}

/// A video track.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Track id within the stream.
    pub id: String,
    pub source: VideoSource,
    /// GStreamer launch description of the source part, replacing `source` (escape hatch).
    pub pipeline: Option<String>,
    /// `h264` or `mjpeg`.
    pub codec: Codec,
    pub encoder: VideoEncoder,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bitrate in bit/s.
    #[serde(deserialize_with = "units::bitrate")]
    pub bitrate: u32,
    /// Time between keyframes.
    #[serde(deserialize_with = "units::duration")]
    pub keyframe_interval: Duration,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            id: "video".into(),
            source: VideoSource::Auto,
            pipeline: None,
            codec: Codec::H264,
            encoder: VideoEncoder::Auto,
            width: 640,
            height: 480,
            fps: 30,
            bitrate: 1_000_000,
            keyframe_interval: Duration::from_secs(1),
        }
    }
}

/// An audio track.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    /// Track id within the stream.
    pub id: String,
    pub source: AudioSource,
    /// GStreamer launch description of the source part, replacing `source` (escape hatch).
    pub pipeline: Option<String>,
    /// `opus` or `pcm`.
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u32,
    /// Opus target bitrate in bit/s (ignored for PCM).
    #[serde(deserialize_with = "units::bitrate")]
    pub bitrate: u32,
    /// Duration of one audio frame (Opus frame size).
    #[serde(deserialize_with = "units::duration")]
    pub frame_duration: Duration,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            id: "audio".into(),
            source: AudioSource::Auto,
            pipeline: None,
            codec: Codec::Opus,
            sample_rate: 48_000,
            channels: 1,
            bitrate: 32_000,
            frame_duration: Duration::from_millis(20),
        }
    }
}

/// Where video comes from: `auto`, `test`, `libcamera[:<camera id>]`, `v4l2:/dev/videoN`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum VideoSource {
    /// The first camera found, else the test pattern.
    #[default]
    Auto,
    /// `videotestsrc` with a clock overlay.
    Test,
    /// `libcamerasrc` (CSI cameras); optionally a libcamera camera id.
    Libcamera { camera: Option<String> },
    /// `v4l2src` on a device node (USB UVC cameras).
    V4l2 { device: PathBuf },
}

impl FromStr for VideoSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "auto" => Ok(VideoSource::Auto),
            None if s == "test" => Ok(VideoSource::Test),
            None if s == "libcamera" => Ok(VideoSource::Libcamera { camera: None }),
            Some(("libcamera", cam)) if !cam.is_empty() => Ok(VideoSource::Libcamera {
                camera: Some(cam.to_owned()),
            }),
            Some(("v4l2", dev)) if dev.starts_with('/') => Ok(VideoSource::V4l2 {
                device: PathBuf::from(dev),
            }),
            _ => Err(format!(
                "unknown video source \"{s}\": expected \"auto\", \"test\", \"libcamera\", \
                 \"libcamera:<camera id>\" or \"v4l2:/dev/videoN\""
            )),
        }
    }
}

impl TryFrom<String> for VideoSource {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Auto => f.write_str("auto"),
            VideoSource::Test => f.write_str("test"),
            VideoSource::Libcamera { camera: None } => f.write_str("libcamera"),
            VideoSource::Libcamera { camera: Some(c) } => write!(f, "libcamera:{c}"),
            VideoSource::V4l2 { device } => write!(f, "v4l2:{}", device.display()),
        }
    }
}

/// Where audio comes from: `auto`, `test`, `alsa[:<device>]`, `pulse[:<device>]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum AudioSource {
    /// The first microphone found, else a test tone.
    #[default]
    Auto,
    /// `audiotestsrc`.
    Test,
    /// `alsasrc` with an ALSA device name such as `hw:1,0` (default `default`).
    Alsa { device: String },
    /// `pulsesrc`, optionally with a source name.
    Pulse { device: Option<String> },
}

impl FromStr for AudioSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "auto" => Ok(AudioSource::Auto),
            None if s == "test" => Ok(AudioSource::Test),
            None if s == "alsa" => Ok(AudioSource::Alsa {
                device: "default".into(),
            }),
            None if s == "pulse" => Ok(AudioSource::Pulse { device: None }),
            Some(("alsa", dev)) if !dev.is_empty() => Ok(AudioSource::Alsa {
                device: dev.to_owned(),
            }),
            Some(("pulse", dev)) if !dev.is_empty() => Ok(AudioSource::Pulse {
                device: Some(dev.to_owned()),
            }),
            _ => Err(format!(
                "unknown audio source \"{s}\": expected \"auto\", \"test\", \"alsa\", \
                 \"alsa:<device>\", \"pulse\" or \"pulse:<device>\""
            )),
        }
    }
}

impl TryFrom<String> for AudioSource {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Auto => f.write_str("auto"),
            AudioSource::Test => f.write_str("test"),
            AudioSource::Alsa { device } => write!(f, "alsa:{device}"),
            AudioSource::Pulse { device: None } => f.write_str("pulse"),
            AudioSource::Pulse { device: Some(d) } => write!(f, "pulse:{d}"),
        }
    }
}

/// Which video encoder element to use; `auto` picks the best one this board has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoEncoder {
    /// H.264: `v4l2h264enc` if present, else `x264enc`, else `openh264enc`. MJPEG: `v4l2jpegenc`
    /// if present, else `jpegenc`.
    #[default]
    Auto,
    V4l2h264enc,
    X264enc,
    Openh264enc,
    V4l2jpegenc,
    Jpegenc,
}

impl VideoEncoder {
    /// The codec an explicitly chosen encoder produces (`None` for `auto`).
    pub fn codec(self) -> Option<Codec> {
        match self {
            VideoEncoder::Auto => None,
            VideoEncoder::V4l2h264enc | VideoEncoder::X264enc | VideoEncoder::Openh264enc => {
                Some(Codec::H264)
            }
            VideoEncoder::V4l2jpegenc | VideoEncoder::Jpegenc => Some(Codec::Mjpeg),
        }
    }
}
