//! Track spec → `gst-launch-1.0` description ending in `appsink name=sink`.
//!
//! Pipelines are plain strings (data, not code): the same text is what `scripts/bench-media` runs
//! with `gst-launch-1.0`, and what the logs print when a track starts. Device discovery for `auto`
//! happens before this step ([`super::devices`]); here every source is concrete.

use super::spec::{AudioCodec, AudioSpec, OpusApplication, VideoCodec, VideoEncoder, VideoSpec};
use crate::contract::Codec;

/// Appsink settings shared by every track: never throttle to the clock, hold at most a few frames,
/// and drop the oldest rather than block the streaming thread when the callback falls behind.
fn appsink(max_buffers: u32) -> String {
    format!(
        "appsink name=sink sync=false max-buffers={max_buffers} drop=true enable-last-sample=false"
    )
}

/// A video source with every choice made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// `videotestsrc` with overlays (when the `clockoverlay` element exists).
    Test {
        /// Draw the wall clock and the running time onto the picture.
        overlay: bool,
    },
    /// `libcamerasrc`, optionally a given camera (`camera-name`).
    Libcamera(Option<String>),
    /// `v4l2src device=…` delivering raw frames.
    V4l2Raw(String),
    /// `v4l2src device=…` delivering MJPEG, decoded with `jpegdec`.
    V4l2Jpeg(String),
    /// The user's `pipeline` fragment.
    Custom(String),
}

/// An audio source with every choice made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// `audiotestsrc` ticking once a second.
    Test,
    /// `alsasrc device=…`.
    Alsa(String),
    /// `pulsesrc`, optionally a given source (`device`).
    Pulse(Option<String>),
    /// The user's `pipeline` fragment.
    Custom(String),
}

/// A concrete video encoder element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// Raspberry Pi ≤ 4 hardware H.264.
    V4l2h264,
    /// libx264.
    X264,
    /// Cisco OpenH264.
    Openh264,
    /// jpegenc.
    Jpeg,
    /// Raspberry Pi ≤ 4 hardware JPEG.
    V4l2Jpeg,
}

impl Encoder {
    /// The GStreamer element name.
    pub fn element(self) -> &'static str {
        match self {
            Encoder::V4l2h264 => "v4l2h264enc",
            Encoder::X264 => "x264enc",
            Encoder::Openh264 => "openh264enc",
            Encoder::Jpeg => "jpegenc",
            Encoder::V4l2Jpeg => "v4l2jpegenc",
        }
    }

    /// Resolves the spec's choice against the elements this machine has (`has(element_name)`).
    pub fn choose(spec: &VideoSpec, has: &dyn Fn(&str) -> bool) -> Result<Encoder, String> {
        use Encoder::*;
        let candidates: &[Encoder] = match (spec.codec, spec.encoder) {
            (_, VideoEncoder::Mjpeg) => &[Jpeg],
            (_, VideoEncoder::V4l2jpegenc) => &[V4l2Jpeg],
            (VideoCodec::Mjpeg, _) => &[V4l2Jpeg, Jpeg],
            (VideoCodec::H264, VideoEncoder::Auto) => &[V4l2h264, X264, Openh264],
            (VideoCodec::H264, VideoEncoder::V4l2h264enc) => &[V4l2h264],
            (VideoCodec::H264, VideoEncoder::X264) => &[X264],
            (VideoCodec::H264, VideoEncoder::Openh264) => &[Openh264],
        };
        candidates
            .iter()
            .copied()
            .find(|e| has(e.element()))
            .ok_or_else(|| match candidates {
                [one] => format!(
                    "encoder element {} is not available on this machine",
                    one.element()
                ),
                [_, Jpeg] => "no JPEG encoder: install gstreamer1.0-plugins-good (jpegenc)".into(),
                _ => "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or \
                      gstreamer1.0-plugins-bad (openh264enc)"
                    .into(),
            })
    }

    /// Raw format the encoder takes without conversion. x264 must get I420: left to negotiate it
    /// picks 4:4:4 10-bit, which browsers cannot decode. The Pi's encoder wants NV12.
    fn raw_format(self) -> &'static str {
        match self {
            Encoder::V4l2h264 => "NV12",
            _ => "I420",
        }
    }
}

/// Quotes a property value for the launch syntax.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// H.264 level for the Pi encoder's caps: it rejects frames unless the level is pinned, and it
/// was specified for level 4 (1080p30); 4.2 covers 1080p60.
fn v4l2_level(spec: &VideoSpec) -> &'static str {
    let mbs = spec.width.div_ceil(16) * spec.height.div_ceil(16);
    if mbs <= 8192 && mbs * spec.fps <= 245_760 {
        "4"
    } else {
        "4.2"
    }
}

