//! Sans-IO Engine.IO v4: packets, long-polling payloads, the handshake and (server side) the
//! session state machine. Bytes and `Instant`s in; bytes, events and deadlines out. No sockets,
//! no runtime: `server/` and `client/` drive these types.

pub mod client;
pub mod handshake;
pub mod packet;
pub mod payload;
pub mod session;
mod str;

pub use handshake::{Handshake, generate_sid};
pub use packet::{Packet, PacketError, WsFrame};
pub use payload::{PayloadError, PayloadLimits, decode_payload, encode_payload};
pub use session::{CloseReason, Event, Session, SessionConfig, State, Transmit, TransportKind};
pub use str::{Str, Utf8Error};
