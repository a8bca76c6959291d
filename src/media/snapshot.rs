//! Still pictures from H.264: the late-joiner cache's GOP (keyframe + the deltas since) decoded on
//! demand, and only its newest frame encoded as JPEG.
//!
//! One pipeline, two chains:
//!
//! ```text
//! appsrc name=src ! h264parse ! <decoder> ! appsink name=raw        (every frame decoded, the last kept)
//! appsrc name=still ! videoconvert ! videoscale ! <size> ! jpegenc ! appsink name=jpeg   (that one frame)
//! ```
//!
//! so a GOP of 60 frames costs 60 decodes and one JPEG encode, whatever the decoder does with
//! buffer flags. Decoders, best first: `v4l2h264dec` (the Raspberry Pi ≤ 4 hardware decoder, only
//! registered where its device exists), `avdec_h264` (gstreamer1.0-libav, recommended by the .deb),
//! `openh264dec` (gstreamer1.0-plugins-bad, a dependency, so a decoder is always there). A decoder
//! that fails is skipped for the next one, and the one that worked is used first from then on.

use super::capture::buffer_to_bytes;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// H.264 decoder elements, best first.
pub const DECODERS: [&str; 3] = ["v4l2h264dec", "avdec_h264", "openh264dec"];

/// Frame spacing given to the decoder (the frames' own timing does not matter for one picture).
const FRAME_NS: u64 = 33_333_333;

/// Why no picture came out.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// GStreamer could not be initialised, or none of [`DECODERS`] is installed.
    #[error(
        "no H.264 decoder: install gstreamer1.0-libav (avdec_h264) or gstreamer1.0-plugins-bad (openh264dec)"
    )]
    NoDecoder,
    /// Nothing to decode.
    #[error("no frames to decode")]
    Empty,
    /// The pipeline failed (element and message).
    #[error("{0}")]
    Pipeline(String),
    /// The frames decoded to no picture (e.g. a GOP without its parameter sets).
    #[error("the frames decoded to no picture")]
    NoPicture,
    /// The deadline passed first.
    #[error("decoding took longer than {0:?}")]
    Timeout(Duration),
}

/// Decodes H.264 GOPs to JPEG (see the module docs). Cheap to keep: pipelines exist only while a
/// picture is being made.
#[derive(Debug)]
pub struct JpegSnapshots {
    /// The [`DECODERS`] this machine has, best first.
    decoders: Vec<&'static str>,
    /// Index in `decoders` of the one to try first (the last one that worked).
    preferred: AtomicUsize,
}

