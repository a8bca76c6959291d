//! The hub: streams, the late-joiner cache and bounded fan-out to viewers and relays.
//!
//! Transport-neutral (no sockets, no GStreamer): the gateway feeds it captured frames, the relay
//! feeds it frames from network publishers, and both serve viewers from it with the same contract.

mod adapter;
mod cache;
pub mod contract;
mod fanout;
pub mod report;
mod types;

pub use adapter::{Adapter, InProcess};
pub use cache::{CacheLimits, GopCache};
pub use fanout::{
    Hub, HubError, HubSnapshot, Packet, ReceiverCounters, ReceiverId, Remote, Shared, Sink,
    StreamSnapshot, TrackSnapshot,
};
pub use types::{Announce, Event, MediaMeta, Status, TrackInfo, TrackState};
