//! What capture hands to the rest of the program: track descriptions, frames and outages.

use super::frame::{Codec, MediaFrame};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

/// Everything a viewer needs to configure a decoder for a track, known before its first frame.
///
/// Serializes to one entry of the contract's `announce.tracks` array:
/// `{track, codec, codecString, width, height, fps}` for video,
/// `{track, codec, codecString, sampleRate, channels}` for audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// Stream id (not serialized: `announce` carries it once for all tracks).
    #[serde(skip)]
    pub stream: Arc<str>,
    /// Track id within the stream: `video` or `audio`.
    #[serde(serialize_with = "as_str")]
    pub track: Arc<str>,
    /// The codec of every frame of this track.
    pub codec: Codec,
    /// WebCodecs/RFC 6381 codec string: `avc1.42C01F` (from the SPS), `opus`, `mjpeg`, `pcm-s16`.
    pub codec_string: String,
    /// Picture width in pixels (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Picture height in pixels (video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second (video; from the negotiated caps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Samples per second (audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Channel count (audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// H.264 only: the `avcC` record built from the SPS/PPS (WebCodecs `description`, fMP4 `avcC`
    /// box). Not serialized: frames are Annex B with SPS/PPS in band, so JSON viewers do not need it.
    #[serde(skip)]
    pub avcc: Option<Bytes>,
    /// What the track captures, e.g. `v4l2:/dev/video0 MJPEG 1280x720@30 → jpegdec → … →
    /// v4l2h264enc`: shown in `/api/status`, not announced to viewers.
    #[serde(skip)]
    pub capture: Option<String>,
}

impl From<&TrackInfo> for crate::hub::TrackInfo {
    /// The hub's `announce` entry for this track (fps rounded to whole frames per second).
    fn from(i: &TrackInfo) -> Self {
        crate::hub::TrackInfo {
            track: i.track.to_string(),
            codec: i.codec,
            codec_string: Some(i.codec_string.clone()),
            width: i.width,
            height: i.height,
            fps: i.fps.map(|f| f.round() as u32),
            sample_rate: i.sample_rate,
            channels: i.channels,
            capture: i.capture.clone(),
        }
    }
}

fn as_str<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// Output of [`super::Capture`], in order per track: `TrackUp` → `Frame`… → `TrackDown` → `TrackUp` → …
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// The track's pipeline is producing frames; sent before its first frame (and again, possibly
    /// with new values, after every restart).
    TrackUp(TrackInfo),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_the_hub_announce_entry() {
        let info = TrackInfo {
            stream: "cam0".into(),
            track: "video".into(),
            codec: Codec::H264,
            codec_string: "avc1.42C01F".into(),
            width: Some(1280),
            height: Some(720),
            fps: Some(30.0),
            sample_rate: None,
            channels: None,
            avcc: Some(Bytes::from_static(b"\x01")),
            capture: Some("test pattern".into()),
        };
        let hub = crate::hub::TrackInfo::from(&info);
        assert_eq!(hub.fps, Some(30));
        let ours = serde_json::to_value(&info).unwrap();
        let theirs = serde_json::to_value(&hub).unwrap();
        assert_eq!(ours["codecString"], "avc1.42C01F");
        for key in ["track", "codec", "codecString", "width", "height"] {
            assert_eq!(ours[key], theirs[key], "{key}");
        }
        assert!(
            ours.get("stream").is_none()
                && ours.get("avcc").is_none()
                && ours.get("capture").is_none()
                && theirs.get("capture").is_none()
                && ours.get("sampleRate").is_none()
        );
    }
}
