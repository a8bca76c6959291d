//! The Redis bus's wire format: one [`Record`] as one binary envelope, parsed by every receiving
//! node and nothing else (the bus never looks at JSON or media).
//!
//! Envelope: `SE1 | kind u8 | flags u8 (1 key, 2 cache) | node_len u8 | node | stream_len u8 |
//! stream | track_len u8 | track | meta_len u32 BE | meta | data`. Node, stream and track are cut
//! at 255 bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::sync::Arc;

/// What a record carries; the relay gives each kind its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A media frame: `meta` is the event's JSON, `data` the frame.
    Media = 1,
    /// A stream's announce JSON in `meta`.
    Announce = 2,
    /// A track status JSON in `meta`.
    Status = 3,
    /// The stream's publisher is gone.
    Gone = 4,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => RecordKind::Media,
            2 => RecordKind::Announce,
            3 => RecordKind::Status,
            4 => RecordKind::Gone,
            _ => return None,
        })
    }
}

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The stream it belongs to (the channel it travels on).
    pub stream: Arc<str>,
    /// The track (media records), else empty.
    pub track: Arc<str>,
    /// What it carries.
    pub kind: RecordKind,
    /// A keyframe (media records only): starts a new GOP in the late-joiner cache.
    pub key: bool,
    /// Keep this media record in its track's shared GOP cache (video tracks).
    pub cache: bool,
    /// The node that published it (filled in by the bus on publish).
    pub node: Arc<str>,
    /// The JSON part (a frame's meta, an announce, a status); opaque to the bus.
    pub meta: Bytes,
    /// The frame bytes (media records), else empty.
    pub data: Bytes,
}

const MAGIC: &[u8; 3] = b"SE1";

/// Writes `r`'s envelope: `SE1 | kind u8 | flags u8 (1 key, 2 cache) | node_len u8 | node | stream_len u8 |
/// stream | track_len u8 | track | meta_len u32 BE | meta | data`. Node, stream and track are cut
/// at 255 bytes.
pub(super) fn encode_into(r: &Record, b: &mut impl BufMut) {
    b.put_slice(MAGIC);
    b.put_u8(r.kind as u8);
    b.put_u8(r.key as u8 | (r.cache as u8) << 1);
    for part in [&r.node, &r.stream, &r.track] {
        let part = short(part);
        b.put_u8(part.len() as u8);
        b.put_slice(part);
    }
    b.put_u32(r.meta.len() as u32);
    b.put_slice(&r.meta);
    b.put_slice(&r.data);
}

fn short(s: &str) -> &[u8] {
    &s.as_bytes()[..s.len().min(255)]
}

/// The length [`encode_into`] writes.
pub(super) fn envelope_len(r: &Record) -> usize {
    let strings: usize = [&r.node, &r.stream, &r.track]
        .iter()
        .map(|s| 1 + short(s).len())
        .sum();
    MAGIC.len() + 2 + strings + 4 + r.meta.len() + r.data.len()
}

/// A record's envelope as a Redis argument, encoded straight into the command's buffer (one copy
/// of the frame on its way to Redis less than encoding it first).
pub(super) struct Envelope<'a>(pub(super) &'a Record);

impl redis::ToRedisArgs for Envelope<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        encode_into(self.0, &mut out.bufmut_for_next_arg(envelope_len(self.0)));
    }
}

/// Parses an envelope; `None` for anything malformed (never panics: fuzzed in
/// `tests/fuzz/fuzz_targets/bus_envelope.rs`).
pub fn decode(mut b: Bytes) -> Option<Record> {
    if b.len() < MAGIC.len() + 4 || &b[..MAGIC.len()] != MAGIC {
        return None;
    }
    b.advance(MAGIC.len());
    let kind = RecordKind::from_u8(b.get_u8())?;
    let flags = b.get_u8();
    if flags & !3 != 0 {
        return None;
    }
    let node = take_str(&mut b)?;
    let stream = take_str(&mut b)?;
    let track = take_str(&mut b)?;
    if b.len() < 4 {
        return None;
    }
    let meta_len = b.get_u32() as usize;
    if b.len() < meta_len {
        return None;
    }
    let meta = b.split_to(meta_len);
    Some(Record {
        stream,
        track,
        kind,
        key: flags & 1 != 0,
        cache: flags & 2 != 0,
        node,
        meta,
        data: b,
    })
}

fn take_str(b: &mut Bytes) -> Option<Arc<str>> {
    let len = *b.first()? as usize;
    b.advance(1);
    if b.len() < len {
        return None;
    }
    let s = b.split_to(len);
    std::str::from_utf8(&s).ok().map(Arc::from)
}

/// `r`'s envelope as one buffer.
pub fn encode(r: &Record) -> Bytes {
    let mut b = BytesMut::with_capacity(envelope_len(r));
    encode_into(r, &mut b);
    b.freeze()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record() -> Record {
        Record {
            stream: "cam0".into(),
            track: "video".into(),
            kind: RecordKind::Media,
            key: true,
            cache: true,
            node: "n1".into(),
            meta: Bytes::from_static(br#"{"seq":1}"#),
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65, 0xff]),
        }
    }

    #[test]
    fn envelope_round_trips_and_has_its_stated_length() {
        let r = record();
        assert_eq!(encode(&r).len(), envelope_len(&r));
        assert_eq!(decode(encode(&r)), Some(r));
    }

    #[test]
    fn every_truncation_is_rejected_not_panicking() {
        let full = encode(&record());
        // The data part may legitimately be empty, so truncations inside it still decode.
        let header = full.len() - record().data.len();
        for n in 0..header {
            assert_eq!(decode(full.slice(..n)), None, "prefix of {n} bytes");
        }
    }

    #[test]
    fn the_envelope_format_is_unchanged() {
        let mut want = b"SE1\x01\x03\x02n1\x04cam0\x05video\x00\x00\x00\x09{\"seq\":1}".to_vec();
        want.extend([0, 0, 0, 1, 0x65, 0xff]);
        assert_eq!(encode(&record()), want);
    }

    #[test]
    fn the_envelope_as_a_redis_argument_is_the_encoded_record() {
        let r = record();
        let packed = |arg: &dyn Fn(&mut redis::Cmd)| {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg("ch");
            arg(&mut cmd);
            cmd.arg("next").get_packed_command()
        };
        assert_eq!(
            packed(&|c| {
                c.arg(Envelope(&r));
            }),
            packed(&|c| {
                c.arg(encode(&r).as_ref());
            })
        );
    }

    proptest::proptest! {
        /// Whatever decodes re-encodes to the same bytes (a node relays nothing it misread);
        /// nothing panics, whatever the kind, flags, lengths and bytes.
        #[test]
        fn envelopes_decode_canonically_or_not_at_all(
            kind in 0u8..6,
            flags in 0u8..8,
            parts in proptest::collection::vec("[a-z/]{0,6}", 3),
            meta_len in 0u32..12,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
        ) {
            let mut v = MAGIC.to_vec();
            v.extend([kind, flags]);
            for p in &parts {
                v.push(p.len() as u8);
                v.extend(p.as_bytes());
            }
            v.extend(meta_len.to_be_bytes());
            v.extend(rest);
            let input = Bytes::from(v);
            if let Some(r) = decode(input.clone()) {
                proptest::prop_assert_eq!(encode(&r), input);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut v = MAGIC.to_vec();
            v.extend(data);
            let _ = decode(Bytes::from(v));
        }
    }
}
