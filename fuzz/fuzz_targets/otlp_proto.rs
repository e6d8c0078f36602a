//! OTLP protobuf request bodies (gRPC and HTTP), converted to the model and
//! back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spoor_codec::otlp::{spans_from_otlp, spans_to_otlp};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        let (spans, _) = spans_from_otlp(request.resource_spans);
        let _ = spans_to_otlp(&spans);
    }
});
