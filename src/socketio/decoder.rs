//! The Socket.IO v5 packet decoder: a small state machine fed Engine.IO messages.
//!
//! Feed every Engine.IO text message to [`Decoder::feed_text`] and every binary message to
//! [`Decoder::feed_binary`]; each returns `Some(packet)` once a packet is complete (a binary
//! packet completes with its last attachment). Errors are typed and final for that connection:
//! the caller closes it. Memory is bounded by [`DecoderLimits::max_attachments`] times the
//! Engine.IO message limit.

use super::packet::{Packet, PacketKind, RESERVED_EVENTS, placeholder_num};
use crate::engineio::Str;
use bytes::Bytes;
use serde_json::Value;

/// Bounds applied by the [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Most attachments one binary packet may announce.
    pub max_attachments: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_attachments: 10,
        }
    }
}

/// Why a Socket.IO message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An empty text message.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type digit.
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count of a binary packet is missing or malformed.
    #[error("malformed attachment count")]
    InvalidAttachmentCount,
    /// More attachments than [`DecoderLimits::max_attachments`].
    #[error("{count} attachments exceed the limit of {max}")]
    TooManyAttachments {
        /// Announced count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The namespace is not followed by `,` before the data, or is otherwise malformed.
    #[error("malformed namespace")]
    InvalidNamespace,
    /// The ack id does not fit in 64 bits.
    #[error("malformed ack id")]
    InvalidAckId,
    /// The data is not valid JSON.
    #[error("invalid JSON data")]
    InvalidJson,
    /// The data has the wrong shape for the packet type (e.g. an event that is not an array
    /// starting with a name, or a reserved event name).
    #[error("invalid payload for packet type")]
    InvalidPayload,
    /// A placeholder is malformed or its `num` is not below the attachment count.
    #[error("invalid attachment placeholder")]
    InvalidPlaceholder,
    /// A binary message arrived while no binary packet was waiting for attachments.
    #[error("unexpected binary message")]
    UnexpectedBinary,
    /// A text message arrived while a binary packet still waited for attachments.
    #[error("text message while attachments were pending")]
    UnexpectedText,
}

/// Reassembles Socket.IO packets from Engine.IO messages. One per connection.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecoderLimits,
    /// A binary packet waiting for attachments, and how many it expects in total.
    pending: Option<(Packet, usize)>,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: DecoderLimits) -> Decoder {
        Decoder {
            limits,
            pending: None,
        }
    }

    /// True while a binary packet waits for attachments.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds one Engine.IO text message.
    pub fn feed_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        if self.pending.is_some() {
            self.pending = None;
            return Err(DecodeError::UnexpectedText);
        }
        let (packet, expected) = decode_text(&text, &self.limits)?;
        if expected == 0 {
            Ok(Some(packet))
        } else {
            let mut packet = packet;
            packet.attachments.reserve_exact(expected);
            self.pending = Some((packet, expected));
            Ok(None)
        }
    }

    /// Feeds one Engine.IO binary message (an attachment).
    pub fn feed_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some((packet, expected)) = &mut self.pending else {
            return Err(DecodeError::UnexpectedBinary);
        };
        packet.attachments.push(data);
        if packet.attachments.len() < *expected {
            return Ok(None);
        }
        Ok(self.pending.take().map(|(p, _)| p))
    }
}

/// Parses the text part of a packet. Returns the packet (attachments still empty) and the number
/// of attachments that must follow.
pub fn decode_text(text: &Str, limits: &DecoderLimits) -> Result<(Packet, usize), DecodeError> {
    let s = text.as_str();
    let b = s.as_bytes();
    let Some(&t) = b.first() else {
        return Err(DecodeError::Empty);
    };
    let kind = PacketKind::from_digit(t).ok_or(DecodeError::UnknownType)?;
    let mut i = 1;

    let mut expected = 0;
    if kind.is_binary() {
        let digits = count_digits(&b[i..]);
        if digits == 0 || b.get(i + digits) != Some(&b'-') {
            return Err(DecodeError::InvalidAttachmentCount);
        }
        expected =
            s[i..i + digits]
                .parse::<usize>()
                .map_err(|_| DecodeError::TooManyAttachments {
                    count: usize::MAX,
                    max: limits.max_attachments,
                })?;
        if expected > limits.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                count: expected,
                max: limits.max_attachments,
            });
        }
        i += digits + 1;
    }

    let nsp = if b.get(i) == Some(&b'/') {
        let end = b[i..].iter().position(|&c| c == b',').map(|p| i + p);
        let nsp_end = end.unwrap_or(b.len());
        let nsp = text.slice_ref(&s[i..nsp_end]);
        i = end.map_or(b.len(), |e| e + 1);
        nsp
    } else {
        Str::from_static("/")
    };

    let digits = count_digits(&b[i..]);
    let id = if digits > 0 {
        let id = s[i..i + digits]
            .parse::<u64>()
            .map_err(|_| DecodeError::InvalidAckId)?;
        i += digits;
        Some(id)
    } else {
        None
    };

    let data = if i < b.len() {
        Some(serde_json::from_str::<Value>(&s[i..]).map_err(|_| DecodeError::InvalidJson)?)
    } else {
        None
    };

    if !payload_valid(kind, data.as_ref()) {
        return Err(DecodeError::InvalidPayload);
    }
    if matches!(kind, PacketKind::Ack | PacketKind::BinaryAck) && id.is_none() {
        return Err(DecodeError::InvalidAckId);
    }
    if kind.is_binary()
        && let Some(d) = &data
    {
        check_placeholders(d, expected)?;
    }

    Ok((
        Packet {
            kind,
            nsp,
            id,
            data,
            attachments: Vec::new(),
        },
        expected,
    ))
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The payload shapes the reference implementation accepts, per packet type.
fn payload_valid(kind: PacketKind, data: Option<&Value>) -> bool {
    match kind {
        PacketKind::Connect => data.is_none_or(Value::is_object),
        PacketKind::Disconnect => data.is_none(),
        PacketKind::ConnectError => data.is_some_and(|d| d.is_object() || d.is_string()),
        PacketKind::Event | PacketKind::BinaryEvent => match data.and_then(Value::as_array) {
            Some(arr) => match arr.first() {
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                Some(Value::Number(_)) => true,
                _ => false,
            },
            None => false,
        },
        PacketKind::Ack | PacketKind::BinaryAck => data.is_some_and(Value::is_array),
    }
}

/// Every placeholder object must carry a `num` below `count`.
fn check_placeholders(v: &Value, count: usize) -> Result<(), DecodeError> {
    match v {
        Value::Array(a) => a.iter().try_for_each(|x| check_placeholders(x, count)),
        Value::Object(m) => {
            if m.contains_key("_placeholder") {
                match placeholder_num(v) {
                    Some(n) if n < count as u64 => Ok(()),
                    _ => Err(DecodeError::InvalidPlaceholder),
                }
            } else {
                m.values().try_for_each(|x| check_placeholders(x, count))
            }
        }
        _ => Ok(()),
    }
}
