//! OTLP protobuf request bodies (gRPC, HTTP and Kafka), read into the model
//! as the collector reads them, and back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_codec::otlp::{decode_export_request, spans_to_otlp};

fuzz_target!(|data: &[u8]| {
    if let Ok((spans, _)) = decode_export_request(data) {
        let _ = spans_to_otlp(&spans);
    }
});
