//! Socket.IO v5 packets: encoding, parsing, and the binary-attachment placeholders.
//!
//! Wire form of the text part: `<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`, e.g.
//! `2["hello",1]`, `2/admin,13["ping"]`, `51-["frame",{"_placeholder":true,"num":0}]`.
//! The namespace `/` is omitted. Binary packets (`5` BINARY_EVENT, `6` BINARY_ACK) are followed
//! by their attachments, one Engine.IO binary message each.
//!
//! A [`Packet`] keeps placeholders inside its JSON `data` and the attachments beside it, so that
//! [`Packet::encode`] produces the text once and shares the attachment [`Bytes`]: a broadcast
//! encodes once and every receiver gets clones of the same buffers.

use crate::engineio::Str;
use bytes::Bytes;
use serde_json::{Map, Value};

/// The Socket.IO packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0`: join a namespace (client → server, with optional auth), or accept (server → client, `{"sid":…}`).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event, `["name", args…]`.
    Event = 2,
    /// `3`: the answer to an event that carried an ack id, `[args…]`.
    Ack = 3,
    /// `4`: the server refuses a namespace connection, with a reason object.
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketKind {
    /// The kind for a type digit.
    pub fn from_digit(d: u8) -> Option<PacketKind> {
        Some(match d {
            b'0' => PacketKind::Connect,
            b'1' => PacketKind::Disconnect,
            b'2' => PacketKind::Event,
            b'3' => PacketKind::Ack,
            b'4' => PacketKind::ConnectError,
            b'5' => PacketKind::BinaryEvent,
            b'6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    /// The type digit on the wire.
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// True for the two kinds followed by attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// The default namespace.
pub const MAIN_NAMESPACE: &str = "/";

/// Event names a client may not emit (they are reserved for the library's own use).
pub(super) const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One Socket.IO packet with its attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketKind,
    /// The namespace, `/` by default.
    pub nsp: Str,
    /// The ack id of an event that wants an answer, or of the ack answering it.
    pub id: Option<u64>,
    /// JSON data; for binary kinds, holds `{"_placeholder":true,"num":N}` where attachment N goes.
    pub data: Option<Value>,
    /// Binary attachments (only for [`PacketKind::BinaryEvent`] / [`PacketKind::BinaryAck`]).
    pub attachments: Vec<Bytes>,
}

/// One argument of an event or ack: JSON or a binary buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Any JSON value (nested placeholders, if any, are left as they are).
    Json(Value),
    /// A binary buffer, carried as an attachment.
    Binary(Bytes),
}

impl From<Value> for Arg {
    fn from(v: Value) -> Self {
        Arg::Json(v)
    }
}

impl From<Bytes> for Arg {
    fn from(b: Bytes) -> Self {
        Arg::Binary(b)
    }
}

/// The text part and attachments of an encoded packet; send the text as an Engine.IO text
/// message, then each attachment as an Engine.IO binary message.
///
/// Both text forms share one buffer: `ws_text` is the complete Engine.IO WebSocket text frame
/// (`4` + text) and `text` is a slice of it, for long-polling payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The text part (without the Engine.IO `4` prefix): the data of an Engine.IO message.
    pub text: Str,
    /// `4` + `text`: the WebSocket text frame, ready to share between receivers.
    pub ws_text: Str,
    /// The attachments, shared with the packet (not copied).
    pub attachments: Vec<Bytes>,
}

impl Encoded {
    /// Bytes on the wire over WebSocket (frame payloads, without WebSocket headers): the size to
    /// account in bounded queues. Queue `Arc<Encoded>` to share one encoding among receivers.
    pub fn wire_len(&self) -> usize {
        self.ws_text.len() + self.attachments.iter().map(Bytes::len).sum::<usize>()
    }

    /// The Engine.IO packets to send, in order (text message, then one binary per attachment).
    pub fn eio_packets(&self) -> impl Iterator<Item = crate::engineio::Packet> + '_ {
        std::iter::once(crate::engineio::Packet::Message(self.text.clone())).chain(
            self.attachments
                .iter()
                .map(|a| crate::engineio::Packet::Binary(a.clone())),
        )
    }

    /// The WebSocket frames to send, in order; clones of shared buffers, no copies.
    pub fn ws_frames(&self) -> impl Iterator<Item = crate::engineio::WsFrame> + '_ {
        std::iter::once(crate::engineio::WsFrame::Text(self.ws_text.clone())).chain(
            self.attachments
                .iter()
                .map(|a| crate::engineio::WsFrame::Binary(a.clone())),
        )
    }
}

