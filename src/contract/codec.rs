//! Codec families and the two kinds of track.

use serde::{Deserialize, Serialize};

/// Which kind of track a frame belongs to; decides the drop policy (video drops to the next
/// keyframe, audio drops oldest-first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    /// Pictures: a decoder needs a keyframe to start.
    Video,
    /// Sound: every frame is a starting point.
    Audio,
}

/// Encoded media formats sioedge carries end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
