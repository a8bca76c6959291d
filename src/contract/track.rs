//! One track of a stream, as capture finds it and as viewers are told about it: one type from
//! the appsink to the `announce` JSON.

use super::codec::{Codec, TrackKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Everything a viewer needs to configure a decoder for a track, known before its first frame.
///
/// Serializes to one entry of the contract's `announce.tracks` array:
/// `{track, codec, codecString, width, height, fps}` for video,
/// `{track, codec, codecString, sampleRate, channels}` for audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// Track id within the stream, e.g. `video`.
    pub track: String,
    /// The codec of every frame of this track.
    pub codec: Codec,
    /// WebCodecs/RFC 6381 codec string: `avc1.42C01F` (from the SPS), `opus`, `mjpeg`, `pcm-s16`.
    /// Capture always sets it; a publisher on the network may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec_string: Option<String>,
    /// Picture width in pixels (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Picture height in pixels (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second (video; the negotiated rate, rounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Samples per second (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Channel count (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// H.264 from capture only: the `avcC` record built from the SPS/PPS (WebCodecs
    /// `description`, fMP4 `avcC` box). Not serialized: frames are Annex B with SPS/PPS in band,
    /// so JSON viewers do not need it.
    #[serde(skip)]
    pub avcc: Option<Bytes>,
    /// What the gateway captures for this track, e.g. `v4l2:/dev/video0 MJPEG 1280x720@30 →
    /// jpegdec → … → v4l2h264enc`: shown in its `/api/status`, never sent to viewers or relays.
    #[serde(skip)]
    pub capture: Option<String>,
}

impl TrackInfo {
    /// Video or audio, from the codec.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_the_contract_fields_only() {
        let info = TrackInfo {
            track: "video".into(),
            codec: Codec::H264,
            codec_string: Some("avc1.42C01F".into()),
            width: Some(1280),
            height: Some(720),
            fps: Some(30),
            sample_rate: None,
            channels: None,
            avcc: Some(Bytes::from_static(b"\x01")),
            capture: Some("test pattern".into()),
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"track":"video","codec":"h264","codecString":"avc1.42C01F",
                "width":1280,"height":720,"fps":30})
        );
        let back: TrackInfo = serde_json::from_value(v).unwrap();
        assert_eq!(
            back,
            TrackInfo {
                avcc: None,
                capture: None,
                ..info
            }
        );
    }
}
