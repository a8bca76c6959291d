//! The unit of media that flows from capture through the hub to viewers and relays.

use bytes::Bytes;
use std::sync::Arc;

/// Which kind of track a frame belongs to; decides the drop policy (video drops to the next
/// keyframe, audio drops oldest-first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
}

/// Encoded media formats sioedge carries end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 Annex B, one access unit per frame, SPS/PPS before every keyframe.
    H264,
    /// One JPEG picture per frame.
    Mjpeg,
    /// One Opus packet per frame (48 kHz).
    Opus,
    /// Interleaved signed 16-bit little-endian PCM.
    Pcm,
}

impl Codec {
    /// The track kind a codec implies.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::H264 | Codec::Mjpeg => TrackKind::Video,
            Codec::Opus | Codec::Pcm => TrackKind::Audio,
        }
    }
}

/// One encoded access unit. Cloning is cheap: `data` is shared, never copied.
#[derive(Debug, Clone)]
pub struct MediaFrame {
    /// Stream id from the config, e.g. `cam0`.
    pub stream: Arc<str>,
    /// Track id within the stream, e.g. `video` or `audio`.
    pub track: Arc<str>,
    pub codec: Codec,
    /// Presentation timestamp in microseconds, monotonic per track (also across pipeline restarts).
    pub pts: u64,
    /// Duration in microseconds (0 when unknown).
    pub duration: u64,
    /// True for frames a decoder can start from (H.264 IDR with SPS/PPS, every audio frame).
    pub key: bool,
    /// Capture wall-clock time in microseconds since the Unix epoch (for latency measurement).
    pub t: u64,
    pub data: Bytes,
}
