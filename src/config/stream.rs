//! `[[stream]]`: an id plus the track specs the media module builds pipelines from. The specs
//! ([`VideoSpec`], [`AudioSpec`]) are media's own serde types, compiled without GStreamer, so the
//! file format and the capture code cannot drift apart. This is the one track schema: do not add
//! a config-side twin of these types (media, the gateway and the board profiles all use these keys).

use crate::media::{AudioSpec, VideoSpec};
use serde::Deserialize;

/// One stream: an id plus an optional video and an optional audio track (at least one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Stream id as viewers and relays see it, e.g. `cam0`.
    pub id: String,
    /// The video track (`[stream.video]`), if any.
    pub video: Option<VideoSpec>,
    /// The audio track (`[stream.audio]`), if any.
    pub audio: Option<AudioSpec>,
}
