//! The JSON messages of the contract (serde): `announce`, `status` and the first argument of
//! `media`.

use super::track::TrackInfo;
use serde::{Deserialize, Serialize};

/// The `announce` event: a stream and its tracks. Sent on connect and whenever it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announce {
    /// Stream id, e.g. `cam0`.
    pub stream: String,
    /// The stream's tracks.
    pub tracks: Vec<TrackInfo>,
}

/// Whether a track currently delivers frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackState {
    /// Frames are flowing.
    Live,
    /// The source failed or stopped; `reason` says why.
    Down,
}

/// The `status` event: a track went live or down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Stream id.
    pub stream: String,
    /// Track id.
    pub track: String,
    /// New state.
    pub state: TrackState,
    /// Human-readable cause (empty when live).
    #[serde(default)]
    pub reason: String,
}

/// The first argument of a `media` event; the second is the frame itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaMeta {
    /// Stream id.
    pub stream: String,
    /// Track id.
    pub track: String,
    /// Per-track sequence number, +1 per frame at the hub that first saw the frame; a gap means drops.
    pub seq: u64,
    /// Presentation timestamp in microseconds.
    pub pts: u64,
    /// A decoder can start at this frame.
    pub key: bool,
    /// Capture wall-clock time, microseconds since the Unix epoch.
    pub t: u64,
}

/// A stream with a 320×240 H.264 video track and a mono Opus audio track, for tests.
#[cfg(test)]
pub(crate) fn cam_announce(stream: &str) -> Announce {
    Announce {
        stream: stream.into(),
        tracks: vec![
            TrackInfo {
                track: "video".into(),
                codec: super::codec::Codec::H264,
                codec_string: Some("avc1.42C01F".into()),
                width: Some(320),
                height: Some(240),
                fps: Some(30),
                sample_rate: None,
                channels: None,
                avcc: None,
                capture: None,
            },
            opus_track(),
        ],
    }
}

/// A mono 48 kHz Opus track named `audio`, for tests.
#[cfg(test)]
pub(crate) fn opus_track() -> TrackInfo {
    TrackInfo {
        track: "audio".into(),
        codec: super::codec::Codec::Opus,
        codec_string: Some("opus".into()),
        width: None,
        height: None,
        fps: None,
        sample_rate: Some(48000),
        channels: Some(1),
        avcc: None,
        capture: None,
    }
}