/// Builds the placeholder object `{"_placeholder":true,"num":num}`.
pub(super) fn placeholder(num: usize) -> Value {
    let mut m = Map::new();
    m.insert("_placeholder".into(), Value::Bool(true));
    m.insert("num".into(), Value::from(num));
    Value::Object(m)
}

/// If `v` is a placeholder object, its `num` (not checked against any attachment count).
pub(super) fn placeholder_num(v: &Value) -> Option<u64> {
    let m = v.as_object()?;
    if m.len() != 2 || m.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    m.get("num")?.as_u64()
}

/// Turns args into a JSON array (placeholders for binaries) and the attachment list.
fn split_args(head: Option<Value>, args: Vec<Arg>) -> (Value, Vec<Bytes>) {
    let mut arr = Vec::with_capacity(args.len() + usize::from(head.is_some()));
    arr.extend(head);
    let mut attachments = Vec::new();
    for a in args {
        match a {
            Arg::Json(v) => arr.push(v),
            Arg::Binary(b) => {
                arr.push(placeholder(attachments.len()));
                attachments.push(b);
            }
        }
    }
    (Value::Array(arr), attachments)
}

impl Packet {
    fn new(kind: PacketKind, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            kind,
            nsp: if nsp == MAIN_NAMESPACE {
                Str::from_static(MAIN_NAMESPACE)
            } else {
                Str::from(nsp)
            },
            id,
            data,
            attachments: Vec::new(),
        }
    }

    /// CONNECT: a client joins `nsp` (with an optional auth object), or the server accepts
    /// (`data` = `{"sid": …}`).
    pub fn connect(nsp: &str, data: Option<Value>) -> Packet {
        Packet::new(PacketKind::Connect, nsp, None, data)
    }

    /// DISCONNECT from `nsp`.
    pub fn disconnect(nsp: &str) -> Packet {
        Packet::new(PacketKind::Disconnect, nsp, None, None)
    }

    /// CONNECT_ERROR for `nsp`, e.g. `{"message":"Invalid namespace"}`.
    pub fn connect_error(nsp: &str, data: Value) -> Packet {
        Packet::new(PacketKind::ConnectError, nsp, None, Some(data))
    }

    /// An event `name` with `args`; becomes a BINARY_EVENT when any arg is binary.
    pub fn event(nsp: &str, name: &str, args: Vec<Arg>, id: Option<u64>) -> Packet {
        let (data, attachments) = split_args(Some(Value::String(name.to_owned())), args);
        let kind = if attachments.is_empty() {
            PacketKind::Event
        } else {
            PacketKind::BinaryEvent
        };
        Packet {
            attachments,
            ..Packet::new(kind, nsp, id, Some(data))
        }
    }

    /// An ack answering event `id`; becomes a BINARY_ACK when any arg is binary.
    pub fn ack(nsp: &str, id: u64, args: Vec<Arg>) -> Packet {
        let (data, attachments) = split_args(None, args);
        let kind = if attachments.is_empty() {
            PacketKind::Ack
        } else {
            PacketKind::BinaryAck
        };
        Packet {
            attachments,
            ..Packet::new(kind, nsp, Some(id), Some(data))
        }
    }

    /// The event name of an EVENT / BINARY_EVENT.
    pub fn event_name(&self) -> Option<&str> {
        match self.kind {
            PacketKind::Event | PacketKind::BinaryEvent => self.data.as_ref()?.get(0)?.as_str(),
            _ => None,
        }
    }

    /// The arguments of an event (after its name) or ack, with top-level placeholders replaced by
    /// their attachments (shared, not copied). Returns `None` for other kinds, or when a
    /// placeholder points past the attachments (the decoder already rejects that).
    pub fn args(&self) -> Option<Vec<Arg>> {
        let skip = match self.kind {
            PacketKind::Event | PacketKind::BinaryEvent => 1,
            PacketKind::Ack | PacketKind::BinaryAck => 0,
            _ => return None,
        };
        let arr = self.data.as_ref()?.as_array()?;
        let mut out = Vec::with_capacity(arr.len().saturating_sub(skip));
        for v in arr.iter().skip(skip) {
            match placeholder_num(v).filter(|_| self.kind.is_binary()) {
                Some(n) => out.push(Arg::Binary(
                    self.attachments.get(usize::try_from(n).ok()?)?.clone(),
                )),
                None => out.push(Arg::Json(v.clone())),
            }
        }
        Some(out)
    }

    /// Like [`Packet::args`], but moves the JSON out instead of cloning it (for dispatching a
    /// received event to its handler).
    pub fn into_args(self) -> Option<Vec<Arg>> {
        let skip = match self.kind {
            PacketKind::Event | PacketKind::BinaryEvent => 1,
            PacketKind::Ack | PacketKind::BinaryAck => 0,
            _ => return None,
        };
        let Some(Value::Array(arr)) = self.data else {
            return None;
        };
        let binary = self.kind.is_binary();
        arr.into_iter()
            .skip(skip)
            .map(|v| match placeholder_num(&v).filter(|_| binary) {
                Some(n) => usize::try_from(n)
                    .ok()
                    .and_then(|n| self.attachments.get(n))
                    .map(|b| Arg::Binary(b.clone())),
                None => Some(Arg::Json(v)),
            })
            .collect()
    }

    /// Appends the text part to `out` (callers that need the Engine.IO `4` prefix push it first,
    /// saving a copy).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        out.push(self.kind.digit());
        if self.kind.is_binary() {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{}-", self.attachments.len());
        }
        if self.nsp.as_str() != MAIN_NAMESPACE && !self.nsp.is_empty() {
            out.extend_from_slice(self.nsp.as_bytes());
            out.push(b',');
        }
        if let Some(id) = self.id {
            let _ = write!(out, "{id}");
        }
        if let Some(data) = &self.data {
            // Serializing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, data);
        }
    }

    /// The text part and the attachments, ready to send (encode once, share everywhere).
    pub fn encode(&self) -> Encoded {
        let ws_text = self.encode_ws_text();
        Encoded {
            text: ws_text.slice_ref(ws_text.get(1..).unwrap_or_default()),
            ws_text,
            attachments: self.attachments.clone(),
        }
    }

    /// The Engine.IO WebSocket text frame (`4` + text part) for this packet, in one allocation.
    pub fn encode_ws_text(&self) -> Str {
        let mut buf = Vec::with_capacity(17 + self.nsp.len());
        buf.push(b'4');
        self.encode_into(&mut buf);
        utf8_vec_to_str(buf)
    }
}

