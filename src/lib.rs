//! sioedge: camera and microphone to the browser over Socket.IO.
//!
//! Layers, bottom up:
//! - [`engineio`], [`socketio`]: sans-IO protocol cores (bytes and time in; bytes, events and
//!   deadlines out). Shared by the server and the client.
//! - [`server`] (hyper + WebSocket) and [`client`] (the publisher): the only modules that own sockets.
//! - [`media`]: GStreamer capture and encoding (behind the `media` feature), producing [`media::MediaFrame`]s.
//! - [`hub`]: streams, late-joiner cache and bounded fan-out to viewers and relays.
//! - [`config`]: the TOML configuration file.
//! - [`service`]: systemd integration (sd_notify, watchdog), privilege drop, reload/stop signals.

pub mod client;
pub mod config;
pub mod contract;
pub mod engineio;
pub mod gateway;
pub mod hub;
pub mod media;
pub mod queue;
pub mod relay;
pub mod server;
pub mod service;
pub mod socketio;
mod sync;
pub mod viewer;
