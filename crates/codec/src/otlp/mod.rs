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
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    KeyValue, Log, Process, RefType, SPAN_KIND_TAG, Span, SpanId, SpanKind, SpanRef, TraceId, Value,
};

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

fn value_from_otlp(v: Option<AnyValue>) -> Value {
    match v.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => Value::String(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::Int64(i),
        Some(any_value::Value::DoubleValue(d)) => Value::Float64(d),
        Some(any_value::Value::BytesValue(b)) => Value::Binary(b),
        // arrays and maps have no Jaeger type: carried as their JSON text
        Some(other) => Value::String(any_to_json(&other).to_string()),
        None => Value::String(String::new()),
    }
}

fn any_to_json(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => J::from(*d),
        any_value::Value::BytesValue(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, any_to_json))
                .collect(),
        ),
        any_value::Value::KvlistValue(kvs) => J::Object(
            kvs.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                    (kv.key.clone(), v.map_or(J::Null, any_to_json))
                })
                .collect(),
        ),
        any_value::Value::StringValueStrindex(i) => J::from(*i),
    }
}

fn kvs_from_otlp(kvs: Vec<OtlpKeyValue>) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| KeyValue {
            key: kv.key.into(),
            value: value_from_otlp(kv.value),
        })
        .collect()
}

fn time_from_nanos(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn process_from_resource(resource: Option<Resource>) -> Result<Process, OtlpError> {
    let mut service_name = None;
    let mut tags = Vec::new();
    for kv in resource.map(|r| r.attributes).unwrap_or_default() {
        match (kv.key.as_str(), value_from_otlp(kv.value)) {
            (SERVICE_NAME, Value::String(s)) if !s.is_empty() => service_name = Some(s),
            (_, value) => tags.push(KeyValue::new(kv.key, value)),
        }
    }
    Ok(Process {
        service_name: service_name.ok_or(OtlpError::NoServiceName)?,
        tags,
    })
}

fn kind_from_otlp(kind: i32) -> SpanKind {
    match OtlpKind::try_from(kind) {
        Ok(OtlpKind::Internal) => SpanKind::Internal,
        Ok(OtlpKind::Server) => SpanKind::Server,
        Ok(OtlpKind::Client) => SpanKind::Client,
        Ok(OtlpKind::Producer) => SpanKind::Producer,
        Ok(OtlpKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn span_from_otlp(
    s: OtlpSpan,
    scope: &Option<InstrumentationScope>,
    process: &Arc<Process>,
) -> Result<Span, OtlpError> {
    let trace_id = match <[u8; 16]>::try_from(s.trace_id.as_slice()) {
        Ok(b) => TraceId(u128::from_be_bytes(b)),
        Err(_) => return Err(OtlpError::TraceIdLength(s.trace_id.len())),
    };
    let span_id = match <[u8; 8]>::try_from(s.span_id.as_slice()) {
        Ok(b) => SpanId(u64::from_be_bytes(b)),
        Err(_) => return Err(OtlpError::SpanIdLength(s.span_id.len())),
    };
    let mut references = Vec::with_capacity(1 + s.links.len());
    if let Ok(parent) = <[u8; 8]>::try_from(s.parent_span_id.as_slice()) {
        let parent = u64::from_be_bytes(parent);
        if parent != 0 {
            references.push(SpanRef {
                trace_id,
                span_id: SpanId(parent),
                ref_type: RefType::ChildOf,
            });
        }
    }
    let start_time = time_from_nanos(s.start_time_unix_nano);
    let mut link_logs = Vec::new();
    for link in s.links {
        let (Ok(t), Ok(sp)) = (
            <[u8; 16]>::try_from(link.trace_id.as_slice()),
            <[u8; 8]>::try_from(link.span_id.as_slice()),
        ) else {
            continue;
        };
        let link_ref = SpanRef {
            trace_id: TraceId(u128::from_be_bytes(t)),
            span_id: SpanId(u64::from_be_bytes(sp)),
            ref_type: RefType::FollowsFrom,
        };
        let mut attributes = kvs_from_otlp(link.attributes);
        // Jaeger's translator: a link marked child_of is a CHILD_OF reference
        let before = attributes.len();
        attributes.retain(|kv| {
            !(kv.key == REF_TYPE_ATTRIBUTE && kv.value == Value::String("child_of".into()))
        });
        let ref_type = if attributes.len() < before {
            RefType::ChildOf
        } else {
            RefType::FollowsFrom
        };
        if !attributes.is_empty()
            || !link.trace_state.is_empty()
            || link.dropped_attributes_count > 0
        {
            link_logs.push(link_log(
                &link_ref,
                link.trace_state,
                link.dropped_attributes_count,
                attributes,
                start_time,
            ));
        }
        references.push(SpanRef {
            ref_type,
            ..link_ref
        });
    }

    let mut tags = kvs_from_otlp(s.attributes);
    let kind = kind_from_otlp(s.kind);
    if kind != SpanKind::Unspecified {
        tags.push(KeyValue::string(SPAN_KIND_TAG, kind.as_str()));
    }
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            tags.push(KeyValue::string(SCOPE_NAME_TAG, scope.name.clone()));
        }
        if !scope.version.is_empty() {
            tags.push(KeyValue::string(SCOPE_VERSION_TAG, scope.version.clone()));
        }
        // the scope's attributes, searchable by their keys as in Jaeger; the
        // span's own attribute wins where both have a key
        for kv in kvs_from_otlp(scope.attributes.clone()) {
            if !tags.iter().any(|t| t.key == kv.key) {
                tags.push(kv);
            }
        }
    }
    if let Some(status) = s.status {
        match StatusCode::try_from(status.code) {
            Ok(StatusCode::Error) => {
                tags.push(KeyValue::string(STATUS_CODE_TAG, "ERROR"));
                tags.push(KeyValue::new(ERROR_TAG, Value::Bool(true)));
            }
            Ok(StatusCode::Ok) => tags.push(KeyValue::string(STATUS_CODE_TAG, "OK")),
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(KeyValue::string(STATUS_DESCRIPTION_TAG, status.message));
        }
    }
    if !s.trace_state.is_empty() {
        tags.push(KeyValue::string(TRACE_STATE_TAG, s.trace_state));
    }
    for (key, count) in [
        ("otel.dropped_attributes_count", s.dropped_attributes_count),
        ("otel.dropped_events_count", s.dropped_events_count),
        ("otel.dropped_links_count", s.dropped_links_count),
    ] {
        if count > 0 {
            tags.push(KeyValue::new(key, Value::Int64(count as i64)));
        }
    }

    let logs = s
        .events
        .into_iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(1 + e.attributes.len());
            if !e.name.is_empty() {
                fields.push(KeyValue::string(EVENT_FIELD, e.name));
            }
            fields.extend(kvs_from_otlp(e.attributes));
            Log {
                timestamp: time_from_nanos(e.time_unix_nano),
                fields,
            }
        })
        .chain(link_logs)
        .collect();

    // OTLP carries W3C flags in the low byte; exported spans with no flags
    // set come from SDKs that predate the field and were sampled.
    let flags = if s.flags & 0xff == 0 {
        SAMPLED
    } else {
        s.flags & 0xff
    };
    let (duration, warning) =
        spoor_model::time::duration_between_nanos(s.start_time_unix_nano, s.end_time_unix_nano);
    Ok(Span {
        trace_id,
        span_id,
        operation_name: s.name,
        references,
        flags,
        start_time,
        duration,
        tags,
        logs,
        process: Arc::clone(process),
        warnings: warning.into_iter().collect(),
    })
}