impl JpegSnapshots {
    /// Finds the decoders this machine has; [`SnapshotError::NoDecoder`] when there is none.
    pub fn new() -> Result<JpegSnapshots, SnapshotError> {
        gst::init().map_err(|_| SnapshotError::NoDecoder)?;
        let decoders: Vec<&'static str> = DECODERS
            .into_iter()
            .filter(|d| gst::ElementFactory::find(d).is_some())
            .collect();
        if decoders.is_empty() {
            return Err(SnapshotError::NoDecoder);
        }
        Ok(JpegSnapshots {
            decoders,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The decoder tried first.
    pub fn decoder(&self) -> &'static str {
        self.decoders[self.preferred.load(Relaxed).min(self.decoders.len() - 1)]
    }

    /// The newest picture of `frames` (Annex B access units, keyframe with SPS/PPS first) as a
    /// JPEG, scaled to `size` when given, within `within` in total. Blocks: call it off the
    /// async runtime.
    pub fn jpeg(
        &self,
        frames: &[Bytes],
        size: Option<(u32, u32)>,
        within: Duration,
    ) -> Result<Bytes, SnapshotError> {
        if frames.is_empty() {
            return Err(SnapshotError::Empty);
        }
        let deadline = Instant::now() + within;
        let first = self.preferred.load(Relaxed);
        let n = self.decoders.len();
        let mut last = SnapshotError::NoDecoder;
        for i in (0..n).map(|k| (first + k) % n) {
            let decoder = self.decoders[i];
            match run(decoder, frames, size, deadline, within) {
                Ok(jpeg) => {
                    self.preferred.store(i, Relaxed);
                    return Ok(jpeg);
                }
                Err(e @ (SnapshotError::Timeout(_) | SnapshotError::NoPicture)) => return Err(e),
                Err(e) => {
                    tracing::warn!(decoder, "snapshot: {e}; trying the next decoder");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// The launch line of one snapshot with `decoder`.
fn launch(decoder: &str, size: Option<(u32, u32)>) -> String {
    let scale = size
        .map(|(w, h)| format!("videoscale ! video/x-raw,width={w},height={h} ! "))
        .unwrap_or_default();
    format!(
        "appsrc name=src format=time caps=video/x-h264,stream-format=byte-stream,alignment=au \
         ! h264parse ! {decoder} ! appsink name=raw sync=false async=false enable-last-sample=false \
         appsrc name=still format=time ! videoconvert ! {scale}jpegenc \
         ! appsink name=jpeg sync=false async=false enable-last-sample=false"
    )
}

/// Sets the pipeline to NULL however the snapshot ends.
struct Stopping(gst::Pipeline);

impl Drop for Stopping {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

fn pipeline_error(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Pipeline(e.to_string())
}

fn run(
    decoder: &str,
    frames: &[Bytes],
    size: Option<(u32, u32)>,
    deadline: Instant,
    within: Duration,
) -> Result<Bytes, SnapshotError> {
    let pipeline = gst::parse::launch(&launch(decoder, size))
        .map_err(pipeline_error)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| pipeline_error("not a pipeline"))?;
    let pipeline = Stopping(pipeline);
    let element = |name: &str| {
        pipeline
            .0
            .by_name(name)
            .ok_or_else(|| pipeline_error(format!("no element {name}")))
    };
    let app_src = |name: &str| {
        element(name)?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| pipeline_error(format!("{name} is not an appsrc")))
    };
    let app_sink = |name: &str| {
        element(name)?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| pipeline_error(format!("{name} is not an appsink")))
    };
    let (src, raw, still, jpeg) = (
        app_src("src")?,
        app_sink("raw")?,
        app_src("still")?,
        app_sink("jpeg")?,
    );
    let bus = pipeline.0.bus().ok_or_else(|| pipeline_error("no bus"))?;
    pipeline
        .0
        .set_state(gst::State::Playing)
        .map_err(|_| bus_error(&bus).unwrap_or_else(|| pipeline_error("cannot start")))?;
    for (i, frame) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(frame.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * FRAME_NS));
            b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
            if i > 0 {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer).map_err(pipeline_error)?;
    }
    src.end_of_stream().map_err(pipeline_error)?;
    let mut newest = None;
    while let Some(sample) = pull(&raw, &bus, deadline, within)? {
        newest = Some(sample);
    }
    let newest = newest.ok_or(SnapshotError::NoPicture)?;
    still.push_sample(&newest).map_err(pipeline_error)?;
    still.end_of_stream().map_err(pipeline_error)?;
    let picture = pull(&jpeg, &bus, deadline, within)?.ok_or(SnapshotError::NoPicture)?;
    let buffer = picture.buffer_owned().ok_or(SnapshotError::NoPicture)?;
    buffer_to_bytes(buffer).map_err(pipeline_error)
}

/// The next sample of `sink`; `None` at its end of stream. Errors on the bus end it early.
fn pull(
    sink: &gst_app::AppSink,
    bus: &gst::Bus,
    deadline: Instant,
    within: Duration,
) -> Result<Option<gst::Sample>, SnapshotError> {
    loop {
        if let Some(e) = bus_error(bus) {
            return Err(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SnapshotError::Timeout(within));
        }
        let wait = left.min(Duration::from_millis(50));
        if let Some(sample) =
            sink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
        {
            return Ok(Some(sample));
        }
        if sink.is_eos() {
            return Ok(None);
        }
    }
}

/// The first error waiting on the bus, as `element: message`.
fn bus_error(bus: &gst::Bus) -> Option<SnapshotError> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let src = e.src().map(|s| s.name().to_string());
    Some(SnapshotError::Pipeline(format!(
        "{}: {}",
        src.as_deref().unwrap_or("pipeline"),
        e.error()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` frames of 320x240 H.264 from x264enc (keyframe first, SPS/PPS in band), as capture
    /// produces them.
    fn gop(n: usize) -> Vec<Bytes> {
        gop_sized(n, 320, 240)
    }

    fn gop_sized(n: usize, w: u32, h: u32) -> Vec<Bytes> {
        gst::init().expect("gst init");
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers={n} pattern=smpte horizontal-speed=8 ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=300 \
             ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 \
             ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
        ))
        .expect("launch")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
        let sink = p
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .expect("sink");
        p.set_state(gst::State::Playing).expect("play");
        let mut out = Vec::new();
        while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            let b = s.buffer_owned().expect("buffer");
            out.push(buffer_to_bytes(b).expect("map"));
        }
        let _ = p.set_state(gst::State::Null);
        assert_eq!(out.len(), n);
        out
    }

    /// Snapshots with decoder `d` alone.
    fn only(d: &'static str) -> JpegSnapshots {
        JpegSnapshots {
            decoders: vec![d],
            preferred: AtomicUsize::new(0),
        }
    }

    /// Width and height from a JPEG's start-of-frame marker.
    fn jpeg_size(j: &[u8]) -> Option<(u32, u32)> {
        let mut i = 2;
        while i + 9 < j.len() {
            let (marker, len) = (j[i + 1], u16::from_be_bytes([j[i + 2], j[i + 3]]) as usize);
            if (0xC0..=0xC2).contains(&marker) {
                let h = u16::from_be_bytes([j[i + 5], j[i + 6]]);
                let w = u16::from_be_bytes([j[i + 7], j[i + 8]]);
                return Some((w.into(), h.into()));
            }
            i += 2 + len;
        }
        None
    }

    #[test]
    fn every_decoder_here_turns_a_gop_into_one_jpeg_of_the_asked_size() {
        let frames = gop(20);
        let snaps = JpegSnapshots::new().expect("a decoder");
        for d in snaps.decoders.clone() {
            let one = only(d);
            let started = Instant::now();
            let j = one
                .jpeg(&frames, Some((320, 240)), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{d}: {e}"));
            eprintln!(
                "{d}: 20 frames → {} B JPEG in {:?}",
                j.len(),
                started.elapsed()
            );
            assert_eq!(&j[..2], b"\xff\xd8", "{d}: not a JPEG");
            assert_eq!(jpeg_size(&j), Some((320, 240)), "{d}");
            let small = one
                .jpeg(&frames, Some((160, 120)), Duration::from_secs(10))
                .expect("scaled");
            assert_eq!(jpeg_size(&small), Some((160, 120)), "{d}");
        }
    }

    /// What a snapshot of the default stream costs: a full 1 s GOP of 1280x720@30, per decoder
    /// (`cargo test --lib media::snapshot -- --nocapture` prints it).
    #[test]
    fn a_720p_gop_decodes_well_within_the_time_limit() {
        let frames = gop_sized(30, 1280, 720);
        let snaps = JpegSnapshots::new().expect("a decoder");
        for d in snaps.decoders.clone() {
            let one = only(d);
            let started = Instant::now();
            let first = one.jpeg(&frames, Some((1280, 720)), Duration::from_secs(10));
            let loading = started.elapsed();
            let started = Instant::now();
            let j = one
                .jpeg(&frames, Some((1280, 720)), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{d}: {e}"));
            let took = started.elapsed();
            assert!(first.as_ref() == Ok(&j), "{d}: the same picture twice");
            eprintln!(
                "{d}: 30 frames of 1280x720 → {} B JPEG in {took:?} ({loading:?} the first time)",
                j.len()
            );
            assert_eq!(jpeg_size(&j), Some((1280, 720)), "{d}");
            assert!(took < Duration::from_secs(3), "{d}: {took:?}");
        }
    }

    #[test]
    fn the_picture_is_the_newest_frame_not_the_keyframe() {
        // the pattern moves: the keyframe alone and the whole GOP give different pictures, and the
        // GOP's picture is the one its last frame shows
        let frames = gop(30);
        let snaps = JpegSnapshots::new().expect("a decoder");
        let pic = |n: usize| {
            snaps
                .jpeg(&frames[..n], None, Duration::from_secs(10))
                .expect("picture")
        };
        let (key, before, all, again) = (pic(1), pic(29), pic(30), pic(30));
        assert!(key != all, "the picture is not the keyframe's");
        assert!(before != all, "nor the frame's before the last");
        assert!(all == again, "the same frames give the same picture");
    }

    #[test]
    fn bad_input_and_deadlines_are_errors_not_pictures() {
        let snaps = JpegSnapshots::new().expect("a decoder");
        assert_eq!(
            snaps.jpeg(&[], None, Duration::from_secs(1)),
            Err(SnapshotError::Empty)
        );
        let junk = [Bytes::from_static(b"\0\0\0\x01\x65garbage")];
        assert!(snaps.jpeg(&junk, None, Duration::from_secs(5)).is_err());
        let frames = gop(10);
        assert_eq!(
            snaps.jpeg(&frames, None, Duration::ZERO),
            Err(SnapshotError::Timeout(Duration::ZERO))
        );
    }
}
