//! The hub: streams, the late-joiner cache and bounded fan-out to viewers and relays.

pub mod queue;
