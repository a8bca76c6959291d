//! The seam between one hub and its peers on other machines.
//!
//! A [`Hub`](super::Hub) fans out to the receivers attached to *this* process. Everything a local
//! publisher produces is also handed to its [`Adapter`], whose job is to make it visible elsewhere:
//! the in-process adapter does nothing (one process is the whole world); the relay's Redis adapter
//! publishes to a channel per stream and stores the late-joiner cache with a TTL, and feeds what other
//! nodes publish back in with [`Hub::apply_remote`](super::Hub::apply_remote). Handlers never see
//! which adapter is in use (the same shape as socket.io's and socketioxide's adapters).
//!
//! Adapter methods are called after the hub's lock is released, from capture or socket tasks: they
//! must not block (queue the work on a task of your own).

use crate::contract::{Announce, MediaMeta, Status};
use bytes::Bytes;

/// Propagates what local publishers produce to other nodes, and learns which streams to follow.
pub trait Adapter: Send + Sync + 'static {
    /// A local publisher announced `announce` (new stream, or its tracks changed).
    fn announced(&self, announce: &Announce);
    /// A local publisher's stream is gone (publisher disconnected or capture removed).
    fn withdrawn(&self, stream: &str);
    /// A local track changed state.
    fn status(&self, status: &Status);
    /// A local frame, with the seq the hub gave it. `data` is shared, not copied.
    fn frame(&self, meta: &MediaMeta, data: &Bytes);
    /// The first local receiver started watching `stream`: start following it from other nodes.
    fn watched(&self, stream: &str);
    /// The last local receiver stopped watching `stream`.
    fn unwatched(&self, stream: &str);
}

/// The adapter for a single process: nothing to propagate.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcess;

impl Adapter for InProcess {
    fn announced(&self, _: &Announce) {}
    fn withdrawn(&self, _: &str) {}
    fn status(&self, _: &Status) {}
    fn frame(&self, _: &MediaMeta, _: &Bytes) {}
    fn watched(&self, _: &str) {}
    fn unwatched(&self, _: &str) {}
}
