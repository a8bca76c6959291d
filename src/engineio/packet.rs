//! Engine.IO v4 packets and their WebSocket mapping.
//!
//! Wire form (text): one ASCII digit for the type, then the data: `0{…}` open, `1` close,
//! `2` ping, `3` pong, `2probe`/`3probe` upgrade probes, `4hello` message, `5` upgrade, `6` noop.
//! Binary messages travel as a raw binary WebSocket frame (no type byte) or, in a long-polling
//! payload, as `b` + base64 (see [`super::payload`]).
//!
//! Decoding never copies: text packets are [`Str`] slices of the input, binary packets are the
//! input [`Bytes`] itself.

use super::str::Str;
use bytes::{BufMut, Bytes, BytesMut};

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + handshake JSON (server → client), see [`Handshake`](super::Handshake).
    Open(Str),
    /// `1`: the sender closes the session.
    Close,
    /// `2`: heartbeat request (server → client in v4).
    Ping,
    /// `3`: heartbeat answer.
    Pong,
    /// `2probe`: the client tests a new WebSocket transport during an upgrade.
    PingProbe,
    /// `3probe`: the server's answer to [`Packet::PingProbe`].
    PongProbe,
    /// `4` + UTF-8 text: an application message (a Socket.IO packet, usually).
    Message(Str),
    /// A binary application message.
    Binary(Bytes),
    /// `5`: the client completes the upgrade on the new transport.
    Upgrade,
    /// `6`: no-op, used to release a pending long-polling request during an upgrade.
    Noop,
}

/// Why bytes could not be decoded into a [`Packet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Zero-length packet.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a known packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A control packet (close, ping, pong, upgrade, noop) carried unexpected data.
    #[error("unexpected data after control packet type {0}")]
    UnexpectedData(char),
    /// Text data was not UTF-8.
    #[error("invalid UTF-8 in text packet")]
    InvalidUtf8,
    /// A `b`-prefixed polling packet was not valid base64.
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
}

/// One WebSocket message as Engine.IO v4 maps packets onto it: one packet per frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    /// A text frame: the packet's text form (`4hello`, `2`, `3probe`, …).
    Text(Str),
    /// A binary frame: the raw bytes of a binary message.
    Binary(Bytes),
}

impl Packet {
    /// The packet type digit as it appears on the wire (binary messages are type `4`).
    pub fn type_char(&self) -> char {
        match self {
            Packet::Open(_) => '0',
            Packet::Close => '1',
            Packet::Ping | Packet::PingProbe => '2',
            Packet::Pong | Packet::PongProbe => '3',
            Packet::Message(_) | Packet::Binary(_) => '4',
            Packet::Upgrade => '5',
            Packet::Noop => '6',
        }
    }

    /// Decodes a text packet: a WebSocket text frame, or one record of a polling payload.
    /// The message/open data is a zero-copy slice of `text`. A `b` + base64 record is a binary
    /// message (decoded into a fresh buffer); the reference parser accepts it on WebSocket too,
    /// from clients configured with `forceBase64`.
    pub fn decode_text(text: Str) -> Result<Packet, PacketError> {
        let bytes = text.as_bytes();
        let Some(&t) = bytes.first() else {
            return Err(PacketError::Empty);
        };
        let rest = &bytes[1..];
        let control = |p: Packet| {
            if rest.is_empty() {
                Ok(p)
            } else {
                Err(PacketError::UnexpectedData(t as char))
            }
        };
        match t {
            b'0' => Ok(Packet::Open(text.slice_ref(&text.as_str()[1..]))),
            b'1' => control(Packet::Close),
            b'2' if rest == b"probe" => Ok(Packet::PingProbe),
            b'3' if rest == b"probe" => Ok(Packet::PongProbe),
            b'2' => control(Packet::Ping),
            b'3' => control(Packet::Pong),
            b'4' => Ok(Packet::Message(text.slice_ref(&text.as_str()[1..]))),
            b'5' => control(Packet::Upgrade),
            b'6' => control(Packet::Noop),
            b'b' => decode_base64(rest).map(Packet::Binary),
            other => Err(PacketError::UnknownType(other)),
        }
    }

