//! Track spec → `gst-launch-1.0` description ending in `appsink name=sink`.
//!
//! Pipelines are plain strings (data, not code): the same text is what `scripts/bench-media` runs
//! with `gst-launch-1.0`, and what the logs print when a track starts. Device discovery for `auto`
//! happens before this step ([`super::devices`]); here every source is concrete.

use super::modes::{PixelFormat, Plan, Step};
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
#[derive(Debug, Clone, PartialEq)]
pub enum VideoInput {
    /// `videotestsrc` with overlays (when the `clockoverlay` element exists).
    Test {
        /// Draw the wall clock and the running time onto the picture.
        overlay: bool,
    },
    /// `libcamerasrc`: a CSI camera behind the Raspberry Pi ISP.
    Libcamera {
        /// `camera-name` (the first camera when `None`).
        camera: Option<String>,
        /// Property settings, e.g. `af-mode=continuous`.
        settings: Vec<&'static str>,
        /// What to ask of it.
        plan: Plan,
    },
    /// `v4l2src device=…`: a USB or other V4L2 camera.
    V4l2 {
        /// Device node or `/dev/v4l/by-…` link.
        device: String,
        /// What to ask of it.
        plan: Plan,
    },
    /// The user's `pipeline` fragment.
    Custom(String),
}

impl VideoInput {
    /// The capture plan, for devices.
    pub fn plan(&self) -> Option<&Plan> {
        match self {
            VideoInput::Libcamera { plan, .. } | VideoInput::V4l2 { plan, .. } => Some(plan),
            VideoInput::Test { .. } | VideoInput::Custom(_) => None,
        }
    }
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

/// A concrete video encoder element (what each takes and the order `auto` tries them in:
/// [`super::encoders`]).
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

