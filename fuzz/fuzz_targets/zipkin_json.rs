//! Zipkin JSON bodies, v1 and v2.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_codec::zipkin::{decode_v1_json, decode_v2_json, to_model};

fuzz_target!(|data: &[u8]| {
    if let Ok((spans, _)) = decode_v2_json(data) {
        let _ = to_model(spans);
    }
    if let Ok((spans, _)) = decode_v1_json(data) {
        let _ = to_model(spans);
    }
});