fn utf8_vec_to_str(buf: Vec<u8>) -> Str {
    // The encoder writes ASCII, a UTF-8 namespace and serde_json output, all UTF-8.
    match String::from_utf8(buf) {
        Ok(s) => Str::from(s),
        Err(_) => Str::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engineio::{Packet as EioPacket, WsFrame};
    use serde_json::json;

    fn text(p: &Packet) -> String {
        p.encode().text.to_string()
    }

    // Every example of docs/socket.io-protocol/v5-current.md, "Packet encoding", plus the v5
    // test suite's expectations.
    #[test]
    fn encodes_protocol_doc_examples() {
        assert_eq!(text(&Packet::connect("/", None)), "0");
        assert_eq!(
            text(&Packet::connect(
                "/admin",
                Some(json!({"sid": "oSO0OpakMV_3jnilAAAA"}))
            )),
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#
        );
        assert_eq!(
            text(&Packet::connect_error(
                "/",
                json!({"message": "Not authorized"})
            )),
            r#"4{"message":"Not authorized"}"#
        );
        assert_eq!(
            text(&Packet::connect_error(
                "/random",
                json!({"message": "Invalid namespace"})
            )),
            r#"4/random,{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            text(&Packet::event("/", "foo", vec![], None)),
            r#"2["foo"]"#
        );
        assert_eq!(
            text(&Packet::event("/admin", "bar", vec![], None)),
            r#"2/admin,["bar"]"#
        );
        let p = Packet::event(
            "/",
            "baz",
            vec![Arg::Binary(Bytes::from_static(&[1, 2, 3, 4]))],
            None,
        );
        assert_eq!(p.kind, PacketKind::BinaryEvent);
        let e = p.encode();
        assert_eq!(e.text, r#"51-["baz",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.attachments, vec![Bytes::from_static(&[1, 2, 3, 4])]);
        assert_eq!(e.ws_text, r#"451-["baz",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.wire_len(), e.ws_text.len() + 4);
        // One buffer for both forms.
        assert_eq!(e.text.as_ptr() as usize, e.ws_text.as_ptr() as usize + 1);
        assert_eq!(
            e.ws_frames().collect::<Vec<_>>(),
            vec![
                WsFrame::Text(e.ws_text.clone()),
                WsFrame::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ]
        );
        assert_eq!(
            e.eio_packets().collect::<Vec<_>>(),
            vec![
                EioPacket::Message(e.text.clone()),
                EioPacket::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ]
        );
        let p = Packet::event(
            "/admin",
            "baz",
            vec![
                Arg::Binary(Bytes::from_static(&[1, 2])),
                Arg::Binary(Bytes::from_static(&[3, 4])),
            ],
            None,
        );
        assert_eq!(
            text(&p),
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(
            text(&Packet::event("/", "foo", vec![], Some(12))),
            r#"212["foo"]"#
        );
        assert_eq!(
            text(&Packet::ack("/admin", 13, vec![json!("bar").into()])),
            r#"3/admin,13["bar"]"#
        );
        let p = Packet::ack(
            "/",
            15,
            vec![
                json!("bar").into(),
                Bytes::from_static(&[1, 2, 3, 4]).into(),
            ],
        );
        assert_eq!(p.kind, PacketKind::BinaryAck);
        assert_eq!(text(&p), r#"61-15["bar",{"_placeholder":true,"num":0}]"#);
        assert_eq!(text(&Packet::disconnect("/")), "1");
        assert_eq!(text(&Packet::disconnect("/admin")), "1/admin,");
        // From the sample session.
        let p = Packet::ack("/admin", 1, vec![Bytes::from_static(b"x").into()]);
        assert_eq!(
            p.encode_ws_text(),
            r#"461-/admin,1[{"_placeholder":true,"num":0}]"#
        );
        // The v5 suite's echo, key order preserved.
        assert_eq!(
            text(&Packet::event(
                "/",
                "message-back",
                vec![
                    json!(1).into(),
                    json!("2").into(),
                    json!({"3": [true], "a": 1, "0": 2}).into()
                ],
                None
            )),
            r#"2["message-back",1,"2",{"3":[true],"a":1,"0":2}]"#
        );
    }

    #[test]
    fn args_resolve_placeholders_without_copying() {
        let bin = Bytes::from(vec![7u8; 32]);
        let p = Packet::event(
            "/",
            "frame",
            vec![json!({"k": 1}).into(), bin.clone().into()],
            Some(3),
        );
        assert_eq!(p.event_name(), Some("frame"));
        let args = p.args().unwrap();
        assert_eq!(args.len(), 2);
        assert_eq!(args[0], Arg::Json(json!({"k": 1})));
        let Arg::Binary(b) = &args[1] else {
            panic!("not binary")
        };
        assert_eq!(b.as_ptr(), bin.as_ptr());
        // Encoding shares the attachment buffers too.
        assert_eq!(p.encode().attachments[0].as_ptr(), bin.as_ptr());
        assert_eq!(p.clone().into_args(), Some(args));
        let mut bad = p.clone();
        bad.attachments.clear();
        assert_eq!(bad.args(), None);
        assert_eq!(bad.into_args(), None);
        assert_eq!(Packet::disconnect("/").args(), None);
        assert_eq!(Packet::disconnect("/").into_args(), None);
        assert_eq!(Packet::disconnect("/").event_name(), None);
    }

    #[test]
    fn placeholder_helpers() {
        assert_eq!(placeholder_num(&placeholder(3)), Some(3));
        assert_eq!(
            placeholder_num(&json!({"_placeholder": true, "num": 1, "x": 0})),
            None
        );
        assert_eq!(
            placeholder_num(&json!({"_placeholder": false, "num": 1})),
            None
        );
        assert_eq!(
            placeholder_num(&json!({"_placeholder": true, "num": -1})),
            None
        );
        assert_eq!(placeholder_num(&json!([1])), None);
    }
}