/// The log that carries a link's attributes (see the module's comment).
fn link_log(
    link: &SpanRef,
    trace_state: String,
    dropped_attributes: u32,
    attributes: Vec<KeyValue>,
    timestamp: SystemTime,
) -> Log {
    let mut fields = Vec::with_capacity(5 + attributes.len());
    fields.push(KeyValue::string(EVENT_FIELD, LINK_EVENT));
    fields.push(KeyValue::string(
        LINK_TRACE_ID_FIELD,
        format!("{:032x}", link.trace_id.0),
    ));
    fields.push(KeyValue::string(
        LINK_SPAN_ID_FIELD,
        link.span_id.to_string(),
    ));
    if !trace_state.is_empty() {
        fields.push(KeyValue::string(TRACE_STATE_TAG, trace_state));
    }
    if dropped_attributes > 0 {
        fields.push(KeyValue::new(
            DROPPED_ATTRIBUTES_FIELD,
            Value::Int64(dropped_attributes.into()),
        ));
    }
    fields.extend(attributes);
    Log { timestamp, fields }
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

/// Converts OTLP resource spans to model spans. Spans that cannot be
/// converted are reported, one error each, and do not stop the rest.
pub fn spans_from_otlp(resource_spans: Vec<ResourceSpans>) -> (Vec<Span>, Vec<OtlpError>) {
    let mut spans = Vec::new();
    let mut errors = Vec::new();
    for rs in resource_spans {
        let process = match process_from_resource(rs.resource) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                let n: usize = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
                errors.extend(std::iter::repeat_n(e, n));
                continue;
            }
        };
        for ss in rs.scope_spans {
            spans.reserve(ss.spans.len());
            for s in ss.spans {
                match span_from_otlp(s, &ss.scope, &process) {
                    Ok(span) => spans.push(span),
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    (spans, errors)
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
