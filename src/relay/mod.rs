//! Relay mode (`sioedge relay`): authenticated publishers, many viewers, Redis scale-out.

pub mod cluster;
pub mod redis_bus;
