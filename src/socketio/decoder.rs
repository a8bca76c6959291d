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
pub(super) fn decode_text(
    text: &Str,
    limits: &DecoderLimits,
) -> Result<(Packet, usize), DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::Arg;
    use proptest::prelude::*;
    use serde_json::json;

    fn one(s: &'static str) -> Result<Option<Packet>, DecodeError> {
        Decoder::default().feed_text(Str::from_static(s))
    }

    fn ok(s: &'static str) -> Packet {
        one(s).unwrap().unwrap()
    }

    #[test]
    fn decodes_protocol_doc_examples() {
        let p = ok("0");
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.id, p.data),
            (PacketKind::Connect, "/", None, None)
        );
        let p = ok(r#"0{"token":"123"}"#);
        assert_eq!(p.data, Some(json!({"token": "123"})));
        let p = ok("0/custom,");
        assert_eq!((p.nsp.as_str(), p.data), ("/custom", None));
        let p = ok("0/random"); // the v5 suite's unknown namespace, without a comma
        assert_eq!(p.nsp, "/random");
        let p = ok(r#"0/custom,{"token":"abc"}"#);
        assert_eq!(
            (p.nsp.as_str(), p.data),
            ("/custom", Some(json!({"token": "abc"})))
        );
        let p = ok(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#);
        assert_eq!(
            p,
            Packet::connect("/admin", Some(json!({"sid": "oSO0OpakMV_3jnilAAAA"})))
        );
        assert_eq!(
            ok(r#"4{"message":"Not authorized"}"#).kind,
            PacketKind::ConnectError
        );
        assert_eq!(ok(r#"4"Not authorized""#).kind, PacketKind::ConnectError);
        assert_eq!(ok(r#"2["foo"]"#), Packet::event("/", "foo", vec![], None));
        assert_eq!(
            ok(r#"2/admin,["bar"]"#),
            Packet::event("/admin", "bar", vec![], None)
        );
        assert_eq!(
            ok(r#"212["foo"]"#),
            Packet::event("/", "foo", vec![], Some(12))
        );
        assert_eq!(
            ok(r#"3/admin,13["bar"]"#),
            Packet::ack("/admin", 13, vec![json!("bar").into()])
        );
        assert_eq!(ok("1"), Packet::disconnect("/"));
        assert_eq!(ok("1/admin,"), Packet::disconnect("/admin"));
        assert_eq!(ok("1/custom"), Packet::disconnect("/custom"));
        let p = ok(r#"2456["message-with-ack",1,"2",{"3":[false]}]"#);
        assert_eq!(p.id, Some(456));
        assert_eq!(p.event_name(), Some("message-with-ack"));
        // Numeric event names are allowed by the reference parser.
        assert_eq!(ok("2[1]").kind, PacketKind::Event);
    }

    #[test]
    fn namespace_and_data_are_slices_of_the_input() {
        let s = Str::from("2/admin,[\"x\"]");
        let p = Decoder::default().feed_text(s.clone()).unwrap().unwrap();
        assert_eq!(p.nsp.as_ptr() as usize, s.as_ptr() as usize + 1);
    }

    #[test]
    fn reassembles_binary_event() {
        let mut d = Decoder::default();
        let first = d
            .feed_text(Str::from_static(
                r#"52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ))
            .unwrap();
        assert!(first.is_none());
        assert!(d.is_pending());
        assert_eq!(d.feed_binary(Bytes::from_static(&[1, 2, 3])).unwrap(), None);
        let p = d
            .feed_binary(Bytes::from_static(&[4, 5, 6]))
            .unwrap()
            .unwrap();
        assert!(!d.is_pending());
        assert_eq!(
            p.args().unwrap(),
            vec![
                Arg::Binary(Bytes::from_static(&[1, 2, 3])),
                Arg::Binary(Bytes::from_static(&[4, 5, 6]))
            ]
        );
        // The v5 suite's binary ack, echoed: encode gives back the same text.
        let p = Packet::ack("/", 789, p.args().unwrap());
        assert_eq!(
            p.encode().text,
            r#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        // Zero attachments complete at once.
        assert_eq!(ok(r#"50-["a"]"#).kind, PacketKind::BinaryEvent);
        // Binary ack.
        let mut d = Decoder::default();
        assert_eq!(
            d.feed_text(Str::from_static(
                r#"61-15["bar",{"_placeholder":true,"num":0}]"#
            )),
            Ok(None)
        );
        let p = d.feed_binary(Bytes::from_static(b"z")).unwrap().unwrap();
        assert_eq!((p.kind, p.id), (PacketKind::BinaryAck, Some(15)));
    }

    #[test]
    fn typed_errors() {
        use DecodeError::*;
        assert_eq!(one(""), Err(Empty));
        assert_eq!(one("abc"), Err(UnknownType));
        assert_eq!(one("7"), Err(UnknownType));
        assert_eq!(one(r#"2abc["message-with-ack"]"#), Err(InvalidJson));
        assert_eq!(one("2{}"), Err(InvalidPayload));
        assert_eq!(one("2[]"), Err(InvalidPayload));
        assert_eq!(one("2"), Err(InvalidPayload));
        assert_eq!(one(r#"2["connect"]"#), Err(InvalidPayload));
        assert_eq!(one(r#"2[{}]"#), Err(InvalidPayload));
        assert_eq!(one("3[]"), Err(InvalidAckId));
        assert_eq!(one("31{}"), Err(InvalidPayload));
        assert_eq!(one("0[]"), Err(InvalidPayload));
        assert_eq!(one(r#"1{"a":1}"#), Err(InvalidPayload));
        assert_eq!(one("4"), Err(InvalidPayload));
        assert_eq!(one("4[1]"), Err(InvalidPayload));
        assert_eq!(one(r#"2/admin["a"]"#), Err(InvalidPayload)); // no comma: all namespace
        assert_eq!(one(r#"299999999999999999999["a"]"#), Err(InvalidAckId));
        assert_eq!(one(r#"2["a""#), Err(InvalidJson));
        assert_eq!(one(r#"5["a"]"#), Err(InvalidAttachmentCount));
        assert_eq!(one(r#"51["a"]"#), Err(InvalidAttachmentCount));
        assert_eq!(one(r#"5-["a"]"#), Err(InvalidAttachmentCount));
        assert_eq!(
            one(r#"511-["a"]"#),
            Err(TooManyAttachments { count: 11, max: 10 })
        );
        assert_eq!(
            one(r#"599999999999999999999999-["a"]"#),
            Err(TooManyAttachments {
                count: usize::MAX,
                max: 10
            })
        );
        assert_eq!(
            one(r#"51-["a",{"_placeholder":true,"num":1}]"#),
            Err(InvalidPlaceholder)
        );
        assert_eq!(
            one(r#"51-["a",{"x":[{"_placeholder":true,"num":"0"}]}]"#),
            Err(InvalidPlaceholder)
        );
        assert_eq!(
            one(r#"51-["a",{"_placeholder":true}]"#),
            Err(InvalidPlaceholder)
        );
        // Placeholders in a plain event are just JSON.
        assert!(one(r#"2["a",{"_placeholder":true,"num":5}]"#).is_ok());

        let mut d = Decoder::default();
        assert_eq!(
            d.feed_binary(Bytes::from_static(b"x")),
            Err(UnexpectedBinary)
        );
        d.feed_text(Str::from_static(
            r#"51-["a",{"_placeholder":true,"num":0}]"#,
        ))
        .unwrap();
        assert_eq!(
            d.feed_text(Str::from_static(r#"2["a"]"#)),
            Err(UnexpectedText)
        );
        // After the error the decoder holds nothing.
        assert!(!d.is_pending());
    }

    #[test]
    fn attachment_limit_is_configurable() {
        let mut d = Decoder::new(DecoderLimits { max_attachments: 1 });
        assert_eq!(
            d.feed_text(Str::from_static(r#"52-["a"]"#)),
            Err(DecodeError::TooManyAttachments { count: 2, max: 1 })
        );
        let mut d = Decoder::new(DecoderLimits {
            max_attachments: 20,
        });
        assert_eq!(d.feed_text(Str::from_static(r#"520-["a"]"#)), Ok(None));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z0-9]{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn arb_nsp() -> impl Strategy<Value = String> {
        prop_oneof![Just("/".to_owned()), "/[a-zA-Z0-9_/.-]{1,8}"]
    }

    fn arb_args() -> impl Strategy<Value = Vec<Arg>> {
        proptest::collection::vec(
            prop_oneof![
                arb_json().prop_map(Arg::Json),
                proptest::collection::vec(any::<u8>(), 0..16)
                    .prop_map(|v| Arg::Binary(Bytes::from(v))),
            ],
            0..5,
        )
    }

    pub(crate) fn arb_packet() -> impl Strategy<Value = Packet> {
        let name =
            "[a-z_-]{1,10}".prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()));
        prop_oneof![
            (
                arb_nsp(),
                proptest::option::of(
                    proptest::collection::vec(("[a-z]{1,4}", arb_json()), 0..3)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
                )
            )
                .prop_map(|(n, d)| Packet::connect(&n, d)),
            arb_nsp().prop_map(|n| Packet::disconnect(&n)),
            (
                arb_nsp(),
                prop_oneof![
                    "\\PC{0,8}".prop_map(Value::from),
                    Just(json!({"message": "nope", "data": [1]})),
                ]
            )
                .prop_map(|(n, d)| Packet::connect_error(&n, d)),
            (
                arb_nsp(),
                name,
                arb_args(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(n, e, a, id)| Packet::event(&n, &e, a, id)),
            (arb_nsp(), any::<u64>(), arb_args()).prop_map(|(n, id, a)| Packet::ack(&n, id, a)),
        ]
    }

    fn decode_all(d: &mut Decoder, p: &Packet) -> Result<Option<Packet>, DecodeError> {
        let e = p.encode();
        let mut out = d.feed_text(e.text)?;
        for a in e.attachments {
            assert!(out.is_none());
            out = d.feed_binary(a)?;
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_packet()) {
            let mut d = Decoder::new(DecoderLimits { max_attachments: 16 });
            prop_assert_eq!(decode_all(&mut d, &p).unwrap(), Some(p.clone()));
            // The decoder is reusable for the next packet.
            prop_assert_eq!(decode_all(&mut d, &p).unwrap(), Some(p));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "[0-6]?[0-9]{0,2}-?(/[a-z]{0,3},?)?[0-9]{0,3}\\PC{0,24}") {
            let mut d = Decoder::default();
            if let Ok(None) = d.feed_text(Str::from(s)) {
                prop_assert!(d.is_pending());
            }
        }

        #[test]
        fn arbitrary_messages_never_panic(
            msgs in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..24).prop_map(|v| (false, v)),
                    "[0-6][0-9-]{0,3}\\PC{0,16}".prop_map(|s| (true, s.into_bytes())),
                ],
                0..8,
            )
        ) {
            let mut d = Decoder::default();
            for (is_text, bytes) in msgs {
                let bytes = Bytes::from(bytes);
                let _ = if is_text {
                    match Str::from_utf8(bytes) {
                        Ok(s) => d.feed_text(s),
                        Err(_) => continue,
                    }
                } else {
                    d.feed_binary(bytes)
                };
            }
        }
    }
}
