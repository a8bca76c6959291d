//! Relay mode (`sioedge relay`): authenticated publishers, many viewers, Redis scale-out.

pub mod redis_bus;
