//! Sans-IO Socket.IO v5: packets with namespaces, ack ids and binary attachments, the decoder
//! that reassembles them from Engine.IO messages, and the session rules of each side — the
//! client's namespaces ([`ClientNamespaces`]), the server's ([`ServerNamespaces`]) and the
//! pending-ack table both use ([`AckTable`]). The server and the client drive these with their
//! sockets and timers.

mod acks;
mod client;
mod decoder;
mod packet;
#[cfg(test)]
mod pair;
mod server;

pub use acks::{AckTable, MAX_PENDING_ACKS, TooManyAcks};
pub use client::{ClientNamespaces, NamespaceError, NamespaceEvent, connect_error_message};
pub use decoder::{DecodeError, Decoder, DecoderLimits};
pub use packet::{Arg, Encoded, MAIN_NAMESPACE, Packet, PacketKind};
pub use server::{ServerAction, ServerNamespaces};
