//! The newest picture of a stream as the late-joiner cache holds it: what a snapshot is made of.

use crate::contract::{ContractEvent, MediaMeta, TrackInfo};
use bytes::Bytes;

/// One cached frame, told apart from every other frame of its track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameId {
    /// The frame's seq.
    pub seq: u64,
    /// Its capture time (µs since the Unix epoch): seq restarts with a re-announced track, this does not.
    pub t: u64,
}

/// A stream's newest picture, read-only: the video track's cached GOP (keyframe first, newest last).
#[derive(Debug, Clone)]
pub struct NewestPicture {
    /// The video track (codec, size).
    pub track: TrackInfo,
    /// The frames: the keyframe and the deltas since, in order. Only the keyframe when the GOP
    /// outgrew the cache (then the picture is the keyframe's).
    pub frames: Vec<Bytes>,
    /// The keyframe.
    pub key: FrameId,
    /// The last frame, whose picture this is.
    pub newest: FrameId,
}

impl NewestPicture {
    /// From the cached `media` events of `track`, keyframe first; `None` when there is none.
    pub(super) fn from_events<'a>(
        track: TrackInfo,
        events: impl Iterator<Item = &'a ContractEvent>,
    ) -> Option<NewestPicture> {
        let mut frames = Vec::new();
        let mut ids = Vec::new();
        for e in events {
            // the hub wrote this JSON from a MediaMeta: it always parses back
            let meta: MediaMeta = serde_json::from_str(&e.json).ok()?;
            frames.push(e.binary.clone()?);
            ids.push(FrameId {
                seq: meta.seq,
                t: meta.t,
            });
        }
        Some(NewestPicture {
            track,
            key: *ids.first()?,
            newest: *ids.last()?,
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::contract::{Codec, MediaFrame, Status, TrackState, cam_announce};
    use crate::hub::{CacheLimits, Hub, HubError, InProcess};
    use bytes::Bytes;
    use std::sync::Arc;

    fn hub(limits: CacheLimits) -> Hub<()> {
        let hub = Hub::new(|_: &_| (), Arc::new(InProcess), limits);
        hub.announce(cam_announce("cam0")).expect("announce");
        hub
    }

    fn publish(hub: &Hub<()>, track: &str, n: u64, key: bool) {
        hub.publish(MediaFrame {
            stream: "cam0".into(),
            track: track.into(),
            codec: if track == "video" {
                Codec::H264
            } else {
                Codec::Opus
            },
            pts: n * 1000,
            duration: 0,
            key,
            t: 1_000_000 + n,
            data: Bytes::from(vec![n as u8; 10]),
        })
        .expect("publish");
    }

    #[test]
    fn the_newest_picture_is_the_video_gop_from_its_keyframe() {
        let hub = hub(CacheLimits::default());
        assert_eq!(
            hub.newest_picture("nope").unwrap_err(),
            HubError::UnknownStream("nope".into())
        );
        assert!(
            hub.newest_picture("cam0").unwrap().is_none(),
            "no frame yet"
        );
        publish(&hub, "video", 0, false); // before any keyframe: nothing to show
        assert!(hub.newest_picture("cam0").unwrap().is_none());
        publish(&hub, "video", 1, true);
        publish(&hub, "audio", 2, true);
        publish(&hub, "video", 3, false);
        let p = hub.newest_picture("cam0").unwrap().expect("a picture");
        assert_eq!(p.track.codec, Codec::H264);
        assert_eq!(
            p.frames,
            vec![Bytes::from(vec![1u8; 10]), Bytes::from(vec![3u8; 10])]
        );
        assert_eq!((p.key.seq, p.key.t), (1, 1_000_001));
        assert_eq!((p.newest.seq, p.newest.t), (2, 1_000_003));
        publish(&hub, "video", 4, true);
        let p = hub.newest_picture("cam0").unwrap().expect("a picture");
        assert_eq!((p.frames.len(), p.key, p.newest), (1, p.newest, p.newest));
        hub.status(Status {
            stream: "cam0".into(),
            track: "video".into(),
            state: TrackState::Down,
            reason: "unplugged".into(),
        })
        .expect("status");
        assert!(
            hub.newest_picture("cam0").unwrap().is_none(),
            "a down track shows nothing stale"
        );
    }

    #[test]
    fn an_oversized_gop_gives_the_keyframe_picture() {
        let hub = hub(CacheLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        publish(&hub, "video", 1, true);
        for n in 2..10 {
            publish(&hub, "video", n, false);
        }
        let p = hub.newest_picture("cam0").unwrap().expect("a picture");
        assert_eq!(p.frames.len(), 1);
        assert_eq!(p.newest, p.key);
    }
}
