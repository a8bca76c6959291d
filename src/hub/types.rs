//! The messages of the event contract, as Rust values (serde), shared by the gateway and the relay.
//!
//! The wire shape is the contract in docs/event-contract.md: `announce` `{stream, tracks:[{track,
//! codec, codecString, width, height, fps | sampleRate, channels}]}`, `status` `{stream, track,
//! state, reason}`, `media` `{stream, track, seq, pts, key, t}` plus the frame as one binary
//! attachment.

use crate::media::{Codec, TrackKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One track of an announced stream: what a viewer needs to configure a decoder before the first frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// Track id within the stream, e.g. `video`.
    pub track: String,
    /// Codec family.
    pub codec: Codec,
    /// Full codec string for WebCodecs/MSE, e.g. `avc1.42C01F` or `opus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec_string: Option<String>,
    /// Video width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Video height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Video frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Audio sample rate in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Audio channel count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// What the gateway captures for this track (source, mode, encoder), for its `/api/status`;
    /// never sent to viewers or relays.
    #[serde(skip)]
    pub capture: Option<String>,
}

impl TrackInfo {
    /// Video or audio, from the codec.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

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

/// One contract event ready to be encoded: a name, its first argument as JSON text, and an optional
/// binary second argument. Transports turn it into their own wire form exactly once per event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `announce`, `status` or `media`.
    pub name: &'static str,
    /// The first argument, serialized JSON.
    pub json: String,
    /// The binary attachment (`media` only).
    pub binary: Option<Bytes>,
}

impl Event {
    /// The `announce` event for `announce`.
    pub fn announce(announce: &Announce) -> Event {
        Event {
            name: "announce",
            json: to_json(announce),
            binary: None,
        }
    }

    /// The `status` event for `status`.
    pub fn status(status: &Status) -> Event {
        Event {
            name: "status",
            json: to_json(status),
            binary: None,
        }
    }

    /// The `media` event: meta plus the frame as binary attachment (shared, not copied).
    pub fn media(meta: &MediaMeta, data: Bytes) -> Event {
        Event {
            name: "media",
            json: to_json(meta),
            binary: Some(data),
        }
    }

    /// Bytes this event occupies in a queue (JSON plus attachment).
    pub fn size(&self) -> usize {
        self.json.len() + self.binary.as_ref().map_or(0, Bytes::len)
    }
}

/// Serializes contract types, which are plain structs of strings and numbers and cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// A stream with a 320×240 H.264 video track and a mono Opus audio track, for tests.
#[cfg(test)]
pub(crate) fn cam_announce(stream: &str) -> Announce {
    Announce {
        stream: stream.into(),
        tracks: vec![
            TrackInfo {
                track: "video".into(),
                codec: Codec::H264,
                codec_string: Some("avc1.42C01F".into()),
                width: Some(320),
                height: Some(240),
                fps: Some(30),
                sample_rate: None,
                channels: None,
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
        codec: Codec::Opus,
        codec_string: Some("opus".into()),
        width: None,
        height: None,
        fps: None,
        sample_rate: Some(48000),
        channels: Some(1),
        capture: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_uses_the_contract_field_names() {
        let a = cam_announce("cam0");
        let v: serde_json::Value = serde_json::from_str(&Event::announce(&a).json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"stream":"cam0","tracks":[
                {"track":"video","codec":"h264","codecString":"avc1.42C01F","width":320,"height":240,"fps":30},
                {"track":"audio","codec":"opus","codecString":"opus","sampleRate":48000,"channels":1}]})
        );
        let back: Announce = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn media_event_carries_meta_and_shares_the_frame() {
        let data = Bytes::from_static(b"\0\0\0\x01frame");
        let meta = MediaMeta {
            stream: "cam0".into(),
            track: "video".into(),
            seq: 7,
            pts: 1000,
            key: true,
            t: 42,
        };
        let e = Event::media(&meta, data.clone());
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"stream":"cam0","track":"video","seq":7,"pts":1000,"key":true,"t":42})
        );
        assert_eq!(e.binary.as_ref().map(|b| b.as_ptr()), Some(data.as_ptr()));
        assert_eq!(e.size(), e.json.len() + 9);
    }
}
