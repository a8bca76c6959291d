//! Engine.IO packet decoding from WebSocket frames: never panics, and whatever decodes
//! re-encodes to a frame that decodes to the same packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sioedge::engineio::{Packet, WsFrame};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    let decoded = if selector & 1 == 0 {
        Packet::from_ws_text_bytes(bytes)
    } else {
        Packet::from_ws(WsFrame::Binary(bytes))
    };
    if let Ok(p) = decoded {
        let again = Packet::from_ws(p.to_ws()).expect("re-encoded packet must decode");
        assert_eq!(again, p);
    }
});
