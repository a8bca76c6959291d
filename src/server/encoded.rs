//! Pre-encoded outgoing packets, shared by every receiver of a broadcast.
//!
//! A broadcast builds one [`EncodedPacket`]: its Engine.IO packets (a text packet, then one binary
//! packet per Socket.IO attachment) and their WebSocket frames. Each receiving connection queues an
//! `Arc` of it, and the WebSocket writer hands the same buffers to `write_vectored`: nothing is
//! encoded or copied per receiver. The frames are laid out for that write: the small pieces (frame
//! headers, the text packet, small attachments) are copied once into shared buffers, so a frame
//! with one large attachment is two buffers (`header + text + header`, then the attachment's own
//! `Bytes`, never copied) and a frame whose parts are all small is one. Fewer buffers per frame mean
//! fewer `iovec`s per delivery and more frames per vectored write.
//! Long-polling receivers (rare: old proxies, the first second of a connection) base64-encode
//! binary parts when their poll is answered.

use super::ws;
use crate::engineio::{Packet, Str};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::{Arc, OnceLock};

/// Payloads up to this size are copied next to their frame header; larger ones are written from
/// their own buffer.
const INLINE_MAX: usize = 4096;

/// One or more Engine.IO packets, encoded once, with their WebSocket frames.
#[derive(Debug)]
pub struct EncodedPacket {
    parts: Vec<Packet>,
    ws: Vec<Bytes>,
    bytes: usize,
}

impl EncodedPacket {
    /// Encodes Engine.IO packets (e.g. a Socket.IO text packet and its attachments).
    pub fn new(parts: Vec<Packet>) -> Self {
        let mut ws_bufs = Vec::with_capacity(2);
        let mut small = BytesMut::new();
        for part in &parts {
            let (opcode, payload) = match part.to_ws() {
                crate::engineio::WsFrame::Text(t) => (ws::OP_TEXT, t.into_bytes()),
                crate::engineio::WsFrame::Binary(b) => (ws::OP_BINARY, b),
            };
            ws::put_header(&mut small, opcode, payload.len());
            if payload.len() <= INLINE_MAX {
                small.extend_from_slice(&payload);
            } else {
                ws_bufs.push(small.split().freeze());
                ws_bufs.push(payload);
            }
        }
        if !small.is_empty() {
            ws_bufs.push(small.freeze());
        }
        EncodedPacket {
            parts,
            bytes: ws_bufs.iter().map(Bytes::len).sum(),
            ws: ws_bufs,
        }
    }

    /// An Engine.IO message carrying `text` (typically an encoded Socket.IO packet), followed by
    /// binary messages for `attachments`.
    pub fn message(text: Str, attachments: Vec<Bytes>) -> Self {
        let mut parts = Vec::with_capacity(1 + attachments.len());
        parts.push(Packet::Message(text));
        parts.extend(attachments.into_iter().map(Packet::Binary));
        EncodedPacket::new(parts)
    }

    /// A raw WebSocket control frame (a pong to a WebSocket ping), written at the front of the next
    /// write batch; never sent by polling.
    pub(crate) fn ws_control(frame: Bytes) -> Self {
        EncodedPacket {
            parts: Vec::new(),
            bytes: frame.len(),
            ws: vec![frame],
        }
    }

    /// The Engine.IO packets.
    pub fn parts(&self) -> &[Packet] {
        &self.parts
    }

    /// The WebSocket frames' bytes in write order, in as few buffers as the layout allows.
    pub fn ws_bufs(&self) -> &[Bytes] {
        &self.ws
    }

    /// Bytes this packet occupies on a WebSocket (what queues count).
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// True for a packet with no frames.
    pub fn is_empty(&self) -> bool {
        self.ws.is_empty()
    }

    /// Appends the long-polling form of the packets to a payload (0x1e-separated records).
    pub(crate) fn append_polling(&self, out: &mut BytesMut) {
        for part in &self.parts {
            if !out.is_empty() {
                out.put_u8(0x1e);
            }
            part.encode_text(out);
        }
    }
}

/// Shared, allocation-free instances of the Engine.IO control packets the server sends.
pub(crate) fn ping() -> Arc<EncodedPacket> {
    static PING: OnceLock<Arc<EncodedPacket>> = OnceLock::new();
    PING.get_or_init(|| Arc::new(EncodedPacket::new(vec![Packet::Ping])))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames as separate header + payload pairs, the way any encoder would write them.
    fn plain_frames(text: &str, attachments: &[Bytes]) -> Vec<u8> {
        let mut out = ws::frame(ws::OP_TEXT, format!("4{text}").as_bytes()).to_vec();
        for a in attachments {
            out.extend_from_slice(&ws::frame(ws::OP_BINARY, a));
        }
        out
    }

    fn laid_out(p: &EncodedPacket) -> Vec<u8> {
        p.ws_bufs().iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn small_parts_share_a_buffer_and_large_attachments_are_never_copied() {
        let text = r#"52-["f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let small = Bytes::from(vec![1u8; 300]);
        let large = Bytes::from(vec![2u8; INLINE_MAX + 1]);
        for (attachments, buffers) in [
            (vec![], 1),
            (vec![small.clone()], 1),
            (vec![large.clone()], 2),
            (vec![large.clone(), small.clone()], 3),
            (vec![small.clone(), large.clone(), large.clone()], 4),
        ] {
            let p = EncodedPacket::message(text.into(), attachments.clone());
            assert_eq!(laid_out(&p), plain_frames(text, &attachments));
            assert_eq!(p.len(), laid_out(&p).len());
            assert_eq!(
                p.ws_bufs().len(),
                buffers,
                "{} attachments",
                attachments.len()
            );
            for buf in p.ws_bufs() {
                if buf.len() == large.len() {
                    assert_eq!(
                        buf.as_ptr(),
                        large.as_ptr(),
                        "a large attachment was copied"
                    );
                }
            }
        }
    }
}