/// The full video pipeline description.
pub fn video_launch(spec: &VideoSpec, input: &VideoInput, enc: Encoder) -> String {
    let (w, h, fps, fmt) = (spec.width, spec.height, spec.fps, enc.raw_format());
    let src = match input {
        VideoInput::Test { overlay } => {
            let mut s = format!(
                "videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! \
                 video/x-raw,format={fmt},width={w},height={h},framerate={fps}/1"
            );
            if *overlay {
                s.push_str(
                    " ! clockoverlay time-format=\"%H:%M:%S\" halignment=left valignment=top \
                     font-desc=\"Sans 20\" ! timeoverlay halignment=right valignment=top font-desc=\"Sans 20\"",
                );
            }
            s
        }
        VideoInput::Libcamera(camera) => {
            let name = camera
                .as_deref()
                .map(|c| format!(" camera-name={}", quote(c)))
                .unwrap_or_default();
            format!(
                "libcamerasrc{name} ! video/x-raw,format={fmt},width={w},height={h},framerate={fps}/1"
            )
        }
        VideoInput::V4l2Raw(dev) => format!(
            "v4l2src device={} ! video/x-raw,width={w},height={h},framerate={fps}/1",
            quote(dev)
        ),
        VideoInput::V4l2Jpeg(dev) => format!(
            "v4l2src device={} ! image/jpeg,width={w},height={h},framerate={fps}/1 ! jpegdec",
            quote(dev)
        ),
        VideoInput::Custom(p) => p.clone(),
    };
    let k = spec.keyframe_distance();
    let b = spec.bitrate_kbps;
    // SPS/PPS before every IDR (late joiners, WebCodecs Annex B), one access unit per buffer.
    let h264_out =
        "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au";
    let encode = match enc {
        Encoder::X264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={k} bitrate={b} ! \
             video/x-h264,profile=constrained-baseline ! {h264_out}"
        ),
        Encoder::Openh264 => format!(
            "openh264enc bitrate={} gop-size={k} complexity=low usage-type=camera \
             scene-change-detection=false ! video/x-h264,profile=constrained-baseline ! {h264_out}",
            b * 1000
        ),
        Encoder::V4l2h264 => format!(
            "v4l2h264enc extra-controls=\"controls,repeat_sequence_header=1,video_bitrate={},h264_i_frame_period={k}\" ! \
             video/x-h264,level=(string){},profile=(string)constrained-baseline ! {h264_out}",
            b * 1000,
            v4l2_level(spec)
        ),
        Encoder::Jpeg | Encoder::V4l2Jpeg => enc.element().to_string(),
    };
    format!(
        "{src} ! videoconvert ! videoscale ! video/x-raw,format={fmt},width={w},height={h} ! {encode} ! {}",
        appsink(4)
    )
}

/// The full audio pipeline description.
pub fn audio_launch(spec: &AudioSpec, input: &AudioInput) -> String {
    let (rate, ch, ms) = (spec.sample_rate, spec.channels, spec.frame_ms);
    let src = match input {
        AudioInput::Test => format!(
            "audiotestsrc is-live=true wave=ticks volume=0.4 samplesperbuffer={}",
            rate * ms / 1000
        ),
        AudioInput::Alsa(dev) => format!("alsasrc device={}", quote(dev)),
        AudioInput::Pulse(None) => "pulsesrc".to_string(),
        AudioInput::Pulse(Some(dev)) => format!("pulsesrc device={}", quote(dev)),
        AudioInput::Custom(p) => p.clone(),
    };
    let raw = format!(
        "audioconvert ! audioresample ! audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels={ch}"
    );
    let encode = match spec.codec {
        AudioCodec::Opus => {
            let kind = match spec.application {
                OpusApplication::Generic => "generic",
                OpusApplication::Voice => "voice",
                OpusApplication::Lowdelay => "restricted-lowdelay",
            };
            format!(
                "opusenc bitrate={} frame-size={ms} audio-type={kind}",
                spec.bitrate_kbps * 1000
            )
        }
        // Source buffer sizes vary by device; re-chunk to exact frame_ms pieces.
        AudioCodec::Pcm => format!("audiobuffersplit output-buffer-duration={ms}/1000"),
    };
    format!("{src} ! {raw} ! {encode} ! {}", appsink(16))
}

/// The frame codec a video spec produces.
pub fn video_codec(spec: &VideoSpec) -> Codec {
    match spec.codec {
        VideoCodec::H264 if spec.encoder != VideoEncoder::Mjpeg => Codec::H264,
        _ => Codec::Mjpeg,
    }
}

