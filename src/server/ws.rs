//! A small server-side RFC 6455 WebSocket codec.
//!
//! Why our own instead of async-tungstenite's stream: the broadcast hot path sends the *same*
//! bytes to hundreds of viewers. tungstenite takes an owned `Message` per receiver and copies it
//! into its own write buffer (one user-space copy per receiver per frame) and writes frames one at
//! a time. Here a server frame is a precomputed header plus a shared [`Bytes`] payload, so a
//! broadcast encodes each frame once ([`frame`]) and every connection hands the same buffers to
//! `write_vectored` in batches. The server side of RFC 6455 is small: unmask client frames,
//! reassemble continuation frames, answer ping/close, and bound every read. The opening handshake
//! is done with hyper's upgrade machinery and tungstenite's `derive_accept_key`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Text frame opcode.
pub(super) const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub(super) const OP_BINARY: u8 = 0x2;
const OP_CONTINUATION: u8 = 0x0;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close code: normal closure.
pub(super) const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is going away (shutdown).
pub(super) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: protocol error.
pub(super) const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: invalid UTF-8 in a text message (or a close reason).
pub(super) const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code: policy violation (e.g. a client that lets its outgoing queue overflow).
pub(super) const CLOSE_POLICY: u16 = 1008;
/// Close code: message too big.
pub(super) const CLOSE_TOO_BIG: u16 = 1009;

/// One complete message (or control frame) read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Message {
    /// A text message (UTF-8 checked).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; answer with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong (ignored by the server).
    Pong,
    /// The client's close frame, with its status code if any.
    Close(Option<u16>),
}

/// Why a client's byte stream was rejected; carries the close code to send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum WsError {
    /// Frame-level protocol violation.
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// Text message that is not UTF-8.
    #[error("websocket text message is not valid UTF-8")]
    InvalidUtf8,
    /// Message larger than the configured maximum.
    #[error("websocket message larger than {0} bytes")]
    TooBig(usize),
}

impl WsError {
    /// The RFC 6455 close code to answer this error with.
    pub(super) fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => CLOSE_PROTOCOL,
            WsError::InvalidUtf8 => CLOSE_INVALID_DATA,
            WsError::TooBig(_) => CLOSE_TOO_BIG,
        }
    }
}

/// Incremental decoder of client frames: feed bytes into a `BytesMut`, call [`FrameDecoder::decode`]
/// until it returns `Ok(None)`. Unfragmented messages are unmasked in place and split off the
/// read buffer without copying.
pub(super) struct FrameDecoder {
    max_message: usize,
    fragments: Option<(u8, BytesMut)>,
}

impl FrameDecoder {
    /// A decoder accepting messages of at most `max_message` bytes.
    pub(super) fn new(max_message: usize) -> Self {
        FrameDecoder {
            max_message,
            fragments: None,
        }
    }

    /// How many more bytes the buffer may usefully hold: a frame header plus the rest of the
    /// largest acceptable message. The reader uses it to keep reads bounded.
    pub(super) fn max_buffer(&self) -> usize {
        self.max_message + 14
    }

    /// Decodes the next complete message from `buf`, consuming its bytes.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let Some((header, fin, opcode, len, mask)) = self.parse_header(buf)? else {
                return Ok(None);
            };
            if buf.len() < header + len {
                return Ok(None);
            }
            buf.advance(header);
            let mut payload = buf.split_to(len);
            unmask(&mut payload, mask);
            match opcode {
                OP_CLOSE => return close_status(&payload).map(|code| Some(Message::Close(code))),
                OP_PING => return Ok(Some(Message::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Message::Pong)),
                OP_TEXT | OP_BINARY if fin => {
                    if self.fragments.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one"));
                    }
                    return finish(opcode, payload.freeze()).map(Some);
                }
                OP_TEXT | OP_BINARY => {
                    if self.fragments.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one"));
                    }
                    self.fragments = Some((opcode, payload));
                }
                OP_CONTINUATION => {
                    let Some((first, mut acc)) = self.fragments.take() else {
                        return Err(WsError::Protocol("continuation without a first frame"));
                    };
                    if acc.len() + payload.len() > self.max_message {
                        return Err(WsError::TooBig(self.max_message));
                    }
                    acc.extend_from_slice(&payload);
                    if fin {
                        return finish(first, acc.freeze()).map(Some);
                    }
                    self.fragments = Some((first, acc));
                }
                _ => return Err(WsError::Protocol("unknown opcode")),
            }
        }
    }

    /// Parses a frame header: (header length, fin, opcode, payload length, mask key).
    #[allow(clippy::type_complexity)]
    fn parse_header(
        &self,
        buf: &BytesMut,
    ) -> Result<Option<(usize, bool, u8, usize, [u8; 4])>, WsError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frame not masked"));
        }
        let short = (b1 & 0x7F) as usize;
        let (ext, len) = match short {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (2, u16::from_be_bytes([buf[2], buf[3]]) as usize)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(raw);
                (8, usize::try_from(len).unwrap_or(usize::MAX))
            }
            n => (0, n),
        };
        if opcode >= 0x8 {
            if !fin || len > 125 {
                return Err(WsError::Protocol("bad control frame"));
            }
        } else {
            let already = self.fragments.as_ref().map_or(0, |(_, acc)| acc.len());
            if len > self.max_message || already + len > self.max_message {
                return Err(WsError::TooBig(self.max_message));
            }
        }
        let header = 2 + ext + 4;
        if buf.len() < header {
            return Ok(None);
        }
        let mask = [
            buf[header - 4],
            buf[header - 3],
            buf[header - 2],
            buf[header - 1],
        ];
        Ok(Some((header, fin, opcode, len, mask)))
    }
}

