//! OTLP trace requests to model spans, read from their protobuf bytes (see
//! the module's comment for the mapping). Each message is read in as many
//! passes as its fields' order requires: a resource or scope may follow the
//! spans it describes, so it is read first.
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value as Json;
use spoor_model::{
    Key, KeyValue, Log, Process, RefType, SPAN_KIND_TAG, Span, SpanId, SpanKind, SpanRef, TraceId,
    Value,
};

use super::wire::{Field, Fields, MAX_VALUE_DEPTH, WireError, count};
use super::*;

/// Spans of one request, and one error for each span that could not be
/// converted.
pub type Converted = (Vec<Span>, Vec<OtlpError>);

/// Converts a protobuf `ExportTraceServiceRequest`. Spans that cannot be
/// converted are reported, one error each, and do not stop the rest; a
/// malformed message refuses the whole request.
pub fn decode_export_request(buf: &[u8]) -> Result<Converted, WireError> {
    let mut out = (Vec::new(), Vec::new());
    for field in Fields::new(buf) {
        if let (1, f) = field? {
            resource_spans(f.bytes(1)?, &mut out)?;
        }
    }
    Ok(out)
}

fn resource_spans(buf: &[u8], out: &mut Converted) -> Result<(), WireError> {
    let mut service_name = None;
    let mut tags = Vec::new();
    for field in Fields::new(buf) {
        if let (1, f) = field? {
            resource(f.bytes(1)?, &mut service_name, &mut tags)?;
        }
    }
    let Some(service_name) = service_name else {
        for field in Fields::new(buf) {
            if let (2, f) = field? {
                let n = count(f.bytes(2)?, 2)?;
                out.1
                    .extend(std::iter::repeat_n(OtlpError::NoServiceName, n));
            }
        }
        return Ok(());
    };
    let process = Arc::new(Process { service_name, tags });
    for field in Fields::new(buf) {
        if let (2, f) = field? {
            scope_spans(f.bytes(2)?, &process, out)?;
        }
    }
    Ok(())
}