/// The frame codec an audio spec produces.
pub fn audio_codec(spec: &AudioSpec) -> Codec {
    match spec.codec {
        AudioCodec::Opus => Codec::Opus,
        AudioCodec::Pcm => Codec::Pcm,
    }
}

/// Initialises GStreamer once (idempotent, cheap after the first call).
pub fn init() -> Result<(), super::error::MediaError> {
    Ok(gstreamer::init()?)
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
    fn x264_gets_i420_and_constrained_baseline() {
        let spec = VideoSpec {
            width: 320,
            height: 240,
            fps: 15,
            keyframe_interval: 2.0,
            bitrate_kbps: 400,
            ..Default::default()
        };
        let l = video_launch(&spec, &VideoInput::Test { overlay: false }, Encoder::X264);
        assert!(
            l.contains("format=I420,width=320,height=240,framerate=15/1"),
            "{l}"
        );
        assert!(l.contains("key-int-max=30 bitrate=400"), "{l}");
        assert!(
            l.contains("profile=constrained-baseline ! h264parse config-interval=-1"),
            "{l}"
        );
        assert!(l.ends_with(
            "appsink name=sink sync=false max-buffers=4 drop=true enable-last-sample=false"
        ));
        assert!(!l.contains("clockoverlay"));
    }

    #[test]
    fn pi_encoder_gets_nv12_pinned_level_and_repeated_headers() {
        let spec = VideoSpec::default();
        let l = video_launch(&spec, &VideoInput::Libcamera(None), Encoder::V4l2h264);
        assert!(
            l.starts_with("libcamerasrc ! video/x-raw,format=NV12,width=1280,height=720"),
            "{l}"
        );
        assert!(
            l.contains("repeat_sequence_header=1,video_bitrate=2000000,h264_i_frame_period=30")
        );
        assert!(l.contains("level=(string)4,"), "{l}");
        let big = VideoSpec {
            width: 1920,
            height: 1080,
            fps: 60,
            ..Default::default()
        };
        assert!(
            video_launch(&big, &VideoInput::Libcamera(None), Encoder::V4l2h264)
                .contains("level=(string)4.2,")
        );
    }

    #[test]
    fn v4l2_devices_are_quoted_and_mjpeg_decoded() {
        let spec = VideoSpec::default();
        let l = video_launch(
            &spec,
            &VideoInput::V4l2Jpeg("/dev/video 0".into()),
            Encoder::X264,
        );
        assert!(l.starts_with(
            "v4l2src device=\"/dev/video 0\" ! image/jpeg,width=1280,height=720,framerate=30/1 ! jpegdec"
        ), "{l}");
    }

    #[test]
    fn audio_opus_and_pcm() {
        let spec = AudioSpec {
            frame_ms: 10,
            bitrate_kbps: 24,
            ..Default::default()
        };
        let l = audio_launch(&spec, &AudioInput::Alsa("hw:1,0".into()));
        assert!(
            l.starts_with("alsasrc device=\"hw:1,0\" ! audioconvert ! audioresample ! "),
            "{l}"
        );
        assert!(l.contains("rate=48000,channels=1 ! opusenc bitrate=24000 frame-size=10 audio-type=restricted-lowdelay"));
        let pcm = AudioSpec {
            codec: AudioCodec::Pcm,
            ..Default::default()
        };
        let l = audio_launch(&pcm, &AudioInput::Test);
        assert!(l.contains("samplesperbuffer=960"), "{l}");
        assert!(
            l.contains("audiobuffersplit output-buffer-duration=20/1000 ! appsink"),
            "{l}"
        );
    }

    #[test]
    fn named_libcamera_and_pulse_sources() {
        let v = video_launch(
            &VideoSpec::default(),
            &VideoInput::Libcamera(Some("/base/soc/i2c0mux/imx708@1a".into())),
            Encoder::X264,
        );
        assert!(
            v.starts_with("libcamerasrc camera-name=\"/base/soc/i2c0mux/imx708@1a\" ! video/x-raw,format=I420,"),
            "{v}"
        );
        let a = audio_launch(
            &AudioSpec::default(),
            &AudioInput::Pulse(Some("mic \"1\"".into())),
        );
        assert!(a.starts_with("pulsesrc device=\"mic \\\"1\\\"\" ! "), "{a}");
        let mjpeg = VideoSpec {
            codec: VideoCodec::Mjpeg,
            ..Default::default()
        };
        let j = video_launch(
            &mjpeg,
            &VideoInput::Test { overlay: false },
            Encoder::V4l2Jpeg,
        );
        assert!(
            j.contains("format=I420,width=1280,height=720 ! v4l2jpegenc ! appsink"),
            "{j}"
        );
    }
}