    /// Decodes a WebSocket frame. A binary frame is always a binary message.
    pub fn from_ws(frame: WsFrame) -> Result<Packet, PacketError> {
        match frame {
            WsFrame::Text(t) => Packet::decode_text(t),
            WsFrame::Binary(b) => Ok(Packet::Binary(b)),
        }
    }

    /// Decodes a WebSocket text frame given as raw bytes (checks UTF-8 first).
    pub fn from_ws_text_bytes(bytes: Bytes) -> Result<Packet, PacketError> {
        let text = Str::from_utf8(bytes).map_err(|_| PacketError::InvalidUtf8)?;
        Packet::decode_text(text)
    }

    /// Length of the text form produced by [`Packet::encode_text`] (binary in base64).
    pub fn encoded_text_len(&self) -> usize {
        match self {
            Packet::Open(s) | Packet::Message(s) => 1 + s.len(),
            Packet::PingProbe | Packet::PongProbe => 6,
            Packet::Binary(b) => 1 + base64_len(b.len()),
            _ => 1,
        }
    }

    /// Appends the text form to `out`. Binary messages become `b` + base64 (the long-polling
    /// form); for WebSocket use [`Packet::to_ws`] instead, which sends them as binary frames.
    pub fn encode_text(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_text_len());
        match self {
            Packet::Binary(b) => {
                out.put_u8(b'b');
                encode_base64_into(b, out);
            }
            Packet::Open(s) | Packet::Message(s) => {
                out.put_u8(self.type_char() as u8);
                out.put_slice(s.as_bytes());
            }
            Packet::PingProbe => out.put_slice(b"2probe"),
            Packet::PongProbe => out.put_slice(b"3probe"),
            _ => out.put_u8(self.type_char() as u8),
        }
    }

    /// The WebSocket frame for this packet. Binary messages are not copied; control packets
    /// are static and do not allocate; text messages allocate once for the `4` prefix.
    pub fn to_ws(&self) -> WsFrame {
        match self {
            Packet::Binary(b) => WsFrame::Binary(b.clone()),
            Packet::Close => WsFrame::Text(Str::from_static("1")),
            Packet::Ping => WsFrame::Text(Str::from_static("2")),
            Packet::Pong => WsFrame::Text(Str::from_static("3")),
            Packet::PingProbe => WsFrame::Text(Str::from_static("2probe")),
            Packet::PongProbe => WsFrame::Text(Str::from_static("3probe")),
            Packet::Upgrade => WsFrame::Text(Str::from_static("5")),
            Packet::Noop => WsFrame::Text(Str::from_static("6")),
            Packet::Open(s) => WsFrame::Text(prefixed('0', s)),
            Packet::Message(s) => WsFrame::Text(prefixed('4', s)),
        }
    }
}

fn prefixed(t: char, text: &str) -> Str {
    let mut s = String::with_capacity(1 + text.len());
    s.push(t);
    s.push_str(text);
    Str::from(s)
}

/// Decodes padded standard base64 (what `b` packets carry).
fn decode_base64(b64: &[u8]) -> Result<Bytes, PacketError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Bytes::from)
        .map_err(|_| PacketError::InvalidBase64)
}

