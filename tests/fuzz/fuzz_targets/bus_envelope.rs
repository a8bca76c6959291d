//! The relay bus envelope (what every node parses from Redis): never panics, and whatever decodes
//! re-encodes to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sioedge::relay::envelope::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    if let Some(record) = decode(input.clone()) {
        assert_eq!(encode(&record), input, "{record:?}");
    }
});
