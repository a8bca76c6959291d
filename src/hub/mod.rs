//! The hub: streams, the late-joiner cache and bounded fan-out to viewers and relays.
//!
//! Transport-neutral (no sockets, no GStreamer): the gateway feeds it captured frames, the relay
//! feeds it frames from network publishers, and both serve viewers from it with the same contract.

mod adapter;
mod cache;
mod fanout;
mod picture;
pub(crate) mod requests;
mod snapshot;

pub use adapter::{Adapter, InProcess};
pub use cache::{CacheBudget, CacheLimits, GopCache};
pub use fanout::{EncodedEvent, Hub, HubError, ReceiverId, Remote, SharedEvent, Sink};
pub use picture::{FrameId, NewestPicture};
pub use snapshot::{HubSnapshot, ReceiverCounters, StreamSnapshot, TrackSnapshot};
