//! Jaeger api_v2 proto-JSON (Kafka's json encoding, Jaeger's fixtures):
//! spans and traces; a span read is written and read again the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spoor_proto::jsonpb::{span_from_json, span_to_json, trace_from_json};

fuzz_target!(|data: &[u8]| {
    if let Ok(span) = span_from_json(data) {
        let again = span_from_json(span_to_json(&span).to_string().as_bytes())
            .expect("a span written is read back");
        assert_eq!(again.trace_id, span.trace_id);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trace_from_json(text);
    }
});
