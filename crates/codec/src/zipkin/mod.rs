//! Zipkin spans to the model. Every input format is first read into
//! [`ZipkinSpan`] (Zipkin's v2 model); v1 spans are split and converted the
//! way Zipkin's own V1SpanConverter does, so one conversion to the model
//! serves all formats.

mod model;
mod v1;
mod v2;

pub use model::{Endpoint, Kind, ZipkinSpan, to_model};
pub use v1::{decode_emit_zipkin_batch, decode_v1_json, decode_v1_thrift};
pub use v2::{decode_v2_json, decode_v2_proto};

/// A request that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ZipkinError {
    #[error("malformed zipkin json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("malformed zipkin protobuf: {0}")]
    Proto(#[from] prost::DecodeError),
    #[error("malformed zipkin thrift: {0}")]
    Thrift(#[from] crate::thrift::ThriftError),
}

#[cfg(test)]
mod tests;
