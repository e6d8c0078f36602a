//! OTLP JSON request bodies (OTLP/HTTP), converted to the model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use spoor_codec::otlp::spans_from_otlp;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = spans_from_otlp(request.resource_spans);
    }
});