    /// The encoder a spec starts with on this machine (`has(element_name)`): the first of
    /// [`Encoder::candidates`].
    pub fn choose(spec: &VideoSpec, has: &dyn Fn(&str) -> bool) -> Result<Encoder, String> {
        Encoder::candidates(spec, has).map(|c| c[0])
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

/// Caps of raw video.
fn raw_caps(formats: &[&str], w: u32, h: u32, fps: u32) -> String {
    let format = match formats {
        [one] => (*one).to_string(),
        many => format!("(string){{{}}}", many.join(",")),
    };
    format!("video/x-raw,format={format},width={w},height={h},framerate={fps}/1")
}

/// The source element (for the test pattern with overlays: the pattern, its caps and the overlays).
fn source(spec: &VideoSpec, input: &VideoInput, enc: Encoder) -> String {
    match input {
        VideoInput::Test { overlay } => {
            let mut s = "videotestsrc is-live=true pattern=smpte horizontal-speed=2".to_string();
            if *overlay {
                let caps = raw_caps(&enc.input().formats[..1], spec.width, spec.height, spec.fps);
                s.push_str(&format!(
                    " ! {caps} ! clockoverlay time-format=\"%H:%M:%S\" halignment=left \
                     valignment=top font-desc=\"Sans 20\" ! timeoverlay halignment=right \
                     valignment=top font-desc=\"Sans 20\""
                ));
            }
            s
        }
        VideoInput::Libcamera {
            camera, settings, ..
        } => {
            let mut s = "libcamerasrc".to_string();
            if let Some(c) = camera {
                s.push_str(&format!(" camera-name={}", quote(c)));
            }
            for setting in settings {
                s.push(' ');
                s.push_str(setting);
            }
            s
        }
        VideoInput::V4l2 { device, .. } => format!("v4l2src device={}", quote(device)),
        VideoInput::Custom(p) => p.clone(),
    }
}

/// From the source's pads to the encoder's input: the caps the source is pinned to, the plan's
/// conversions, and the configured size, rate and a format the encoder takes (square pixels:
/// `videoscale` adds black borders rather than stretch).
pub fn convert(spec: &VideoSpec, plan: &Plan) -> String {
    let out = format!(
        "{},pixel-aspect-ratio=1/1",
        raw_caps(&plan.formats, spec.width, spec.height, spec.fps)
    );
    if plan.steps.is_empty() {
        // Pinned to exactly what the encoder gets (and two caps filters in a row do not parse).
        return out;
    }
    let p = &plan.pin;
    let mut s = match &p.format {
        PixelFormat::Mjpeg => format!(
            "image/jpeg,width={},height={},framerate={}/{}",
            p.width, p.height, p.rate.num, p.rate.den
        ),
        PixelFormat::Raw(f) | PixelFormat::Other(f) => format!(
            "video/x-raw,format={f},width={},height={},framerate={}/{}",
            p.width, p.height, p.rate.num, p.rate.den
        ),
    };
    for step in &plan.steps {
        s.push_str(" ! ");
        match step {
            Step::DecodeJpeg => s.push_str("jpegdec"),
            Step::Rate => s.push_str("videorate"),
            Step::Crop { left, right } => {
                s.push_str(&format!("videocrop left={left} right={right}"));
            }
            Step::Scale => s.push_str("videoscale"),
            Step::Convert => s.push_str("videoconvert"),
        }
    }
    format!("{s} ! {out}")
}

/// The encoder (named `enc`, so its errors can be told from the source's) and what follows it,
/// up to the appsink.
pub fn encode(spec: &VideoSpec, enc: Encoder) -> String {
    let k = spec.keyframe_distance();
    let b = spec.bitrate_kbps;
    // SPS/PPS before every IDR (late joiners, WebCodecs Annex B), one access unit per buffer.
    let h264_out =
        "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au";
    match enc {
        Encoder::X264 => format!(
            "x264enc name=enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={k} \
             bitrate={b} ! video/x-h264,profile=constrained-baseline ! {h264_out}"
        ),
        Encoder::Openh264 => format!(
            "openh264enc name=enc bitrate={} gop-size={k} complexity=low usage-type=camera \
             scene-change-detection=false ! video/x-h264,profile=constrained-baseline ! {h264_out}",
            b * 1000
        ),
        Encoder::V4l2h264 => format!(
            "v4l2h264enc name=enc extra-controls=\"controls,repeat_sequence_header=1,video_bitrate={},h264_i_frame_period={k}\" ! \
             video/x-h264,level=(string){},profile=(string)constrained-baseline ! {h264_out}",
            b * 1000,
            v4l2_level(spec)
        ),
        Encoder::Jpeg | Encoder::V4l2Jpeg => format!("{} name=enc", enc.element()),
    }
}

/// The full video pipeline description.
pub fn video_launch(spec: &VideoSpec, input: &VideoInput, enc: Encoder) -> String {
    let formats = enc.input().formats;
    let to_encoder = match input {
        VideoInput::Libcamera { plan, .. } | VideoInput::V4l2 { plan, .. } => convert(spec, plan),
        VideoInput::Test { .. } => raw_caps(&formats[..1], spec.width, spec.height, spec.fps),
        // A fragment's raw output, whatever it is, converted and scaled.
        VideoInput::Custom(_) => format!(
            "videoconvert ! videoscale ! video/x-raw,format={},width={},height={}",
            formats[0], spec.width, spec.height
        ),
    };
    format!(
        "{} ! {to_encoder} ! {} ! {}",
        source(spec, input, enc),
        encode(spec, enc),
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
    use crate::media::modes::{Pin, Rate};

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

    fn plan(format: PixelFormat, w: u32, h: u32, steps: Vec<Step>, to: &[&'static str]) -> Plan {
        Plan {
            pin: Pin {
                format,
                width: w,
                height: h,
                rate: Rate::whole(30),
            },
            sensor_mode: None,
            steps,
            formats: to.to_vec(),
        }
    }

    #[test]
    fn pi_encoder_gets_the_isp_format_a_pinned_level_and_repeated_headers() {
        let spec = VideoSpec::default();
        let input = VideoInput::Libcamera {
            camera: None,
            settings: vec!["af-mode=continuous"],
            plan: plan(
                PixelFormat::Raw("NV12".into()),
                1280,
                720,
                vec![],
                &["NV12"],
            ),
        };
        let l = video_launch(&spec, &input, Encoder::V4l2h264);
        assert!(
            l.starts_with(
                "libcamerasrc af-mode=continuous ! video/x-raw,format=NV12,width=1280,height=720,\
                 framerate=30/1,pixel-aspect-ratio=1/1 ! v4l2h264enc name=enc"
            ),
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
        assert!(video_launch(&big, &input, Encoder::V4l2h264).contains("level=(string)4.2,"));
    }

    #[test]
    fn v4l2_devices_are_quoted_and_mjpeg_decoded_and_converted() {
        let spec = VideoSpec {
            width: 960,
            height: 540,
            fps: 25,
            ..Default::default()
        };
        let input = VideoInput::V4l2 {
            device: "/dev/v4l/by-id/usb-cam 0".into(),
            plan: plan(
                PixelFormat::Mjpeg,
                1280,
                720,
                vec![Step::DecodeJpeg, Step::Rate, Step::Scale, Step::Convert],
                &["I420", "NV12"],
            ),
        };
        let l = video_launch(&spec, &input, Encoder::X264);
        assert!(
            l.starts_with(
                "v4l2src device=\"/dev/v4l/by-id/usb-cam 0\" ! image/jpeg,width=1280,height=720,\
                 framerate=30/1 ! jpegdec ! videorate ! videoscale ! videoconvert ! \
                 video/x-raw,format=(string){I420,NV12},width=960,height=540,framerate=25/1,\
                 pixel-aspect-ratio=1/1 ! x264enc name=enc"
            ),
            "{l}"
        );
        let crop = plan(
            PixelFormat::Raw("I420".into()),
            1024,
            540,
            vec![Step::Crop {
                left: 32,
                right: 32,
            }],
            &["I420"],
        );
        assert!(convert(&spec, &crop).contains(" ! videocrop left=32 right=32 ! "));
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
    fn named_libcamera_and_pulse_sources_and_the_test_pattern() {
        let input = VideoInput::Libcamera {
            camera: Some("/base/soc/i2c0mux/i2c@1/imx708@1a".into()),
            settings: vec![],
            plan: plan(
                PixelFormat::Raw("I420".into()),
                1280,
                720,
                vec![],
                &["I420"],
            ),
        };
        let v = video_launch(&VideoSpec::default(), &input, Encoder::X264);
        assert!(
            v.starts_with(
                "libcamerasrc camera-name=\"/base/soc/i2c0mux/i2c@1/imx708@1a\" ! video/x-raw,format=I420,"
            ),
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
            j.contains(
                "format=I420,width=1280,height=720,framerate=30/1 ! v4l2jpegenc name=enc ! appsink"
            ),
            "{j}"
        );
    }
}
