//! Wire formats to and from the domain model, as pure functions: OTLP now,
//! Jaeger Thrift and Zipkin with the agent.

pub mod otlp;
pub mod thrift;
