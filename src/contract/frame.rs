//! The unit of media that flows from capture through the hub to viewers and relays, and what
//! capture reports around it.

use super::codec::Codec;
use super::track::TrackInfo;
use bytes::Bytes;
use std::sync::Arc;

/// One encoded access unit. Cloning is cheap: `data` is shared, never copied.
#[derive(Debug, Clone)]
pub struct MediaFrame {
    /// Stream id from the config, e.g. `cam0`.
    pub stream: Arc<str>,
    /// Track id within the stream, e.g. `video` or `audio`.
    pub track: Arc<str>,
    /// The track's codec.
    pub codec: Codec,
    /// Presentation timestamp in microseconds, monotonic per track (also across pipeline restarts).
    pub pts: u64,
    /// Duration in microseconds (0 when unknown).
    pub duration: u64,
    /// True for frames a decoder can start from (H.264 IDR with SPS/PPS, every audio frame).
    pub key: bool,
    /// Capture wall-clock time in microseconds since the Unix epoch (for latency measurement).
    pub t: u64,
    /// The encoded bytes (Annex B for H.264).
    pub data: Bytes,
}

/// What capture hands to the rest of the program, in order per track: `TrackUp` → `Frame`… →
/// `TrackDown` → `TrackUp` → …
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// The track's pipeline is producing frames; sent before its first frame (and again, possibly
    /// with new values, after every restart).
    TrackUp {
        /// Stream id.
        stream: Arc<str>,
        /// The track as viewers are told about it (`announce`).
        info: TrackInfo,
    },
    /// One encoded access unit.
    Frame(MediaFrame),
    /// The track stopped (pipeline error, EOS, device unplugged or busy); capture retries with
    /// backoff by itself. `reason` carries the GStreamer message and the element that posted it.
    TrackDown {
        /// Stream id.
        stream: Arc<str>,
        /// Track id.
        track: Arc<str>,
        /// Human-readable cause, e.g. `v4l2src0: Cannot identify device '/dev/video99'.`
        reason: String,
    },
}
