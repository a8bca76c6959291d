//! Long-polling payload decoding: never panics, respects its limits, and whatever decodes
//! re-encodes to a payload that decodes to the same packets.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sioedge::engineio::{decode_payload, encode_payload, payload_len};

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data), 4096) {
        assert!(!packets.is_empty() && packets.len() <= data.len());
        let mut out = BytesMut::new();
        encode_payload(&packets, &mut out);
        assert_eq!(out.len(), payload_len(&packets));
        let again =
            decode_payload(out.freeze(), usize::MAX).expect("re-encoded payload must decode");
        assert_eq!(again, packets);
    }
});
