//! The frame path is zero-copy: the `Bytes` in a `MediaFrame` is GStreamer's buffer memory.
#![cfg(feature = "media")]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sioedge::media::buffer_to_bytes;
use sioedge::media::pipeline::{Encoder, VideoInput, video_launch};
use sioedge::media::{VideoSource, VideoSpec};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn encoder_output_is_shared_not_copied() {
    gst::init().unwrap();
    let spec = VideoSpec {
        source: VideoSource::Test,
        width: 320,
        height: 240,
        ..Default::default()
    };
    // the exact pipeline capture runs for a test source with x264
    let launch = video_launch(&spec, &VideoInput::Test { overlay: false }, Encoder::X264);
    let pipeline = gst::parse::launch(&launch).unwrap();
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for _ in 0..3 {
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(10))
            .expect("a sample within 10 s");
        let buffer = sample.buffer_owned().unwrap();
        assert_eq!(
            buffer.n_memory(),
            1,
            "single memory block: mapping does not merge"
        );
        let gst_ptr = buffer.map_readable().unwrap().as_ptr();
        let len = buffer.size();
        let bytes = buffer_to_bytes(buffer).unwrap();
        assert_eq!(
            bytes.as_ptr(),
            gst_ptr,
            "Bytes points into the GStreamer buffer"
        );
        assert_eq!(bytes.len(), len);
        let clone = bytes.clone();
        assert_eq!(clone.as_ptr(), gst_ptr);
        assert_eq!(bytes.slice(4..).as_ptr(), gst_ptr.wrapping_add(4));
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Memory that records when GStreamer frees it.
struct Tracked(Vec<u8>, Arc<AtomicBool>);
impl AsMut<[u8]> for Tracked {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}
impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
    }
}

#[test]
fn bytes_keep_the_buffer_alive_until_the_last_clone_drops() {
    gst::init().unwrap();
    let freed = Arc::new(AtomicBool::new(false));
    let data = vec![7u8; 4096];
    let ptr = data.as_ptr();
    let buffer = gst::Buffer::from_mut_slice(Tracked(data, freed.clone()));
    let bytes = buffer_to_bytes(buffer).unwrap();
    assert_eq!(bytes.as_ptr(), ptr, "no copy from the original allocation");
    let clone = bytes.clone();
    drop(bytes);
    assert!(
        !freed.load(Ordering::SeqCst),
        "freed while a clone is alive"
    );
    assert_eq!(clone[4095], 7);
    drop(clone);
    assert!(
        freed.load(Ordering::SeqCst),
        "memory released with the last clone"
    );
}