/// The status of a client's close frame: none, or a code a peer may send (RFC 6455 section
/// 7.4: 1000–1003, 1007–1014 and 3000–4999; 1004–1006, 1015 and the rest are reserved or
/// never sent) with a UTF-8 reason. Anything else fails the connection.
fn close_status(payload: &[u8]) -> Result<Option<u16>, WsError> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return match payload.len() {
            0 => Ok(None),
            _ => Err(WsError::Protocol("close frame with a 1-byte payload")),
        };
    };
    let code = u16::from_be_bytes(*code);
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(WsError::Protocol("invalid close code"));
    }
    if std::str::from_utf8(reason).is_err() {
        return Err(WsError::InvalidUtf8);
    }
    Ok(Some(code))
}

fn finish(opcode: u8, payload: Bytes) -> Result<Message, WsError> {
    if opcode == OP_TEXT {
        if std::str::from_utf8(&payload).is_err() {
            return Err(WsError::InvalidUtf8);
        }
        Ok(Message::Text(payload))
    } else {
        Ok(Message::Binary(payload))
    }
}

/// XORs `payload` with the repeating 4-byte `mask`, 16 bytes per step (a publisher's frames are
/// unmasked here, every byte of them).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = payload.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let (lo, hi) = chunk.split_at_mut(8);
        for half in [lo, hi] {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(half);
            half.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
        }
    }
    // The rest starts at a multiple of 16 bytes, so at mask byte 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// Writes an unmasked server frame header for a final frame of `opcode` and `len` payload bytes.
pub(super) fn put_header(out: &mut impl BufMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// A complete server frame in one buffer (header + payload copied once). Used for text frames,
/// which are built once per broadcast, and for control frames.
pub(super) fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    put_header(&mut out, opcode, payload.len());
    out.extend_from_slice(payload);
    out.freeze()
}

/// A close frame with a status code and a reason (at most 123 bytes of UTF-8, RFC 6455 §5.5).
pub(super) fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(OP_CLOSE, &payload)
}

/// A close frame without a status code.
pub(super) const CLOSE_NO_STATUS: &[u8] = &[0x80 | OP_CLOSE, 0];

