//! The long-polling payload codec: several packets in one HTTP body.
//!
//! Packets are joined with the record separator `0x1e`; a binary message is written as `b`
//! followed by its standard base64 (`4hello\x1ebAQIDBA==`). Decoding enforces limits before
//! doing any work so that a hostile body costs at most one pass over its bytes.

use super::packet::{Packet, PacketError};
use super::str::Str;
use bytes::{BufMut, Bytes, BytesMut};

/// The record separator between packets of a payload.
pub(super) const SEPARATOR: u8 = 0x1e;

/// Why a payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is empty.
    #[error("empty payload")]
    Empty,
    /// The body is larger than the limit (the handshake's `maxPayload`).
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not UTF-8 text.
    #[error("payload is not UTF-8")]
    InvalidUtf8,
    /// One packet of the payload is malformed.
    #[error("packet {index} of payload: {error}")]
    Packet {
        /// Zero-based index of the bad packet.
        index: usize,
        /// What is wrong with it.
        error: PacketError,
    },
}

/// Decodes a long-polling body of at most `max_bytes` into packets. Text packets are
/// zero-copy slices of `body`; base64 binary packets are decoded into fresh buffers (one
/// allocation each). See [`payload_packets`] to handle them as they decode.
pub fn decode_payload(body: Bytes, max_bytes: usize) -> Result<Vec<Packet>, PayloadError> {
    payload_packets(body, max_bytes)?.collect()
}

/// The packets of a long-polling body of at most `max_bytes`, decoded one at a time: the body
/// is bounded by bytes only (as the reference server: any number of packets within
/// `maxPayload`), and a body of tiny packets costs no more memory than the body itself.
pub fn payload_packets(body: Bytes, max_bytes: usize) -> Result<PayloadPackets, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::Empty);
    }
    if body.len() > max_bytes {
        return Err(PayloadError::TooLarge {
            len: body.len(),
            max: max_bytes,
        });
    }
    let text = Str::from_utf8(body).map_err(|_| PayloadError::InvalidUtf8)?;
    Ok(PayloadPackets {
        text,
        at: 0,
        index: 0,
    })
}

/// Iterator over the packets of a payload ([`payload_packets`]); ends after the first error.
#[derive(Debug)]
pub struct PayloadPackets {
    text: Str,
    /// Where the next record starts; past the end once finished.
    at: usize,
    index: usize,
}

impl Iterator for PayloadPackets {
    type Item = Result<Packet, PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.text.as_str().get(self.at..)?;
        let len = rest.find(SEPARATOR as char).unwrap_or(rest.len());
        let record = self.text.slice_ref(&rest[..len]);
        let index = self.index;
        self.at += len + 1;
        self.index += 1;
        let packet =
            Packet::decode_text(record).map_err(|error| PayloadError::Packet { index, error });
        if packet.is_err() {
            self.at = usize::MAX;
        }
        Some(packet)
    }
}

/// Exact encoded size of `packets` as one payload.
pub fn payload_len<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> usize {
    let mut n = 0;
    let mut first = true;
    for p in packets {
        n += p.encoded_text_len() + usize::from(!first);
        first = false;
    }
    n
}

/// Appends `packets` as one payload to `out`.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>, out: &mut BytesMut) {
    let mut first = true;
    for p in packets {
        if !first {
            out.put_u8(SEPARATOR);
        }
        first = false;
        p.encode_text(out);
    }
}

/// Builds one payload incrementally within a byte budget, e.g. a client POST bounded by the
/// server's `maxPayload`, or a poll response drained from a queue.
#[derive(Debug)]
pub struct PayloadBuilder {
    buf: BytesMut,
    count: usize,
    max_bytes: usize,
}

impl PayloadBuilder {
    /// A builder for payloads of at most `max_bytes` (a first packet is always accepted).
    pub fn new(max_bytes: usize) -> Self {
        PayloadBuilder {
            buf: BytesMut::new(),
            count: 0,
            max_bytes,
        }
    }

    /// Appends `packet` if it fits in the budget (or if the payload is still empty, so that a
    /// single oversized packet still goes out alone). Returns whether it was appended.
    pub fn push(&mut self, packet: &Packet) -> bool {
        let add = packet.encoded_text_len() + usize::from(self.count > 0);
        if self.count > 0 && self.buf.len() + add > self.max_bytes {
            return false;
        }
        if self.count > 0 {
            self.buf.put_u8(SEPARATOR);
        }
        packet.encode_text(&mut self.buf);
        self.count += 1;
        true
    }

