//! Zipkin Thrift: agent datagrams on 5775 and `POST /api/v1/spans` bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_codec::zipkin::{decode_emit_zipkin_batch, decode_v1_thrift, to_model};

fuzz_target!(|data: &[u8]| {
    if let Ok((spans, _)) = decode_emit_zipkin_batch(data) {
        let _ = to_model(spans);
    }
    if let Ok((spans, _)) = decode_v1_thrift(data) {
        let _ = to_model(spans);
    }
});
