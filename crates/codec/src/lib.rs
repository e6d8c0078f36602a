//! Wire formats to and from the domain model, as pure functions: OTLP, Jaeger
//! Thrift (binary and compact) and Zipkin (v1 JSON and Thrift, v2 JSON and
//! protobuf).

pub mod otlp;
pub mod thrift;
pub mod zipkin;
