//! Agent datagrams on 6832 and HTTP 14268: any bytes decode or fail cleanly, and what
//! decodes re-encodes to the same spans.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_codec::thrift::{Protocol, decode_batch, decode_emit_batch, encode_emit_batch};

fuzz_target!(|data: &[u8]| {
    let _ = decode_batch(data, Protocol::Binary);
    if let Ok(batch) = decode_emit_batch(data, Protocol::Binary) {
        let again = encode_emit_batch(&batch.process, &batch.spans, Protocol::Binary, 1);
        let decoded = decode_emit_batch(&again, Protocol::Binary).expect("re-encoded batch decodes");
        // Debug output compares NaN tags as equal, unlike PartialEq
        assert_eq!(format!("{:?}", decoded.spans), format!("{:?}", batch.spans));
    }
});