/// A pong answering a ping payload.
pub(super) fn pong_frame(payload: &[u8]) -> Bytes {
    frame(OP_PONG, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u8(if fin { 0x80 } else { 0 } | opcode);
        let len = payload.len();
        if len < 126 {
            out.put_u8(0x80 | len as u8);
        } else if len <= 65535 {
            out.put_u8(0x80 | 126);
            out.put_u16(len as u16);
        } else {
            out.put_u8(0x80 | 127);
            out.put_u64(len as u64);
        }
        out.put_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out.to_vec()
    }

    #[test]
    fn decodes_masked_text_and_binary_of_every_length_class() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut buf = BytesMut::from(&client_frame(true, OP_TEXT, &payload, [1, 2, 3, 4])[..]);
            buf.extend_from_slice(&client_frame(true, OP_BINARY, &payload, [9, 8, 7, 6]));
            let mut d = FrameDecoder::new(100_000);
            assert_eq!(
                d.decode(&mut buf),
                Ok(Some(Message::Text(payload.clone().into())))
            );
            assert_eq!(
                d.decode(&mut buf),
                Ok(Some(Message::Binary(payload.into())))
            );
            assert_eq!(d.decode(&mut buf), Ok(None));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn partial_input_waits_for_more_bytes() {
        let raw = client_frame(true, OP_TEXT, b"hello world", [5, 6, 7, 8]);
        let mut d = FrameDecoder::new(100);
        let mut buf = BytesMut::new();
        for (i, b) in raw.iter().enumerate() {
            buf.put_u8(*b);
            let got = d.decode(&mut buf).expect("valid frame");
            if i + 1 < raw.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(Message::Text(Bytes::from_static(b"hello world"))));
            }
        }
    }

    #[test]
    fn reassembles_fragments_with_interleaved_ping() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&client_frame(false, OP_TEXT, b"hel", [1, 1, 1, 1]));
        buf.extend_from_slice(&client_frame(true, OP_PING, b"p", [2, 2, 2, 2]));
        buf.extend_from_slice(&client_frame(false, OP_CONTINUATION, b"lo ", [3, 3, 3, 3]));
        buf.extend_from_slice(&client_frame(true, OP_CONTINUATION, b"you", [4, 4, 4, 4]));
        let mut d = FrameDecoder::new(100);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(Message::Text(Bytes::from_static(b"hello you"))))
        );
    }

    #[test]
    fn rejects_violations_with_the_right_close_code() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // unmasked client frame
            (vec![0x81, 0x01, b'a'], CLOSE_PROTOCOL),
            // reserved bit
            (
                client_frame(true, OP_TEXT | 0x40, b"a", [0; 4]),
                CLOSE_PROTOCOL,
            ),
            // unknown opcode
            (client_frame(true, 0x3, b"a", [0; 4]), CLOSE_PROTOCOL),
            // fragmented control frame
            (client_frame(false, OP_PING, b"a", [0; 4]), CLOSE_PROTOCOL),
            // continuation without start
            (
                client_frame(true, OP_CONTINUATION, b"a", [0; 4]),
                CLOSE_PROTOCOL,
            ),
            // too big
            (
                client_frame(true, OP_BINARY, &[0u8; 11], [0; 4]),
                CLOSE_TOO_BIG,
            ),
            // invalid UTF-8
            (
                client_frame(true, OP_TEXT, &[0xff, 0xfe], [0; 4]),
                CLOSE_INVALID_DATA,
            ),
        ];
        for (raw, code) in cases {
            let mut d = FrameDecoder::new(10);
            let err = d
                .decode(&mut BytesMut::from(&raw[..]))
                .expect_err("must reject");
            assert_eq!(err.close_code(), code, "{raw:?}");
        }
    }

    #[test]
    fn close_frames_with_a_code_no_peer_may_send_fail_with_1002() {
        let close = |payload: &[u8]| {
            let raw = client_frame(true, OP_CLOSE, payload, [7, 7, 7, 7]);
            FrameDecoder::new(100).decode(&mut BytesMut::from(&raw[..]))
        };
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let got = close(&code.to_be_bytes());
            assert_eq!(
                got.map_err(|e| e.close_code()),
                Err(CLOSE_PROTOCOL),
                "{code}"
            );
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1011, 1013, 1014, 3000, 4999,
        ] {
            assert_eq!(
                close(&code.to_be_bytes()),
                Ok(Some(Message::Close(Some(code))))
            );
        }
        assert_eq!(close(b""), Ok(Some(Message::Close(None))));
        assert_eq!(close(b"\x03\xe8bye"), Ok(Some(Message::Close(Some(1000)))));
        assert_eq!(
            close(b"\x03\xe8\xff").map_err(|e| e.close_code()),
            Err(CLOSE_INVALID_DATA)
        );
    }

    #[test]
    fn too_big_is_detected_from_the_header_and_across_fragments() {
        // Only the header of a huge frame: rejected before the payload is buffered.
        let mut buf = BytesMut::from(&[0x82u8, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4][..]);
        assert_eq!(
            FrameDecoder::new(1000).decode(&mut buf),
            Err(WsError::TooBig(1000))
        );
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&client_frame(false, OP_BINARY, &[1; 6], [0; 4]));
        buf.extend_from_slice(&client_frame(true, OP_CONTINUATION, &[1; 6], [0; 4]));
        assert_eq!(
            FrameDecoder::new(10).decode(&mut buf),
            Err(WsError::TooBig(10))
        );
    }

    #[test]
    fn server_frames_have_the_right_headers() {
        let header = |opcode, len| {
            let mut out = Vec::new();
            put_header(&mut out, opcode, len);
            out
        };
        assert_eq!(&frame(OP_TEXT, b"4hi")[..], &[0x81, 3, b'4', b'h', b'i']);
        assert_eq!(&header(OP_BINARY, 300)[..], &[0x82, 126, 1, 44]);
        assert_eq!(
            &header(OP_BINARY, 70000)[..],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
        assert_eq!(&close_frame(1009, "")[..], &[0x88, 2, 0x03, 0xF1]);
        assert_eq!(&close_frame(1008, "slow")[..], b"\x88\x06\x03\xF0slow");
        let long = "é".repeat(100);
        let f = close_frame(1008, &long);
        assert_eq!(
            f[1],
            2 + 122,
            "cut at a character boundary within 125 bytes"
        );
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut d = FrameDecoder::new(64);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }

        #[test]
        fn round_trips_through_masking(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), mask in proptest::array::uniform4(proptest::num::u8::ANY)) {
            let mut buf = BytesMut::from(&client_frame(true, OP_BINARY, &payload, mask)[..]);
            proptest::prop_assert_eq!(FrameDecoder::new(4096).decode(&mut buf), Ok(Some(Message::Binary(payload.into()))));
        }
    }
}
