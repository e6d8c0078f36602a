//! Jaeger api_v2 and api_v3 protobuf messages and gRPC services, generated at build time
//! from the IDL in the workspace's `proto/` folder, plus conversions to and
//! from the domain model and a reader for Jaeger's proto-JSON trace files.

pub mod api_v2 {
    #![allow(clippy::all)]
    tonic::include_proto!("jaeger.api_v2");
}

/// Jaeger api_v3 (Jaeger v2's query API), whose traces are OTLP's
/// `TracesData`.
pub mod api_v3 {
    #![allow(clippy::all)]
    tonic::include_proto!("jaeger.api_v3");
}

/// Zipkin v2 protobuf messages (`zipkin.proto3`).
pub mod zipkin {
    #![allow(clippy::all)]
    tonic::include_proto!("zipkin.proto3");
}

mod convert;
mod encode;
pub mod jsonpb;
pub mod sampling_json;

pub use convert::{
    ConvertError, batch_to_proto, duration_to_proto, kvs_from_proto, log_from_proto, log_to_proto,
    process_to_proto, span_from_proto, span_ref_from_proto, span_ref_to_proto, span_to_proto,
    spans_from_batch, system_time_from_proto, system_time_to_proto,
};
pub use encode::encode_batch;
