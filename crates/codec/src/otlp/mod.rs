//! OTLP traces <-> model, following the mapping Jaeger uses so that spans look
//! the same whichever protocol sent them: resource attributes become process
//! tags, kind becomes `span.kind`, status becomes `otel.status_code` (and
//! `error=true`), the scope becomes `otel.scope.name`/`otel.scope.version`,
//! events become logs with an `event` field, the parent becomes a CHILD_OF
//! reference and links become FOLLOWS_FROM references (CHILD_OF when marked
//! `opentracing.ref_type=child_of`, as Jaeger's translator does).
//!
//! A Jaeger reference has no attributes, so a link's attributes travel as a
//! log, as the OpenTelemetry specification's Jaeger mapping describes: at the
//! span's start, with `event=link`, the linked `trace_id` and `span_id` in hex,
//! and the attributes as fields. Every store keeps that log and searches its
//! fields like any tag; on the way back to OTLP the log becomes the link's
//! attributes again.
mod decode;
mod wire;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue as OtlpKeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status,
    span::{Event, Link, SpanKind as OtlpKind},
    status::StatusCode,
};
use spoor_model::time::unix_nanos;
use spoor_model::{
    KeyValue, Log, Process, RefType, SPAN_KIND_TAG, Span, SpanId, SpanKind, TraceId, Value,
};

pub use decode::{Converted, decode_export_request};
pub use wire::WireError;

pub const SERVICE_NAME: &str = "service.name";
pub const STATUS_CODE_TAG: &str = "otel.status_code";
pub const STATUS_DESCRIPTION_TAG: &str = "otel.status_description";
pub const SCOPE_NAME_TAG: &str = "otel.scope.name";
pub const SCOPE_VERSION_TAG: &str = "otel.scope.version";
/// The link attribute that carries an OpenTracing reference type.
pub const REF_TYPE_ATTRIBUTE: &str = "opentracing.ref_type";
pub const TRACE_STATE_TAG: &str = "w3c.tracestate";
pub const ERROR_TAG: &str = "error";
pub const EVENT_FIELD: &str = "event";
/// The `event` of the log that carries a link's attributes.
pub const LINK_EVENT: &str = "link";
pub const LINK_TRACE_ID_FIELD: &str = "trace_id";
pub const LINK_SPAN_ID_FIELD: &str = "span_id";
pub const DROPPED_ATTRIBUTES_FIELD: &str = "otel.dropped_attributes_count";
/// The sampled bit of W3C trace flags, also Jaeger's sampled flag.
const SAMPLED: u32 = 1;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpError {
    #[error("span has invalid trace id: {0} bytes, expected 16")]
    TraceIdLength(usize),
    #[error("span has invalid span id: {0} bytes, expected 8")]
    SpanIdLength(usize),
    #[error("resource has no service.name attribute")]
    NoServiceName,
}

