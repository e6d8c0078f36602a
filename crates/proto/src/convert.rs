//! api_v2 protobuf <-> domain model.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spoor_model::{
    IdParseError, KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value,
};

use crate::api_v2;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("invalid trace id: {0}")]
    TraceId(IdParseError),
    #[error("invalid span id: {0}")]
    SpanId(IdParseError),
    #[error("span {0} has no process")]
    NoProcess(String),
    #[error("unknown {what} enum value {value}")]
    UnknownEnum { what: &'static str, value: i32 },
}

pub fn system_time_to_proto(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Times before the epoch or with out-of-range nanos clamp to the epoch.
pub fn system_time_from_proto(t: Option<&prost_types::Timestamp>) -> SystemTime {
    match t {
        Some(t) if t.seconds >= 0 && (0..1_000_000_000).contains(&t.nanos) => {
            UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32)
        }
        _ => UNIX_EPOCH,
    }
}

pub fn duration_to_proto(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn kv_to_proto(kv: &KeyValue) -> api_v2::KeyValue {
    let mut out = api_v2::KeyValue {
        key: kv.key.to_string(),
        ..Default::default()
    };
    match &kv.value {
        Value::String(s) => {
            out.v_type = api_v2::ValueType::String as i32;
            out.v_str = s.clone();
        }
        Value::Bool(b) => {
            out.v_type = api_v2::ValueType::Bool as i32;
            out.v_bool = *b;
        }
        Value::Int64(i) => {
            out.v_type = api_v2::ValueType::Int64 as i32;
            out.v_int64 = *i;
        }
        Value::Float64(f) => {
            out.v_type = api_v2::ValueType::Float64 as i32;
            out.v_float64 = *f;
        }
        Value::Binary(b) => {
            out.v_type = api_v2::ValueType::Binary as i32;
            out.v_binary = b.clone();
        }
    }
    out
}

fn kv_from_proto(kv: api_v2::KeyValue) -> Result<KeyValue, ConvertError> {
    let value = match api_v2::ValueType::try_from(kv.v_type) {
        Ok(api_v2::ValueType::String) => Value::String(kv.v_str),
        Ok(api_v2::ValueType::Bool) => Value::Bool(kv.v_bool),
        Ok(api_v2::ValueType::Int64) => Value::Int64(kv.v_int64),
        Ok(api_v2::ValueType::Float64) => Value::Float64(kv.v_float64),
        Ok(api_v2::ValueType::Binary) => Value::Binary(kv.v_binary),
        Err(_) => {
            return Err(ConvertError::UnknownEnum {
                what: "ValueType",
                value: kv.v_type,
            });
        }
    };
    Ok(KeyValue {
        key: kv.key.into(),
        value,
    })
}

pub fn kvs_from_proto(kvs: Vec<api_v2::KeyValue>) -> Result<Vec<KeyValue>, ConvertError> {
    kvs.into_iter().map(kv_from_proto).collect()
}

pub fn span_ref_to_proto(r: &SpanRef) -> api_v2::SpanRef {
    api_v2::SpanRef {
        trace_id: r.trace_id.to_bytes().to_vec(),
        span_id: r.span_id.to_bytes().to_vec(),
        ref_type: match r.ref_type {
            RefType::ChildOf => api_v2::SpanRefType::ChildOf as i32,
            RefType::FollowsFrom => api_v2::SpanRefType::FollowsFrom as i32,
        },
    }
}

pub fn span_ref_from_proto(r: api_v2::SpanRef) -> Result<SpanRef, ConvertError> {
    Ok(SpanRef {
        trace_id: TraceId::from_slice(&r.trace_id).map_err(ConvertError::TraceId)?,
        span_id: SpanId::from_slice(&r.span_id).map_err(ConvertError::SpanId)?,
        ref_type: match api_v2::SpanRefType::try_from(r.ref_type) {
            Ok(api_v2::SpanRefType::ChildOf) => RefType::ChildOf,
            Ok(api_v2::SpanRefType::FollowsFrom) => RefType::FollowsFrom,
            Err(_) => {
                return Err(ConvertError::UnknownEnum {
                    what: "SpanRefType",
                    value: r.ref_type,
                });
            }
        },
    })
}

pub fn log_to_proto(l: &Log) -> api_v2::Log {
    api_v2::Log {
        timestamp: Some(system_time_to_proto(l.timestamp)),
        fields: l.fields.iter().map(kv_to_proto).collect(),
    }
}

pub fn log_from_proto(l: api_v2::Log) -> Result<Log, ConvertError> {
    Ok(Log {
        timestamp: system_time_from_proto(l.timestamp.as_ref()),
        fields: kvs_from_proto(l.fields)?,
    })
}

pub fn process_to_proto(p: &Process) -> api_v2::Process {
    api_v2::Process {
        service_name: p.service_name.clone(),
        tags: p.tags.iter().map(kv_to_proto).collect(),
    }
}

fn process_from_proto(p: api_v2::Process) -> Result<Process, ConvertError> {
    Ok(Process {
        service_name: p.service_name,
        tags: kvs_from_proto(p.tags)?,
    })
}

/// The api_v2 form of a span, with its process embedded.
pub fn span_to_proto(span: &Span) -> api_v2::Span {
    api_v2::Span {
        process: Some(process_to_proto(&span.process)),
        ..span_to_proto_bare(span)
    }
}

/// A batch in api_v2 form: the process once, the spans without it.
pub fn batch_to_proto(process: &Process, spans: &[Span]) -> api_v2::Batch {
    api_v2::Batch {
        spans: spans.iter().map(span_to_proto_bare).collect(),
        process: Some(process_to_proto(process)),
    }
}

fn span_to_proto_bare(span: &Span) -> api_v2::Span {
    api_v2::Span {
        trace_id: span.trace_id.to_bytes().to_vec(),
        span_id: span.span_id.to_bytes().to_vec(),
        operation_name: span.operation_name.clone(),
        references: span.references.iter().map(span_ref_to_proto).collect(),
        flags: span.flags,
        start_time: Some(system_time_to_proto(span.start_time)),
        duration: Some(duration_to_proto(span.duration)),
        tags: span.tags.iter().map(kv_to_proto).collect(),
        logs: span.logs.iter().map(log_to_proto).collect(),
        process: None,
        process_id: String::new(),
        warnings: span.warnings.clone(),
    }
}

/// Converts one api_v2 span. `batch_process` is used when the span has none
/// of its own, as in a `Batch` where the process is sent once.
pub fn span_from_proto(
    span: api_v2::Span,
    batch_process: Option<&Arc<Process>>,
) -> Result<Span, ConvertError> {
    let trace_id = TraceId::from_slice(&span.trace_id).map_err(ConvertError::TraceId)?;
    let span_id = SpanId::from_slice(&span.span_id).map_err(ConvertError::SpanId)?;
    let process = match (span.process, batch_process) {
        (Some(p), _) => Arc::new(process_from_proto(p)?),
        (None, Some(p)) => Arc::clone(p),
        (None, None) => return Err(ConvertError::NoProcess(span_id.to_string())),
    };
    let references = span
        .references
        .into_iter()
        .map(span_ref_from_proto)
        .collect::<Result<_, _>>()?;
    let logs = span
        .logs
        .into_iter()
        .map(log_from_proto)
        .collect::<Result<_, _>>()?;
    let mut warnings = span.warnings;
    let (start_time, warning) = match span.start_time {
        Some(t) => spoor_model::time::time_from_parts(t.seconds, t.nanos, "start time"),
        None => (UNIX_EPOCH, None),
    };
    warnings.extend(warning);
    let (duration, warning) = match span.duration {
        Some(d) => spoor_model::time::duration_from_parts(d.seconds, d.nanos),
        None => (Duration::ZERO, None),
    };
    warnings.extend(warning);
    Ok(Span {
        trace_id,
        span_id,
        operation_name: span.operation_name,
        references,
        flags: span.flags,
        start_time,
        duration,
        tags: kvs_from_proto(span.tags)?,
        logs,
        process,
        warnings,
    })
}

/// Converts a batch span by span: spans that fail are reported with their
/// index and do not stop the rest.
pub fn spans_from_batch(batch: api_v2::Batch) -> (Vec<Span>, Vec<(usize, ConvertError)>) {
    let batch_process = match batch.process.map(process_from_proto).transpose() {
        Ok(p) => p.map(Arc::new),
        Err(e) => return (Vec::new(), vec![(0, e)]),
    };
    let mut spans = Vec::with_capacity(batch.spans.len());
    let mut errors = Vec::new();
    for (i, s) in batch.spans.into_iter().enumerate() {
        match span_from_proto(s, batch_process.as_ref()) {
            Ok(span) => spans.push(span),
            Err(e) => errors.push((i, e)),
        }
    }
    (spans, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Span {
        Span {
            trace_id: TraceId::new(1, 2),
            span_id: SpanId(3),
            operation_name: "op".into(),
            references: vec![SpanRef {
                trace_id: TraceId::new(1, 2),
                span_id: SpanId(9),
                ref_type: RefType::FollowsFrom,
            }],
            flags: 1,
            start_time: UNIX_EPOCH + Duration::new(1_485_467_191, 639_875_139),
            duration: Duration::from_micros(5),
            tags: vec![
                KeyValue::new("s", Value::String("x".into())),
                KeyValue::new("b", Value::Bool(true)),
                KeyValue::new("i", Value::Int64(i64::MIN)),
                KeyValue::new("f", Value::Float64(72.5)),
                KeyValue::new("bin", Value::Binary(vec![0, 1, 2])),
            ],
            logs: vec![Log {
                timestamp: UNIX_EPOCH + Duration::from_secs(5),
                fields: vec![KeyValue::string("event", "e")],
            }],
            process: Arc::new(Process {
                service_name: "svc".into(),
                tags: vec![KeyValue::string("host", "h")],
            }),
            warnings: vec!["w".into()],
        }
    }

    #[test]
    fn span_round_trips_through_api_v2() {
        let span = sample();
        assert_eq!(span_from_proto(span_to_proto(&span), None), Ok(span));
    }

    #[test]
    fn batch_process_fills_spans_and_bad_spans_are_reported_alone() {
        let mut good = span_to_proto(&sample());
        good.process = None;
        let mut bad = good.clone();
        bad.trace_id = vec![1, 2, 3];
        let batch = api_v2::Batch {
            spans: vec![bad, good],
            process: Some(api_v2::Process {
                service_name: "from-batch".into(),
                tags: vec![],
            }),
        };
        let (spans, errors) = spans_from_batch(batch);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].process.service_name, "from-batch");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 0);
        assert!(matches!(errors[0].1, ConvertError::TraceId(_)));
    }
}
