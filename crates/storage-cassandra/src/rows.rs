//! Spans as rows of Jaeger's v004 `traces` table and its user-defined types.
//! UDT fields are matched by name, so keyspaces made by older or newer v004
//! scripts (with or without `span_ref.attributes`) both work.
use std::sync::Arc;
use std::time::Duration;

use scylla::{DeserializeRow, DeserializeValue, SerializeValue};
use spoor_model::time::{from_unix_micros_i64, unix_micros_i64};
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

#[derive(Clone, Debug, PartialEq, SerializeValue, DeserializeValue)]
pub struct KeyValueUdt {
    pub key: String,
    pub value_type: String,
    pub value_string: Option<String>,
    pub value_bool: Option<bool>,
    pub value_long: Option<i64>,
    pub value_double: Option<f64>,
    pub value_binary: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, SerializeValue, DeserializeValue)]
pub struct LogUdt {
    pub ts: i64,
    pub fields: Option<Vec<KeyValueUdt>>,
}

#[derive(Clone, Debug, PartialEq, SerializeValue, DeserializeValue)]
pub struct SpanRefUdt {
    pub ref_type: String,
    pub trace_id: Vec<u8>,
    pub span_id: i64,
}

#[derive(Clone, Debug, PartialEq, SerializeValue, DeserializeValue)]
pub struct ProcessUdt {
    pub service_name: String,
    pub tags: Option<Vec<KeyValueUdt>>,
}

#[derive(Clone, Debug, PartialEq, SerializeValue, DeserializeValue)]
pub struct DependencyUdt {
    pub parent: String,
    pub child: String,
    pub call_count: i64,
    pub source: Option<String>,
}

/// The columns Spoor reads and writes, in the order of its statements.
#[derive(Clone, Debug, PartialEq, DeserializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub struct SpanRow {
    pub trace_id: Vec<u8>,
    pub span_id: i64,
    pub span_hash: i64,
    pub parent_id: i64,
    pub operation_name: String,
    pub flags: i32,
    pub start_time: i64,
    pub duration: i64,
    pub tags: Option<Vec<KeyValueUdt>>,
    pub logs: Option<Vec<LogUdt>>,
    pub refs: Option<Vec<SpanRefUdt>>,
    pub process: ProcessUdt,
}

pub const SPAN_COLUMNS: &str = "trace_id, span_id, span_hash, parent_id, operation_name, flags, \
                                start_time, duration, tags, logs, refs, process";

#[derive(Debug, thiserror::Error)]
#[error("traces row: {0}")]
pub struct RowError(String);

pub fn trace_id_bytes(id: TraceId) -> Vec<u8> {
    id.to_bytes().to_vec()
}

fn key_value(kv: &KeyValue) -> KeyValueUdt {
    let mut udt = KeyValueUdt {
        key: kv.key.to_string(),
        value_type: String::new(),
        value_string: None,
        value_bool: None,
        value_long: None,
        value_double: None,
        value_binary: None,
    };
    udt.value_type = match &kv.value {
        Value::String(s) => {
            udt.value_string = Some(s.clone());
            "string"
        }
        Value::Bool(b) => {
            udt.value_bool = Some(*b);
            "bool"
        }
        Value::Int64(i) => {
            udt.value_long = Some(*i);
            "int64"
        }
        Value::Float64(f) => {
            udt.value_double = Some(*f);
            "float64"
        }
        Value::Binary(b) => {
            udt.value_binary = Some(b.clone());
            "binary"
        }
    }
    .to_string();
    udt
}

fn from_key_value(udt: KeyValueUdt) -> Result<KeyValue, RowError> {
    let missing = || RowError(format!("tag {:?} has no {} value", udt.key, udt.value_type));
    let value = match udt.value_type.as_str() {
        "string" => Value::String(udt.value_string.clone().unwrap_or_default()),
        "bool" => Value::Bool(udt.value_bool.ok_or_else(missing)?),
        "int64" => Value::Int64(udt.value_long.ok_or_else(missing)?),
        "float64" => Value::Float64(udt.value_double.ok_or_else(missing)?),
        "binary" => Value::Binary(udt.value_binary.clone().unwrap_or_default()),
        other => {
            return Err(RowError(format!(
                "tag {:?}: unknown type {other:?}",
                udt.key
            )));
        }
    };
    Ok(KeyValue::new(udt.key, value))
}

fn key_values(kvs: &[KeyValue]) -> Vec<KeyValueUdt> {
    kvs.iter().map(key_value).collect()
}

fn from_key_values(kvs: Option<Vec<KeyValueUdt>>) -> Result<Vec<KeyValue>, RowError> {
    kvs.unwrap_or_default()
        .into_iter()
        .map(from_key_value)
        .collect()
}

/// A stable hash of the whole span: equal spans (a re-delivered copy) get
/// the same primary key and overwrite each other; different spans sharing
/// a span id (Zipkin's shared client/server spans) are both kept.
pub fn span_hash(span: &Span) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{span:?}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// The bound values of the insert into `traces`, in `SPAN_COLUMNS` order.
pub type SpanValues = (
    Vec<u8>,
    i64,
    i64,
    i64,
    String,
    i32,
    i64,
    i64,
    Vec<KeyValueUdt>,
    Vec<LogUdt>,
    Vec<SpanRefUdt>,
    ProcessUdt,
);

