//! Capture → hub: starts the config's `[[stream]]`s and turns capture events into hub announces,
//! frames and statuses.

use super::error::GatewayError;
use crate::config::Config;
use crate::contract::{Announce, MediaEvent, Status, TrackInfo, TrackKind, TrackState};
use crate::media::Capture;
use crate::service::viewers::ViewerHub;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames in flight between GStreamer's streaming threads and the hub (about 4 s of 30 fps video
/// plus 50 fps audio; full means capture drops, never blocks).
const CHANNEL: usize = 256;

/// Starts capturing every configured stream; events flow into `hub` until the returned [`Capture`]
/// is dropped (which stops the pipelines).
pub(super) fn start(cfg: &Config, hub: Arc<ViewerHub>) -> Result<Capture, GatewayError> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let mut capture = Capture::new(tx)?;
    for s in &cfg.streams {
        capture.add_stream(&s.id, s.video.as_ref(), s.audio.as_ref())?;
    }
    tokio::spawn(pump(rx, hub));
    Ok(capture)
}

/// Feeds capture events to the hub. A stream's announce lists the tracks that are up (video first).
async fn pump(mut rx: mpsc::Receiver<MediaEvent>, hub: Arc<ViewerHub>) {
    let mut tracks: BTreeMap<Arc<str>, BTreeMap<String, TrackInfo>> = BTreeMap::new();
    while let Some(event) = rx.recv().await {
        match event {
            MediaEvent::TrackUp { stream: id, info } => {
                let codec = info.codec_string.as_deref().unwrap_or_default();
                tracing::info!(stream = %id, track = %info.track, codec, "track up");
                // Not in the hub: first start, or withdrawn by a reload and restarted with
                // possibly other tracks. Either way the old track list is stale.
                if !hub.streams().iter().any(|a| *a.stream == *id) {
                    tracks.remove(&id);
                }
                let stream = tracks.entry(id.clone()).or_default();
                stream.insert(info.track.clone(), info);
                let mut list: Vec<TrackInfo> = stream.values().cloned().collect();
                list.sort_by_key(|t| t.kind() != TrackKind::Video);
                let announce = Announce {
                    stream: id.to_string(),
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
