//! Zipkin v2 protobuf bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_codec::zipkin::{decode_v2_proto, to_model};

fuzz_target!(|data: &[u8]| {
    if let Ok((spans, _)) = decode_v2_proto(data) {
        let _ = to_model(spans);
    }
});
