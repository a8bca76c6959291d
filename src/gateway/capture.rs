//! Capture → hub: turns the config's `[[stream]]`s into capture specs, and capture events into hub
//! announces, frames and statuses.

use super::GatewayError;
use super::viewers::ViewerHub;
use crate::config::{self, AudioConfig, Config, VideoConfig};
use crate::hub::{Announce, Status, TrackInfo, TrackState};
use crate::media::{
    self, AudioCodec, AudioSpec, Capture, Codec, MediaEvent, VideoCodec, VideoSpec,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames in flight between GStreamer's streaming threads and the hub (about 4 s of 30 fps video
/// plus 50 fps audio; full means capture drops, never blocks).
const CHANNEL: usize = 256;

fn spec_error(stream: &str, problem: String) -> GatewayError {
    GatewayError::Spec {
        stream: stream.to_owned(),
        problem,
    }
}

/// The capture spec of a `[stream.video]` table.
fn video_spec(stream: &str, v: &VideoConfig) -> Result<VideoSpec, GatewayError> {
    let source =
        media::VideoSource::try_from(v.source.to_string()).map_err(|e| spec_error(stream, e))?;
    let codec = match v.codec {
        Codec::H264 => VideoCodec::H264,
        Codec::Mjpeg => VideoCodec::Mjpeg,
        other => {
            return Err(spec_error(
                stream,
                format!("{other:?} is not a video codec"),
            ));
        }
    };
    let encoder = match v.encoder {
        config::VideoEncoder::Auto => media::VideoEncoder::Auto,
        config::VideoEncoder::V4l2h264enc => media::VideoEncoder::V4l2h264enc,
        config::VideoEncoder::X264enc => media::VideoEncoder::X264,
        config::VideoEncoder::Openh264enc => media::VideoEncoder::Openh264,
        config::VideoEncoder::V4l2jpegenc | config::VideoEncoder::Jpegenc => {
            media::VideoEncoder::Mjpeg
        }
    };
    Ok(VideoSpec {
        source,
        width: v.width,
        height: v.height,
        fps: v.fps,
        encoder,
        codec,
        bitrate_kbps: (v.bitrate / 1000).max(1),
        keyframe_interval: v.keyframe_interval.as_secs_f64(),
        pipeline: v.pipeline.clone(),
    })
}

/// The capture spec of a `[stream.audio]` table.
fn audio_spec(stream: &str, a: &AudioConfig) -> Result<AudioSpec, GatewayError> {
    let source =
        media::AudioSource::try_from(a.source.to_string()).map_err(|e| spec_error(stream, e))?;
    let codec = match a.codec {
        Codec::Opus => AudioCodec::Opus,
        Codec::Pcm => AudioCodec::Pcm,
        other => {
            return Err(spec_error(
                stream,
                format!("{other:?} is not an audio codec"),
            ));
        }
    };
    Ok(AudioSpec {
        source,
        codec,
        sample_rate: a.sample_rate,
        channels: a.channels,
        bitrate_kbps: (a.bitrate / 1000).max(1),
        frame_ms: u32::try_from(a.frame_duration.as_millis()).unwrap_or(u32::MAX),
        ..AudioSpec::default()
    })
}

/// Starts capturing every configured stream; events flow into `hub` until the returned [`Capture`]
/// is dropped (which stops the pipelines).
pub(super) fn start(cfg: &Config, hub: Arc<ViewerHub>) -> Result<Capture, GatewayError> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let mut capture = Capture::new(tx)?;
    for s in &cfg.streams {
        for (configured, fixed) in [
            (s.video.as_ref().map(|v| v.id.as_str()), "video"),
            (s.audio.as_ref().map(|a| a.id.as_str()), "audio"),
        ] {
            if let Some(id) = configured.filter(|id| *id != fixed) {
                tracing::warn!(stream = %s.id, "track id {id:?} is published as {fixed:?}");
            }
        }
        let video = s.video.as_ref().map(|v| video_spec(&s.id, v)).transpose()?;
        let audio = s.audio.as_ref().map(|a| audio_spec(&s.id, a)).transpose()?;
        capture.add_stream(&s.id, video.as_ref(), audio.as_ref())?;
    }
    tokio::spawn(pump(rx, hub));
    Ok(capture)
}

/// Feeds capture events to the hub. A stream's announce lists the tracks that are up (video first).
async fn pump(mut rx: mpsc::Receiver<MediaEvent>, hub: Arc<ViewerHub>) {
    let mut tracks: BTreeMap<Arc<str>, BTreeMap<Arc<str>, TrackInfo>> = BTreeMap::new();
    while let Some(event) = rx.recv().await {
        match event {
            MediaEvent::TrackUp(info) => {
                tracing::info!(stream = %info.stream, track = %info.track, codec = %info.codec_string, "track up");
                let stream = tracks.entry(info.stream.clone()).or_default();
                stream.insert(info.track.clone(), track_info(&info));
                let mut list: Vec<TrackInfo> = stream.values().cloned().collect();
                list.sort_by_key(|t| t.kind() != media::TrackKind::Video);
                let announce = Announce {
                    stream: info.stream.to_string(),
                    tracks: list,
                };
                if let Err(e) = hub.announce(announce) {
                    tracing::warn!("announce refused: {e}");
                }
            }
            MediaEvent::Frame(frame) => {
                if let Err(e) = hub.publish(frame) {
                    tracing::debug!("frame refused: {e}");
                }
            }
            MediaEvent::TrackDown {
                stream,
                track,
                reason,
            } => {
                tracing::warn!(%stream, %track, "track down: {reason}");
                let status = Status {
                    stream: stream.to_string(),
                    track: track.to_string(),
                    state: TrackState::Down,
                    reason,
                };
                if let Err(e) = hub.status(status) {
                    tracing::debug!("status refused: {e}");
                }
            }
        }
    }
}

/// The announce entry of a capture track.
fn track_info(info: &media::TrackInfo) -> TrackInfo {
    TrackInfo {
        track: info.track.to_string(),
        codec: info.codec,
        codec_string: Some(info.codec_string.clone()),
        width: info.width,
        height: info.height,
        fps: info.fps,
        sample_rate: info.sample_rate,
        channels: info.channels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_tables_become_capture_specs() {
        let cfg = Config::embedded_default();
        let s = &cfg.streams[0];
        let v = video_spec(&s.id, s.video.as_ref().unwrap()).unwrap();
        assert_eq!(v.source, media::VideoSource::Auto);
        assert_eq!(v.codec, VideoCodec::H264);
        assert_eq!((v.width, v.height, v.fps), (640, 480, 30));
        assert_eq!(v.bitrate_kbps, 1000);
        assert_eq!(v.keyframe_interval, 1.0);
        v.validate().unwrap();
        let a = audio_spec(&s.id, s.audio.as_ref().unwrap()).unwrap();
        assert_eq!(
            (a.codec, a.sample_rate, a.frame_ms),
            (AudioCodec::Opus, 48000, 20)
        );
        a.validate().unwrap();
        let mut test = VideoConfig {
            source: config::VideoSource::V4l2 {
                device: "/dev/video3".into(),
            },
            encoder: config::VideoEncoder::Jpegenc,
            codec: Codec::Mjpeg,
            ..VideoConfig::default()
        };
        let v = video_spec("x", &test).unwrap();
        assert_eq!(v.source, media::VideoSource::V4l2("/dev/video3".into()));
        assert_eq!(v.encoder, media::VideoEncoder::Mjpeg);
        test.codec = Codec::Opus;
        assert!(video_spec("x", &test).is_err());
    }
}