fn time_from_nanos(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// The link a log carries the attributes of: its `event` is `link` and its
/// `trace_id` and `span_id` name one of `links`.
fn carried_link(log: &Log, links: &[Link]) -> Option<usize> {
    let field = |key: &str| log.fields.iter().find(|f| f.key == key).map(|f| &f.value);
    if field(EVENT_FIELD) != Some(&Value::String(LINK_EVENT.into())) {
        return None;
    }
    let (Some(Value::String(t)), Some(Value::String(s))) =
        (field(LINK_TRACE_ID_FIELD), field(LINK_SPAN_ID_FIELD))
    else {
        return None;
    };
    let (trace_id, span_id) = (t.parse::<TraceId>().ok()?, s.parse::<SpanId>().ok()?);
    links
        .iter()
        .position(|l| l.trace_id == trace_id.to_bytes() && l.span_id == span_id.to_bytes())
}

/// Converts OTLP resource spans (read from JSON, say) to model spans: they
/// are encoded and read by the one protobuf reader, so every form of OTLP
/// maps alike. Spans that cannot be converted are reported, one error each,
/// and do not stop the rest.
pub fn spans_from_otlp(resource_spans: Vec<ResourceSpans>) -> Result<Converted, WireError> {
    let request = ExportTraceServiceRequest { resource_spans };
    decode_export_request(&request.encode_to_vec())
}

fn value_to_otlp(v: &Value) -> AnyValue {
    AnyValue {
        value: Some(match v {
            Value::String(s) => any_value::Value::StringValue(s.clone()),
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::Int64(i) => any_value::Value::IntValue(*i),
            Value::Float64(f) => any_value::Value::DoubleValue(*f),
            Value::Binary(b) => any_value::Value::BytesValue(b.clone()),
        }),
    }
}

fn kv_to_otlp(kv: &KeyValue) -> OtlpKeyValue {
    OtlpKeyValue {
        key: kv.key.to_string(),
        value: Some(value_to_otlp(&kv.value)),
        ..Default::default()
    }
}

fn kind_to_otlp(kind: SpanKind) -> OtlpKind {
    match kind {
        SpanKind::Unspecified => OtlpKind::Unspecified,
        SpanKind::Internal => OtlpKind::Internal,
        SpanKind::Server => OtlpKind::Server,
        SpanKind::Client => OtlpKind::Client,
        SpanKind::Producer => OtlpKind::Producer,
        SpanKind::Consumer => OtlpKind::Consumer,
    }
}

fn string_tag(span: &Span, key: &str) -> Option<String> {
    match span.tag(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn span_to_otlp(span: &Span) -> OtlpSpan {
    let parent = span
        .references
        .iter()
        .position(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id);
    let mut links: Vec<Link> = span
        .references
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != parent)
        .map(|(_, r)| Link {
            trace_id: r.trace_id.to_bytes().to_vec(),
            span_id: r.span_id.to_bytes().to_vec(),
            // a CHILD_OF that is not the parent is marked, as Jaeger's
            // translator marks it, so the type survives; a link is FOLLOWS_FROM
            attributes: (r.ref_type == RefType::ChildOf)
                .then(|| OtlpKeyValue {
                    key: REF_TYPE_ATTRIBUTE.into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("child_of".into())),
                    }),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        })
        .collect();
    let status_code = match string_tag(span, STATUS_CODE_TAG).as_deref() {
        Some("ERROR") => StatusCode::Error,
        Some("OK") => StatusCode::Ok,
        _ if span.is_error() => StatusCode::Error,
        _ => StatusCode::Unset,
    };
    let status_message = string_tag(span, STATUS_DESCRIPTION_TAG).unwrap_or_default();
    const MAPPED: [&str; 6] = [
        SPAN_KIND_TAG,
        STATUS_CODE_TAG,
        STATUS_DESCRIPTION_TAG,
        SCOPE_NAME_TAG,
        SCOPE_VERSION_TAG,
        TRACE_STATE_TAG,
    ];
    let error_is_status = status_code == StatusCode::Error;
    let attributes = span
        .tags
        .iter()
        .filter(|kv| !MAPPED.contains(&kv.key.as_str()))
        .filter(|kv| !(error_is_status && kv.key == ERROR_TAG && kv.value == Value::Bool(true)))
        .map(kv_to_otlp)
        .collect();
    let mut carried = vec![false; links.len()];
    let mut events = Vec::with_capacity(span.logs.len());
    for log in &span.logs {
        if let Some(i) = carried_link(log, &links).filter(|i| !carried[*i]) {
            carried[i] = true;
            let link = &mut links[i];
            for f in &log.fields {
                match f.key.as_str() {
                    EVENT_FIELD | LINK_TRACE_ID_FIELD | LINK_SPAN_ID_FIELD => {}
                    TRACE_STATE_TAG => link.trace_state = f.value.as_string().into_owned(),
                    DROPPED_ATTRIBUTES_FIELD => {
                        if let Value::Int64(n) = f.value {
                            link.dropped_attributes_count = n.clamp(0, u32::MAX.into()) as u32;
                        }
                    }
                    _ => link.attributes.push(kv_to_otlp(f)),
                }
            }
            continue;
        }
        let name = log.fields.iter().find(|f| f.key == EVENT_FIELD);
        events.push(Event {
            time_unix_nano: unix_nanos(log.timestamp),
            name: name
                .map(|f| f.value.as_string().into_owned())
                .unwrap_or_default(),
            attributes: log
                .fields
                .iter()
                .filter(|f| f.key != EVENT_FIELD)
                .map(kv_to_otlp)
                .collect(),
            dropped_attributes_count: 0,
        });
    }
    OtlpSpan {
        trace_id: span.trace_id.to_bytes().to_vec(),
        span_id: span.span_id.to_bytes().to_vec(),
        trace_state: string_tag(span, TRACE_STATE_TAG).unwrap_or_default(),
        parent_span_id: parent
            .map(|i| span.references[i].span_id.to_bytes().to_vec())
            .unwrap_or_default(),
        flags: span.flags & 0xff,
        name: span.operation_name.clone(),
        kind: kind_to_otlp(span.kind()) as i32,
        start_time_unix_nano: unix_nanos(span.start_time),
        end_time_unix_nano: unix_nanos(span.end_time()),
        attributes,
        events,
        links,
        status: (status_code != StatusCode::Unset || !status_message.is_empty()).then_some(
            Status {
                code: status_code as i32,
                message: status_message,
            },
        ),
        ..Default::default()
    }
}

/// Groups spans by process and scope into OTLP resource spans, keeping span
/// order within each group.
pub fn spans_to_otlp(spans: &[Span]) -> Vec<ResourceSpans> {
    let mut out: Vec<(Arc<Process>, Vec<ScopeSpans>)> = Vec::new();
    for span in spans {
        let group = match out
            .iter()
            .position(|(p, _)| Arc::ptr_eq(p, &span.process) || **p == *span.process)
        {
            Some(i) => i,
            None => {
                out.push((Arc::clone(&span.process), Vec::new()));
                out.len() - 1
            }
        };
        let scope = InstrumentationScope {
            name: string_tag(span, SCOPE_NAME_TAG).unwrap_or_default(),
            version: string_tag(span, SCOPE_VERSION_TAG).unwrap_or_default(),
            ..Default::default()
        };
        let scopes = &mut out[group].1;
        let has_scope = |ss: &ScopeSpans| {
            ss.scope
                .as_ref()
                .is_some_and(|s| s.name == scope.name && s.version == scope.version)
        };
        match scopes.iter_mut().find(|ss| has_scope(ss)) {
            Some(ss) => ss.spans.push(span_to_otlp(span)),
            None => scopes.push(ScopeSpans {
                scope: Some(scope),
                spans: vec![span_to_otlp(span)],
                schema_url: String::new(),
            }),
        }
    }
    out.into_iter()
        .map(|(process, scope_spans)| {
            let mut attributes = vec![kv_to_otlp(&KeyValue::string(
                SERVICE_NAME,
                process.service_name.clone(),
            ))];
            attributes.extend(process.tags.iter().map(kv_to_otlp));
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans,
                schema_url: String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
