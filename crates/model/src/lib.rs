//! Spoor's domain model: the span, trace and dependency types every other crate
//! speaks. It mirrors Jaeger's domain model so that conversions to and from
//! Jaeger's wire formats are lossless. No I/O and no async here.

mod duration;
pub mod hex;
mod ids;
mod span;
pub mod time;

pub use duration::{DurationParseError, parse_go_duration};
pub use ids::{IdParseError, SpanId, TraceId};
pub use span::{
    DependencyLink, Key, KeyValue, Log, Process, RefType, SPAN_KIND_TAG, Span, SpanKind, SpanRef,
    Trace, Value,
};
