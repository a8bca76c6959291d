//! Sans-IO Socket.IO v5: packets with namespaces, ack ids and binary attachments, and the
//! decoder that reassembles them from Engine.IO messages.

pub mod decoder;
pub mod packet;

pub use decoder::{DecodeError, Decoder, DecoderLimits};
pub use packet::{Arg, Encoded, MAIN_NAMESPACE, Packet, PacketKind};
