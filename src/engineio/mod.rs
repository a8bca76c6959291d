//! Sans-IO Engine.IO v4: packets, long-polling payloads, the handshake and (server side) the
//! session state machine. Bytes and `Instant`s in; bytes, events and deadlines out. No sockets,
//! no runtime: `server/` and `client/` drive these types.
//!
//! - [`Packet`] / [`WsFrame`]: one packet, and its WebSocket frame (one packet per frame).
//! - [`encode_payload`], [`decode_payload`]: long-polling bodies (several packets, `0x1e`-separated, binary as `b`+base64).
//! - [`Handshake`], [`generate_sid`]: the OPEN packet's JSON and session ids.
//! - [`Session`]: one server-side session (transport, heartbeat, upgrade, close); see its docs
//!   for the driving loop.
//! - [`Str`]: zero-copy UTF-8 text over `Bytes`, so decoded messages slice the received buffer.

pub mod client;
mod handshake;
pub(crate) mod packet;
mod payload;
mod session;
mod str;

pub use handshake::{Handshake, generate_sid};
pub use packet::{Packet, PacketError, WsFrame};
pub use payload::{
    PayloadBuilder, PayloadError, PayloadPackets, decode_payload, encode_payload, payload_len,
    payload_packets,
};
pub use session::{
    CloseReason, RequestError, Session, SessionConfig, SessionEvent, State, Transmit, TransportKind,
};
pub use str::{Str, Utf8Error};