/// Length of the padded standard base64 encoding of `n` bytes.
pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded standard base64 encoding of `data` to `out`.
pub(crate) fn encode_base64_into(data: &[u8], out: &mut BytesMut) {
    use base64::Engine as _;
    let start = out.len();
    let n = base64_len(data.len());
    out.resize(start + n, 0);
    // The buffer is exactly the encoded size, so this cannot fail; keep it panic-free anyway.
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(p: &Packet) -> String {
        let mut b = BytesMut::new();
        p.encode_text(&mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn dec(s: &'static str) -> Result<Packet, PacketError> {
        Packet::decode_text(Str::from_static(s))
    }

    // Wire strings from docs/engine.io-protocol/v4-current.md ("Packet encoding").
    #[test]
    fn every_packet_type_matches_protocol_doc() {
        let open = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let cases: Vec<(Packet, String)> = vec![
            (Packet::Open(Str::from(open)), format!("0{open}")),
            (Packet::Close, "1".into()),
            (Packet::Ping, "2".into()),
            (Packet::Pong, "3".into()),
            (Packet::PingProbe, "2probe".into()),
            (Packet::PongProbe, "3probe".into()),
            (Packet::Message(Str::from("hello")), "4hello".into()),
            (Packet::Message(Str::from("")), "4".into()),
            (Packet::Upgrade, "5".into()),
            (Packet::Noop, "6".into()),
        ];
        for (p, wire) in cases {
            assert_eq!(text(&p), wire);
            assert_eq!(p.encoded_text_len(), wire.len());
            assert_eq!(Packet::decode_text(Str::from(wire.as_str())).unwrap(), p);
            assert_eq!(p.to_ws(), WsFrame::Text(Str::from(wire.as_str())));
            assert_eq!(Packet::from_ws(p.to_ws()).unwrap(), p);
        }
    }

    #[test]
    fn binary_message_maps_to_raw_binary_frame_and_base64_text() {
        let p = Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]));
        assert_eq!(
            p.to_ws(),
            WsFrame::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        );
        // docs: "bAQIDBA==" is the polling form of <Buffer 01 02 03 04>
        assert_eq!(text(&p), "bAQIDBA==");
        assert_eq!(p.encoded_text_len(), 9);
        // The text form decodes back (polling, or a forceBase64 client on WebSocket).
        assert_eq!(dec("bAQIDBA=="), Ok(p));
        assert_eq!(dec("b"), Ok(Packet::Binary(Bytes::new())));
    }

    #[test]
    fn binary_frame_is_not_copied() {
        let b = Bytes::from(vec![9u8; 100]);
        let Packet::Binary(out) = Packet::from_ws(WsFrame::Binary(b.clone())).unwrap() else {
            panic!("not binary")
        };
        assert_eq!(out.as_ptr(), b.as_ptr());
    }

    #[test]
    fn message_is_a_slice_of_the_input() {
        let s = Str::from("4hello");
        let Packet::Message(m) = Packet::decode_text(s.clone()).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(m.as_ptr() as usize, s.as_ptr() as usize + 1);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(dec(""), Err(PacketError::Empty));
        assert_eq!(dec("7"), Err(PacketError::UnknownType(b'7')));
        assert_eq!(dec("bAQI"), Err(PacketError::InvalidBase64));
        assert_eq!(
            dec("bAQID"),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(dec("b!!!!"), Err(PacketError::InvalidBase64));
        assert_eq!(dec("a"), Err(PacketError::UnknownType(b'a')));
        assert_eq!(dec("2x"), Err(PacketError::UnexpectedData('2')));
        assert_eq!(dec("3probex"), Err(PacketError::UnexpectedData('3')));
        assert_eq!(dec("1abc"), Err(PacketError::UnexpectedData('1')));
        assert_eq!(dec("6 "), Err(PacketError::UnexpectedData('6')));
        assert_eq!(
            Packet::from_ws_text_bytes(Bytes::from_static(b"4\xff")),
            Err(PacketError::InvalidUtf8)
        );
    }

    pub(crate) fn arb_packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            any::<String>().prop_map(|s| Packet::Open(Str::from(s))),
            Just(Packet::Close),
            Just(Packet::Ping),
            Just(Packet::Pong),
            Just(Packet::PingProbe),
            Just(Packet::PongProbe),
            any::<String>().prop_map(|s| Packet::Message(Str::from(s))),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|v| Packet::Binary(Bytes::from(v))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn ws_round_trip(p in arb_packet()) {
            prop_assert_eq!(Packet::from_ws(p.to_ws()).unwrap(), p);
        }

        #[test]
        fn text_round_trip(p in arb_packet()) {
            let mut b = BytesMut::new();
            p.encode_text(&mut b);
            prop_assert_eq!(b.len(), p.encoded_text_len());
            prop_assert_eq!(Packet::from_ws_text_bytes(b.freeze()).unwrap(), p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = Packet::from_ws_text_bytes(Bytes::from(v.clone()));
            let _ = Packet::from_ws(WsFrame::Binary(Bytes::from(v)));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "[0-9b]?\\PC{0,16}") {
            let _ = Packet::decode_text(Str::from(s));
        }
    }
}
