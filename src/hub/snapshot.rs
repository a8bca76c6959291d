//! What the hub shows of itself: counters of every stream, track and receiver, for status pages
//! and metrics.

use crate::contract::{Codec, TrackKind, TrackState};
use serde::Serialize;

/// Counters of one track, for `/api/status` and `/metrics`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrackSnapshot {
    /// Track id.
    pub track: String,
    /// Video or audio.
    pub kind: TrackKind,
    /// Codec family.
    pub codec: Codec,
    /// Live or down.
    pub state: TrackState,
    /// Why it is down (empty when live).
    pub reason: String,
    /// Frames received from the publisher.
    pub frames_in: u64,
    /// Bytes received from the publisher.
    pub bytes_in: u64,
    /// Frames accepted by receivers' queues.
    pub frames_out: u64,
    /// Frames receivers' queues refused or evicted on push.
    pub dropped: u64,
    /// Bits per second over the last full second of media time.
    pub bitrate_bps: u64,
    /// Bytes held by the late-joiner cache.
    pub cache_bytes: usize,
    /// Last seq given out.
    pub seq: Option<u64>,
    /// What the gateway captures (source, mode, encoder); absent on relays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
}

/// One stream in a [`HubSnapshot`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamSnapshot {
    /// Stream id.
    pub stream: String,
    /// Receivers watching it.
    pub watchers: usize,
    /// Its tracks.
    pub tracks: Vec<TrackSnapshot>,
}

/// A consistent view of the hub, for status pages and metrics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HubSnapshot {
    /// Announced streams, by id.
    pub streams: Vec<StreamSnapshot>,
    /// Attached receivers (viewers and relay clients).
    pub receivers: usize,
}

/// Counters of one receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiverCounters {
    /// Media frames its queue accepted.
    pub frames: u64,
    /// Media frames its queue dropped.
    pub dropped: u64,
    /// Control packets that did not fit (the transport should disconnect it).
    pub overflows: u64,
}
