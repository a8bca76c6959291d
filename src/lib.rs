//! sioedge: camera and microphone to the browser over Socket.IO.
//!
//! Layers, bottom up (each imports only from layers below it; `tests/layers.rs` checks it):
//! - Leaves: [`contract`] (the event contract: tracks, frames, announce/status/media),
//!   [`queue`] (the media-aware bounded queue in front of every receiver), [`engineio`]
//!   (sans-IO Engine.IO), [`viewer`] (the embedded viewer page), and the crate-private `sync`
//!   (the one lock helper), `files` (bounded reads of the files a config names) and `repeats`
//!   (a failure that keeps happening, logged as a summary with its count).
//! - [`socketio`]: sans-IO Socket.IO (packets, decoder, the client's and the server's namespace
//!   rules, the pending-ack table); [`media`]: GStreamer capture (behind the `media` feature).
//! - [`config`] (the TOML file), [`hub`] (streams, late-joiner cache, bounded fan-out) and
//!   [`server`] (hyper + WebSocket, the only module besides [`client`] that owns sockets).
//! - [`client`]: the publisher client (its settings are the config's `[[relay]]` values).
//! - [`service`]: what both modes share — systemd, listening, TLS, the viewer server and contract,
//!   `/api/status` and `/metrics`.
//! - The two modes, which never import each other: [`gateway`] (`sioedge run`) and [`relay`]
//!   (`sioedge relay`).

#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod config;
pub mod contract;
pub mod engineio;
mod files;
pub mod gateway;
pub mod hub;
pub mod media;
pub mod queue;
pub mod relay;
mod repeats;
pub mod server;
pub mod service;
pub mod socketio;
mod sync;
pub mod viewer;
