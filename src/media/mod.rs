//! Media capture (GStreamer, behind the `media` feature) and the frame type every other layer carries.

mod frame;

pub use frame::{Codec, MediaFrame, TrackKind};