pub fn span_values(span: &Span) -> SpanValues {
    (
        trace_id_bytes(span.trace_id),
        span.span_id.0 as i64,
        span_hash(span),
        span.parent_span_id().map_or(0, |p| p.0 as i64),
        span.operation_name.clone(),
        span.flags as i32,
        unix_micros_i64(span.start_time),
        span.duration.as_micros() as i64,
        key_values(&span.tags),
        span.logs
            .iter()
            .map(|l| LogUdt {
                ts: unix_micros_i64(l.timestamp),
                fields: Some(key_values(&l.fields)),
            })
            .collect(),
        span.references
            .iter()
            .map(|r| SpanRefUdt {
                ref_type: match r.ref_type {
                    RefType::ChildOf => "child-of",
                    RefType::FollowsFrom => "follows-from",
                }
                .to_string(),
                trace_id: trace_id_bytes(r.trace_id),
                span_id: r.span_id.0 as i64,
            })
            .collect(),
        ProcessUdt {
            service_name: span.process.service_name.clone(),
            tags: Some(key_values(&span.process.tags)),
        },
    )
}

pub fn span_from_row(row: SpanRow) -> Result<Span, RowError> {
    let trace_id =
        TraceId::from_slice(&row.trace_id).map_err(|e| RowError(format!("trace_id: {e}")))?;
    let mut references = row
        .refs
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            Ok(SpanRef {
                trace_id: TraceId::from_slice(&r.trace_id)
                    .map_err(|e| RowError(format!("refs.trace_id: {e}")))?,
                span_id: SpanId(r.span_id as u64),
                ref_type: match r.ref_type.as_str() {
                    "child-of" => RefType::ChildOf,
                    "follows-from" => RefType::FollowsFrom,
                    other => return Err(RowError(format!("unknown ref_type {other:?}"))),
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // rows written without refs carry the parent only in parent_id
    if references.is_empty() && row.parent_id != 0 {
        references.push(SpanRef {
            trace_id,
            span_id: SpanId(row.parent_id as u64),
            ref_type: RefType::ChildOf,
        });
    }
    Ok(Span {
        trace_id,
        span_id: SpanId(row.span_id as u64),
        operation_name: row.operation_name,
        references,
        flags: row.flags as u32,
        start_time: from_unix_micros_i64(row.start_time),
        duration: Duration::from_micros(row.duration.max(0) as u64),
        tags: from_key_values(row.tags)?,
        logs: row
            .logs
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                Ok(Log {
                    timestamp: from_unix_micros_i64(l.ts),
                    fields: from_key_values(l.fields)?,
                })
            })
            .collect::<Result<_, RowError>>()?,
        process: Arc::new(Process {
            service_name: row.process.service_name,
            tags: from_key_values(row.process.tags)?,
        }),
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    pub(crate) fn sample_span() -> Span {
        Span {
            trace_id: TraceId::new(0x1, 0x2),
            span_id: SpanId(u64::MAX - 5),
            operation_name: "GET /".into(),
            references: vec![
                SpanRef {
                    trace_id: TraceId::new(0x1, 0x2),
                    span_id: SpanId(7),
                    ref_type: RefType::ChildOf,
                },
                SpanRef {
                    trace_id: TraceId(9),
                    span_id: SpanId(8),
                    ref_type: RefType::FollowsFrom,
                },
            ],
            flags: 1,
            start_time: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            duration: Duration::from_micros(1500),
            tags: vec![
                KeyValue::string("span.kind", "server"),
                KeyValue::new("error", Value::Bool(true)),
                KeyValue::new("n", Value::Int64(-4)),
                KeyValue::new("f", Value::Float64(0.25)),
                KeyValue::new("b", Value::Binary(vec![0, 1, 255])),
            ],
            logs: vec![Log {
                timestamp: UNIX_EPOCH + Duration::from_micros(1_700_000_000_124_000),
                fields: vec![KeyValue::string("event", "retry")],
            }],
            process: Arc::new(Process {
                service_name: "api".into(),
                tags: vec![KeyValue::string("host", "h1")],
            }),
            warnings: vec![],
        }
    }

    fn as_row(v: SpanValues) -> SpanRow {
        SpanRow {
            trace_id: v.0,
            span_id: v.1,
            span_hash: v.2,
            parent_id: v.3,
            operation_name: v.4,
            flags: v.5,
            start_time: v.6,
            duration: v.7,
            tags: Some(v.8),
            logs: Some(v.9),
            refs: Some(v.10),
            process: v.11,
        }
    }

    #[test]
    fn spans_round_trip_through_rows() {
        let span = sample_span();
        let values = span_values(&span);
        assert_eq!(values.0.len(), 16);
        assert_eq!(values.3, 7, "parent_id is the first reference in the trace");
        assert_eq!(values.10[0].ref_type, "child-of");
        assert_eq!(values.8[4].value_type, "binary");
        assert_eq!(span_from_row(as_row(values)).unwrap(), span);
    }

    #[test]
    fn equal_spans_hash_equal_and_different_ones_differ() {
        let a = sample_span();
        let mut b = sample_span();
        assert_eq!(span_hash(&a), span_hash(&b));
        b.duration += Duration::from_micros(1);
        assert_ne!(span_hash(&a), span_hash(&b));
    }

    #[test]
    fn rows_without_refs_take_the_parent_from_parent_id() {
        let mut row = as_row(span_values(&sample_span()));
        row.refs = None;
        row.tags = None;
        let span = span_from_row(row).unwrap();
        assert_eq!(span.parent_span_id(), Some(SpanId(7)));
        assert!(span.tags.is_empty());
    }

    #[test]
    fn malformed_rows_are_errors() {
        let mut row = as_row(span_values(&sample_span()));
        row.trace_id = vec![1, 2, 3];
        assert!(
            span_from_row(row)
                .unwrap_err()
                .to_string()
                .contains("trace_id")
        );
        let mut row = as_row(span_values(&sample_span()));
        row.tags.as_mut().unwrap()[1].value_bool = None;
        assert!(
            span_from_row(row)
                .unwrap_err()
                .to_string()
                .contains("no bool value")
        );
    }
}
