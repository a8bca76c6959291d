//! The Socket.IO decoder fed a sequence of Engine.IO messages: never panics, never keeps more
//! than its limits allow, and every complete packet re-encodes to messages that decode to the
//! same packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sioedge::engineio::Str;
use sioedge::socketio::{Decoder, DecoderLimits, Packet};

const LIMITS: DecoderLimits = DecoderLimits { max_attachments: 4 };

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

fn check_round_trip(p: &Packet) {
    assert!(p.attachments.len() <= LIMITS.max_attachments);
    // Floats may legitimately move by one ulp through serde_json's default parser.
    if p.data.as_ref().is_some_and(has_float) {
        return;
    }
    let e = p.encode();
    let mut d = Decoder::new(LIMITS);
    let mut out = d.feed_text(e.text).expect("re-encoded text must decode");
    for a in e.attachments {
        assert!(out.is_none());
        out = d.feed_binary(a).expect("re-encoded attachment must decode");
    }
    assert_eq!(out.as_ref(), Some(p));
}

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(LIMITS);
    // Messages are separated by 0xff (never valid UTF-8); a leading 0x00 marks a binary one.
    for msg in data.split(|&b| b == 0xff) {
        let result = match msg.split_first() {
            Some((0, bin)) => d.feed_binary(Bytes::copy_from_slice(bin)),
            _ => match Str::from_utf8(Bytes::copy_from_slice(msg)) {
                Ok(s) => d.feed_text(s),
                Err(_) => continue,
            },
        };
        match result {
            Ok(Some(p)) => check_round_trip(&p),
            Ok(None) => assert!(d.is_pending()),
            Err(_) => assert!(!d.is_pending()),
        }
    }
});
