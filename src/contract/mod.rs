//! The event contract: what capture, the hub, the gateway, the relay and viewers exchange, as Rust
//! values. A leaf (it imports nothing of the crate), so media, hub, gateway and relay all depend on
//! it and on nothing of each other for these types (the role of mediamtx's `internal/defs/`).
//!
//! - [`Codec`], [`TrackKind`], [`TrackInfo`]: what a track is (one type from capture to viewer).
//! - [`MediaFrame`], [`MediaEvent`]: what capture produces.
//! - [`Announce`], [`Status`], [`TrackState`], [`MediaMeta`]: the JSON messages on the wire.
//! - [`ContractEvent`] and the event names: one message ready to be encoded by a transport.
//!
//! The wire shape (docs/event-contract.md): `announce` `{stream, tracks:[{track, codec, codecString, width, height, fps |
//! sampleRate, channels}]}`, `status` `{stream, track, state, reason}`, `media` `{stream, track,
//! seq, pts, key, t}` plus the frame as one binary attachment; viewers send `streams`, `watch`,
//! `unwatch`.

mod codec;
mod event;
mod frame;
mod messages;
mod track;

pub use codec::{Codec, TrackKind};
pub use event::{ANNOUNCE, ContractEvent, MEDIA, STATUS, STREAMS, UNWATCH, WATCH};
pub use frame::{MediaEvent, MediaFrame};
pub use messages::{Announce, MediaMeta, Status, TrackState};
pub use track::TrackInfo;

#[cfg(test)]
pub(crate) use messages::{cam_announce, opus_track};