/// A resource's attributes: `service.name` (a non-empty string) names the
/// process, the rest are its tags.
fn resource(
    buf: &[u8],
    service_name: &mut Option<String>,
    tags: &mut Vec<KeyValue>,
) -> Result<(), WireError> {
    for field in Fields::new(buf) {
        if let (1, f) = field? {
            match key_value(f.bytes(1)?)? {
                KeyValue {
                    key,
                    value: Value::String(s),
                } if key == SERVICE_NAME && !s.is_empty() => *service_name = Some(s),
                kv => tags.push(kv),
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Scope<'a> {
    name: &'a str,
    version: &'a str,
    attributes: Vec<KeyValue>,
}

fn scope_spans(buf: &[u8], process: &Arc<Process>, out: &mut Converted) -> Result<(), WireError> {
    let mut scope = Scope::default();
    let mut spans = 0;
    for field in Fields::new(buf) {
        match field? {
            (1, f) => {
                for field in Fields::new(f.bytes(1)?) {
                    match field? {
                        (1, f) => scope.name = f.str(1)?,
                        (2, f) => scope.version = f.str(2)?,
                        (3, f) => scope.attributes.push(key_value(f.bytes(3)?)?),
                        _ => {}
                    }
                }
            }
            (2, _) => spans += 1,
            _ => {}
        }
    }
    out.0.reserve(spans);
    for field in Fields::new(buf) {
        if let (2, f) = field? {
            match span(f.bytes(2)?, &scope, process)? {
                Ok(span) => out.0.push(span),
                Err(e) => out.1.push(e),
            }
        }
    }
    Ok(())
}

fn read_trace_id(b: &[u8]) -> Option<TraceId> {
    Some(TraceId(u128::from_be_bytes(b.try_into().ok()?)))
}

fn read_span_id(b: &[u8]) -> Option<SpanId> {
    Some(SpanId(u64::from_be_bytes(b.try_into().ok()?)))
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

/// The parts of a link the mapping needs, its ids already read.
struct LinkParts<'a> {
    reference: SpanRef,
    trace_state: &'a str,
    dropped_attributes: u32,
    attributes: Vec<KeyValue>,
}

fn span(
    buf: &[u8],
    scope: &Scope,
    process: &Arc<Process>,
) -> Result<Result<Span, OtlpError>, WireError> {
    // first the scalars, wherever they are, and the counts of the lists
    let (mut attributes, mut events, mut links) = (0, 0, 0);
    let (mut trace, mut id, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let (mut name, mut trace_state, mut status_message) = ("", "", "");
    let (mut kind, mut status_code, mut flags) = (0i32, 0i32, 0u32);
    let (mut start, mut end) = (0u64, 0u64);
    let mut dropped = [0u32; 3];
    for field in Fields::new(buf) {
        match field? {
            (1, f) => trace = f.bytes(1)?,
            (2, f) => id = f.bytes(2)?,
            (3, f) => trace_state = f.str(3)?,
            (4, f) => parent = f.bytes(4)?,
            (5, f) => name = f.str(5)?,
            (6, f) => kind = f.varint(6)? as i32,
            (7, f) => start = f.fixed64(7)?,
            (8, f) => end = f.fixed64(8)?,
            (9, _) => attributes += 1,
            (10, f) => dropped[0] = f.varint(10)? as u32,
            (11, _) => events += 1,
            (12, f) => dropped[1] = f.varint(12)? as u32,
            (13, _) => links += 1,
            (14, f) => dropped[2] = f.varint(14)? as u32,
            (15, f) => {
                for field in Fields::new(f.bytes(15)?) {
                    match field? {
                        (2, f) => status_message = f.str(2)?,
                        (3, f) => status_code = f.varint(3)? as i32,
                        _ => {}
                    }
                }
            }
            (16, f) => flags = f.fixed32(16)?,
            _ => {}
        }
    }
    let Some(trace_id) = read_trace_id(trace) else {
        return Ok(Err(OtlpError::TraceIdLength(trace.len())));
    };
    let Some(span_id) = read_span_id(id) else {
        return Ok(Err(OtlpError::SpanIdLength(id.len())));
    };
    let kind = kind_from_otlp(kind);
    let status_code = StatusCode::try_from(status_code).unwrap_or(StatusCode::Unset);

    // then the lists, each allocated once at its size: the span's attributes
    // and what the mapping adds after them
    let added = usize::from(kind != SpanKind::Unspecified)
        + usize::from(!scope.name.is_empty())
        + usize::from(!scope.version.is_empty())
        + scope.attributes.len()
        + match status_code {
            StatusCode::Error => 2,
            StatusCode::Ok => 1,
            StatusCode::Unset => 0,
        }
        + usize::from(!status_message.is_empty())
        + usize::from(!trace_state.is_empty())
        + dropped.iter().filter(|n| **n > 0).count();
    let mut tags = Vec::with_capacity(attributes + added);
    let mut logs = Vec::with_capacity(events);
    let mut link_parts = Vec::with_capacity(links);
    if attributes + events + links > 0 {
        for field in Fields::new(buf) {
            match field? {
                (9, f) => tags.push(key_value(f.bytes(9)?)?),
                (11, f) => logs.push(event(f.bytes(11)?)?),
                (13, f) => link_parts.extend(link(f.bytes(13)?)?),
                _ => {}
            }
        }
    }
    let start_time = time_from_nanos(start);

    let parent = read_span_id(parent).filter(|p| p.0 != 0);
    let mut references = Vec::with_capacity(usize::from(parent.is_some()) + link_parts.len());
    if let Some(parent) = parent {
        references.push(SpanRef {
            trace_id,
            span_id: parent,
            ref_type: RefType::ChildOf,
        });
    }
    for link in link_parts {
        if !link.attributes.is_empty()
            || !link.trace_state.is_empty()
            || link.dropped_attributes > 0
        {
            logs.push(link_log(&link, start_time));
        }
        references.push(link.reference);
    }

    if kind != SpanKind::Unspecified {
        tags.push(KeyValue::string(SPAN_KIND_TAG, kind.as_str()));
    }
    if !scope.name.is_empty() {
        tags.push(KeyValue::string(SCOPE_NAME_TAG, scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(KeyValue::string(SCOPE_VERSION_TAG, scope.version));
    }
    // the scope's attributes, searchable by their keys as in Jaeger; the
    // span's own attribute wins where both have a key
    for kv in &scope.attributes {
        if !tags.iter().any(|t| t.key == kv.key) {
            tags.push(kv.clone());
        }
    }
    match status_code {
        StatusCode::Error => {
            tags.push(KeyValue::string(STATUS_CODE_TAG, "ERROR"));
            tags.push(KeyValue::new(ERROR_TAG, Value::Bool(true)));
        }
        StatusCode::Ok => tags.push(KeyValue::string(STATUS_CODE_TAG, "OK")),
        StatusCode::Unset => {}
    }
    if !status_message.is_empty() {
        tags.push(KeyValue::string(STATUS_DESCRIPTION_TAG, status_message));
    }
    if !trace_state.is_empty() {
        tags.push(KeyValue::string(TRACE_STATE_TAG, trace_state));
    }
    for (key, count) in [
        ("otel.dropped_attributes_count", dropped[0]),
        ("otel.dropped_events_count", dropped[1]),
        ("otel.dropped_links_count", dropped[2]),
    ] {
        if count > 0 {
            tags.push(KeyValue::new(key, Value::Int64(count.into())));
        }
    }

    // OTLP carries W3C flags in the low byte; exported spans with no flags
    // set come from SDKs that predate the field and were sampled.
    let flags = if flags & 0xff == 0 {
        SAMPLED
    } else {
        flags & 0xff
    };
    let (duration, warning) = spoor_model::time::duration_between_nanos(start, end);
    Ok(Ok(Span {
        trace_id,
        span_id,
        operation_name: name.to_owned(),
        references,
        flags,
        start_time,
        duration,
        tags,
        logs,
        process: Arc::clone(process),
        warnings: warning.into_iter().collect(),
    }))
}

/// An event: a log whose `event` field is the event's name.
fn event(buf: &[u8]) -> Result<Log, WireError> {
    let mut fields = Vec::with_capacity(1 + count(buf, 3)?);
    let (mut time, mut name) = (0, "");
    for field in Fields::new(buf) {
        match field? {
            (1, f) => time = f.fixed64(1)?,
            (2, f) => name = f.str(2)?,
            (3, f) => fields.push(key_value(f.bytes(3)?)?),
            _ => {}
        }
    }
    if !name.is_empty() {
        fields.insert(0, KeyValue::string(EVENT_FIELD, name));
    }
    Ok(Log {
        timestamp: time_from_nanos(time),
        fields,
    })
}

/// A link, or none when its ids are not 16 and 8 bytes.
fn link(buf: &[u8]) -> Result<Option<LinkParts<'_>>, WireError> {
    let (mut trace, mut id): (&[u8], &[u8]) = (&[], &[]);
    let (mut trace_state, mut dropped_attributes) = ("", 0);
    let mut attributes = Vec::new();
    for field in Fields::new(buf) {
        match field? {
            (1, f) => trace = f.bytes(1)?,
            (2, f) => id = f.bytes(2)?,
            (3, f) => trace_state = f.str(3)?,
            (4, f) => attributes.push(key_value(f.bytes(4)?)?),
            (5, f) => dropped_attributes = f.varint(5)? as u32,
            _ => {}
        }
    }
    let (Some(trace_id), Some(span_id)) = (read_trace_id(trace), read_span_id(id)) else {
        return Ok(None);
    };
    // Jaeger's translator: a link marked child_of is a CHILD_OF reference
    let before = attributes.len();
    attributes.retain(|kv| {
        !(kv.key == REF_TYPE_ATTRIBUTE && matches!(&kv.value, Value::String(s) if s == "child_of"))
    });
    let ref_type = if attributes.len() < before {
        RefType::ChildOf
    } else {
        RefType::FollowsFrom
    };
    Ok(Some(LinkParts {
        reference: SpanRef {
            trace_id,
            span_id,
            ref_type,
        },
        trace_state,
        dropped_attributes,
        attributes,
    }))
}

/// The log that carries a link's attributes (see the module's comment).
fn link_log(link: &LinkParts, timestamp: SystemTime) -> Log {
    let r = &link.reference;
    let mut fields = Vec::with_capacity(5 + link.attributes.len());
    fields.push(KeyValue::string(EVENT_FIELD, LINK_EVENT));
    fields.push(KeyValue::string(
        LINK_TRACE_ID_FIELD,
        format!("{:032x}", r.trace_id.0),
    ));
    fields.push(KeyValue::string(LINK_SPAN_ID_FIELD, r.span_id.to_string()));
    if !link.trace_state.is_empty() {
        fields.push(KeyValue::string(TRACE_STATE_TAG, link.trace_state));
    }
    if link.dropped_attributes > 0 {
        fields.push(KeyValue::new(
            DROPPED_ATTRIBUTES_FIELD,
            Value::Int64(link.dropped_attributes.into()),
        ));
    }
    fields.extend(link.attributes.iter().cloned());
    Log { timestamp, fields }
}

/// A `KeyValue`; a missing value is the empty string, as Jaeger reads it.
fn key_value(buf: &[u8]) -> Result<KeyValue, WireError> {
    let mut key = "";
    let mut value = None;
    for field in Fields::new(buf) {
        match field? {
            (1, f) => key = f.str(1)?,
            // a value given twice is merged: its last field wins
            (2, f) => value = last_field(f.bytes(2)?)?.or(value),
            _ => {}
        }
    }
    Ok(KeyValue {
        key: Key::from(key),
        value: match value {
            Some((tag, f)) => any_value(tag, f)?,
            None => Value::String(String::new()),
        },
    })
}

/// The last set field of an `AnyValue` (its oneof), if any.
fn last_field(buf: &[u8]) -> Result<Option<(u32, Field<'_>)>, WireError> {
    let mut last = None;
    for field in Fields::new(buf) {
        let (tag, f) = field?;
        if (1..=8).contains(&tag) {
            last = Some((tag, f));
        }
    }
    Ok(last)
}

fn any_value(tag: u32, f: Field) -> Result<Value, WireError> {
    Ok(match tag {
        1 => Value::String(f.str(1)?.to_owned()),
        2 => Value::Bool(f.varint(2)? != 0),
        3 => Value::Int64(f.varint(3)? as i64),
        4 => Value::Float64(f64::from_bits(f.fixed64(4)?)),
        7 => Value::Binary(f.bytes(7)?.to_vec()),
        // arrays and maps have no Jaeger type: carried as their JSON text
        _ => Value::String(any_json(tag, f, 0)?.to_string()),
    })
}

/// An `AnyValue` as JSON, for arrays and maps.
fn any_json(tag: u32, f: Field, depth: usize) -> Result<Json, WireError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(WireError::TooDeep);
    }
    let nested = |buf: &[u8]| -> Result<Json, WireError> {
        Ok(match last_field(buf)? {
            Some((tag, f)) => any_json(tag, f, depth + 1)?,
            None => Json::Null,
        })
    };
    Ok(match tag {
        1 => Json::String(f.str(1)?.to_owned()),
        2 => Json::Bool(f.varint(2)? != 0),
        3 => Json::from(f.varint(3)? as i64),
        4 => Json::from(f64::from_bits(f.fixed64(4)?)),
        5 => {
            let mut values = Vec::new();
            for field in Fields::new(f.bytes(5)?) {
                if let (1, v) = field? {
                    values.push(nested(v.bytes(1)?)?);
                }
            }
            Json::Array(values)
        }
        6 => {
            let mut map = serde_json::Map::new();
            for field in Fields::new(f.bytes(6)?) {
                if let (1, kv) = field? {
                    let (mut key, mut value) = ("", Json::Null);
                    for field in Fields::new(kv.bytes(1)?) {
                        match field? {
                            (1, f) => key = f.str(1)?,
                            (2, f) => value = nested(f.bytes(2)?)?,
                            _ => {}
                        }
                    }
                    map.insert(key.to_owned(), value);
                }
            }
            Json::Object(map)
        }
        7 => Json::Array(f.bytes(7)?.iter().map(|b| Json::from(*b)).collect()),
        _ => Json::from(f.varint(8)? as i32),
    })
}