    /// Number of packets appended so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished body.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(packets: &[Packet]) -> Bytes {
        let mut b = BytesMut::new();
        encode_payload(packets, &mut b);
        b.freeze()
    }

    // docs/engine.io-protocol/v4-current.md, "HTTP long-polling" / "Packet encoding".
    #[test]
    fn protocol_doc_examples() {
        let packets = vec![
            Packet::Message(Str::from("hello")),
            Packet::Message(Str::from("€")),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        let wire = "4hello\x1e4€\x1ebAQIDBA==";
        assert_eq!(enc(&packets), Bytes::from(wire));
        assert_eq!(payload_len(&packets), wire.len());
        assert_eq!(
            decode_payload(Bytes::from(wire), 1_000_000).unwrap(),
            packets
        );
        let packets = vec![
            Packet::Message(Str::from("hello")),
            Packet::Ping,
            Packet::Message(Str::from("world")),
        ];
        let wire = "4hello\x1e2\x1e4world";
        assert_eq!(enc(&packets), Bytes::from(wire));
        assert_eq!(
            decode_payload(Bytes::from(wire), 1_000_000).unwrap(),
            packets
        );
    }

    #[test]
    fn limits_and_errors() {
        let d = |s: &'static [u8]| decode_payload(Bytes::from_static(s), 10);
        assert_eq!(d(b""), Err(PayloadError::Empty));
        assert_eq!(
            d(b"4hello world"),
            Err(PayloadError::TooLarge { len: 12, max: 10 })
        );
        assert_eq!(d(b"4a\x1e4b\x1e4c").map(|p| p.len()), Ok(3));
        assert_eq!(d(b"4\xff"), Err(PayloadError::InvalidUtf8));
        assert_eq!(
            d(b"4a\x1eb!!"),
            Err(PayloadError::Packet {
                index: 1,
                error: PacketError::InvalidBase64
            })
        );
        assert_eq!(
            d(b"4a\x1e"),
            Err(PayloadError::Packet {
                index: 1,
                error: PacketError::Empty
            })
        );
        assert_eq!(
            d(b"9"),
            Err(PayloadError::Packet {
                index: 0,
                error: PacketError::UnknownType(b'9')
            })
        );
        assert_eq!(
            d(b"4a\x1e2\x1e"),
            Err(PayloadError::Packet {
                index: 2,
                error: PacketError::Empty
            })
        );
    }

    #[test]
    fn any_number_of_packets_within_the_byte_limit() {
        // 500,000 noops in a 1 MB body: the reference server takes them all.
        let body = Bytes::from("6\x1e".repeat(499_999) + "6");
        let mut packets = payload_packets(body, 1_000_000).expect("within the limit");
        assert!(
            packets
                .by_ref()
                .take(499_999)
                .all(|p| p == Ok(Packet::Noop))
        );
        assert_eq!(packets.next(), Some(Ok(Packet::Noop)));
        assert_eq!(packets.next(), None);
        // Decoding stops at the first bad record.
        let mut packets = payload_packets(Bytes::from_static(b"6\x1e9\x1e6"), 100).unwrap();
        assert_eq!(packets.next(), Some(Ok(Packet::Noop)));
        assert!(matches!(
            packets.next(),
            Some(Err(PayloadError::Packet { index: 1, .. }))
        ));
        assert_eq!(packets.next(), None);
    }

    #[test]
    fn builder_respects_budget() {
        let mut b = PayloadBuilder::new(8);
        assert!(b.push(&Packet::Message(Str::from("hello")))); // 6 bytes
        assert!(!b.push(&Packet::Message(Str::from("x")))); // would be 6+1+2 = 9
        assert!(b.push(&Packet::Noop)); // 6+1+1 = 8
        assert_eq!(b.len(), 2);
        assert_eq!(b.finish(), Bytes::from_static(b"4hello\x1e6"));
        // A single oversized packet still goes out.
        let mut b = PayloadBuilder::new(2);
        assert!(b.is_empty());
        assert!(b.push(&Packet::Message(Str::from("hello"))));
    }

    proptest! {
        #[test]
        fn round_trip(packets in proptest::collection::vec(crate::engineio::packet::tests::arb_packet(), 1..8)) {
            // A message containing the separator cannot be framed; the protocol forbids it.
            prop_assume!(packets.iter().all(|p| match p {
                Packet::Message(s) | Packet::Open(s) => !s.as_bytes().contains(&SEPARATOR),
                _ => true,
            }));
            let body = enc(&packets);
            prop_assert_eq!(body.len(), payload_len(&packets));
            prop_assert_eq!(decode_payload(body, 1_000_000).unwrap(), packets);
        }

        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_payload(Bytes::from(v), 48);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "([0-6b][A-Za-z0-9+/=]{0,6}\x1e?){0,6}") {
            let _ = decode_payload(Bytes::from(s), 1_000_000);
        }
    }
}
