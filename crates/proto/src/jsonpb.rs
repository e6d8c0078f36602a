//! Reads traces in Jaeger's api_v2 proto-JSON form, the format of Jaeger's own
//! test fixtures and of its `/api/v3`-era JSON dumps: base64 ids, RFC 3339 times,
//! Go duration strings, `vType` omitted for strings and `refType` omitted for
//! CHILD_OF.
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use serde::Deserialize;
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, Trace, TraceId, Value};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("malformed trace json: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("invalid {field} {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
}

fn field_err(field: &'static str, value: &str, reason: impl ToString) -> JsonError {
    JsonError::Field {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonTrace {
    #[serde(default)]
    spans: Vec<JsonSpan>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    references: Option<Vec<JsonRef>>,
    #[serde(default)]
    flags: u32,
    start_time: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    tags: Option<Vec<JsonKeyValue>>,
    #[serde(default)]
    logs: Option<Vec<JsonLog>>,
    #[serde(default)]
    process: Option<JsonProcess>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRef {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    ref_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonProcess {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Option<Vec<JsonKeyValue>>,
}

#[derive(Deserialize)]
struct JsonLog {
    timestamp: String,
    #[serde(default)]
    fields: Option<Vec<JsonKeyValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonKeyValue {
    key: String,
    #[serde(default)]
    v_type: Option<String>,
    #[serde(default)]
    v_str: Option<String>,
    #[serde(default)]
    v_bool: Option<bool>,
    #[serde(default)]
    v_int64: Option<serde_json::Value>,
    /// A number, or "NaN" / "Infinity" / "-Infinity" as proto3 JSON writes them.
    #[serde(default)]
    v_float64: Option<serde_json::Value>,
    #[serde(default)]
    v_binary: Option<String>,
}

/// Go's decoder, which wrote these files, accepts non-zero trailing bits, and
/// some of Jaeger's fixtures rely on it.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

fn decode_b64(field: &'static str, s: &str) -> Result<Vec<u8>, JsonError> {
    LENIENT_BASE64.decode(s).map_err(|e| field_err(field, s, e))
}

fn trace_id(s: &str) -> Result<TraceId, JsonError> {
    TraceId::from_slice(&decode_b64("traceId", s)?).map_err(|e| field_err("traceId", s, e))
}

fn span_id(s: &str) -> Result<SpanId, JsonError> {
    SpanId::from_slice(&decode_b64("spanId", s)?).map_err(|e| field_err("spanId", s, e))
}

/// RFC 3339 with any offset, to a system time.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, JsonError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .map_err(|e| field_err("timestamp", s, e))
}

fn key_value(kv: JsonKeyValue) -> Result<KeyValue, JsonError> {
    let value = match kv.v_type.as_deref().unwrap_or("STRING") {
        "STRING" => Value::String(kv.v_str.unwrap_or_default()),
        "BOOL" => Value::Bool(kv.v_bool.unwrap_or_default()),
        "INT64" => Value::Int64(match kv.v_int64 {
            None => 0,
            // proto-JSON writes int64 as a string; older dumps use a number
            Some(serde_json::Value::String(s)) => {
                s.parse().map_err(|e| field_err("vInt64", &s, e))?
            }
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| field_err("vInt64", &n.to_string(), "not an int64"))?,
            Some(other) => return Err(field_err("vInt64", &other.to_string(), "not an int64")),
        }),
        "FLOAT64" => Value::Float64(match kv.v_float64 {
            None => 0.0,
            Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or_default(),
            Some(serde_json::Value::String(s)) => {
                s.parse().map_err(|e| field_err("vFloat64", &s, e))?
            }
            Some(other) => return Err(field_err("vFloat64", &other.to_string(), "not a float64")),
        }),
        "BINARY" => Value::Binary(decode_b64("vBinary", kv.v_binary.as_deref().unwrap_or(""))?),
        other => return Err(field_err("vType", other, "unknown value type")),
    };
    Ok(KeyValue {
        key: kv.key.into(),
        value,
    })
}

fn key_values(kvs: Option<Vec<JsonKeyValue>>) -> Result<Vec<KeyValue>, JsonError> {
    kvs.unwrap_or_default().into_iter().map(key_value).collect()
}

fn span(s: JsonSpan) -> Result<Span, JsonError> {
    let process = s.process.unwrap_or(JsonProcess {
        service_name: String::new(),
        tags: None,
    });
    let duration = match s.duration {
        Some(d) => spoor_model::parse_go_duration(&d).map_err(|e| field_err("duration", &d, e))?,
        None => std::time::Duration::ZERO,
    };
    Ok(Span {
        trace_id: trace_id(&s.trace_id)?,
        span_id: span_id(&s.span_id)?,
        operation_name: s.operation_name,
        references: s
            .references
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                Ok(SpanRef {
                    trace_id: trace_id(&r.trace_id)?,
                    span_id: span_id(&r.span_id)?,
                    ref_type: match r.ref_type.as_deref().unwrap_or("CHILD_OF") {
                        "CHILD_OF" => RefType::ChildOf,
                        "FOLLOWS_FROM" => RefType::FollowsFrom,
                        other => return Err(field_err("refType", other, "unknown reference type")),
                    },
                })
            })
            .collect::<Result<_, JsonError>>()?,
        flags: s.flags,
        start_time: parse_rfc3339(&s.start_time)?,
        duration,
        tags: key_values(s.tags)?,
        logs: s
            .logs
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                Ok(Log {
                    timestamp: parse_rfc3339(&l.timestamp)?,
                    fields: key_values(l.fields)?,
                })
            })
            .collect::<Result<_, JsonError>>()?,
        process: Arc::new(Process {
            service_name: process.service_name,
            tags: key_values(process.tags)?,
        }),
        warnings: s.warnings.unwrap_or_default(),
    })
}

/// Parses one span in api_v2 proto-JSON (Jaeger's `json` Kafka encoding).
pub fn span_from_json(json: &[u8]) -> Result<Span, JsonError> {
    span(serde_json::from_slice(json)?)
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn key_values_json(kvs: &[KeyValue]) -> Vec<serde_json::Value> {
    use serde_json::json;
    kvs.iter()
        .map(|kv| match &kv.value {
            Value::String(s) => json!({"key": kv.key, "vType": "STRING", "vStr": s}),
            Value::Bool(b) => json!({"key": kv.key, "vType": "BOOL", "vBool": b}),
            Value::Int64(i) => json!({"key": kv.key, "vType": "INT64", "vInt64": i.to_string()}),
            Value::Float64(f) => {
                let v = serde_json::Number::from_f64(*f).map_or_else(
                    || {
                        json!(if f.is_nan() {
                            "NaN".to_string()
                        } else if *f > 0.0 {
                            "Infinity".to_string()
                        } else {
                            "-Infinity".to_string()
                        })
                    },
                    serde_json::Value::Number,
                );
                json!({"key": kv.key, "vType": "FLOAT64", "vFloat64": v})
            }
            Value::Binary(b) => json!({
                "key": kv.key,
                "vType": "BINARY",
                "vBinary": base64::engine::general_purpose::STANDARD.encode(b),
            }),
        })
        .collect()
}

/// One span in api_v2 proto-JSON, with its process: what Jaeger's
/// collector writes to Kafka with the `json` encoding.
pub fn span_to_json(span: &Span) -> serde_json::Value {
    use serde_json::json;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    json!({
        "traceId": b64(&span.trace_id.to_bytes()),
        "spanId": b64(&span.span_id.to_bytes()),
        "operationName": span.operation_name,
        "references": span.references.iter().map(|r| json!({
            "traceId": b64(&r.trace_id.to_bytes()),
            "spanId": b64(&r.span_id.to_bytes()),
            "refType": match r.ref_type {
                RefType::ChildOf => "CHILD_OF",
                RefType::FollowsFrom => "FOLLOWS_FROM",
            },
        })).collect::<Vec<_>>(),
        "flags": span.flags,
        "startTime": rfc3339(span.start_time),
        "duration": format!("{}.{:09}s", span.duration.as_secs(), span.duration.subsec_nanos()),
        "tags": key_values_json(&span.tags),
        "logs": span.logs.iter().map(|l| json!({
            "timestamp": rfc3339(l.timestamp),
            "fields": key_values_json(&l.fields),
        })).collect::<Vec<_>>(),
        "process": {
            "serviceName": span.process.service_name,
            "tags": key_values_json(&span.process.tags),
        },
        "warnings": span.warnings,
    })
}

/// Parses one trace (`{"spans": [...], "warnings": [...]}`) in api_v2 proto-JSON.
pub fn trace_from_json(json: &str) -> Result<Trace, JsonError> {
    let t: JsonTrace = serde_json::from_str(json)?;
    Ok(Trace {
        spans: t.spans.into_iter().map(span).collect::<Result<_, _>>()?,
        warnings: t.warnings.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn written_spans_read_back_equal() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/jaeger-integration/traces"
        );
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for span in trace_from_json(&text).unwrap().spans {
                let json = serde_json::to_vec(&span_to_json(&span)).unwrap();
                assert_eq!(span_from_json(&json).unwrap(), span);
                checked += 1;
            }
        }
        assert!(checked >= 30, "{checked} spans");
        let mut odd =
            trace_from_json(&std::fs::read_to_string(format!("{dir}/example_trace.json")).unwrap())
                .unwrap()
                .spans
                .remove(0);
        odd.tags = vec![
            KeyValue::new("nan", Value::Float64(f64::NAN)),
            KeyValue::new("inf", Value::Float64(f64::NEG_INFINITY)),
            KeyValue::new("big", Value::Int64(i64::MIN)),
        ];
        let json = serde_json::to_vec(&span_to_json(&odd)).unwrap();
        let back = span_from_json(&json).unwrap();
        assert!(matches!(back.tags[0].value, Value::Float64(f) if f.is_nan()));
        assert_eq!(back.tags[1..], odd.tags[1..]);
    }

    #[test]
    fn reads_jaeger_fixture_conventions() {
        let json = r#"{"spans":[{"traceId":"AAAAAAAAAAAAAAAAAAAAEQ==","spanId":"AAAAAAAAAAM=",
            "operationName":"op","references":[{"traceId":"AAAAAAAAAAAAAAAAAAAAEQ==","spanId":"AAAAAAAAAAI="}],
            "startTime":"2017-01-26T16:46:31.639875139-05:00","duration":"100000ns",
            "tags":[{"key":"a","vStr":"x"},{"key":"n","vType":"INT64","vInt64":"9223372036854775222"},
                    {"key":"bin","vType":"BINARY","vBinary":"AAAwOQ=="}],
            "process":{"serviceName":"svc"}}],"warnings":["w"]}"#;
        let t = trace_from_json(json).unwrap();
        let s = &t.spans[0];
        assert_eq!(s.trace_id, TraceId(0x11));
        assert_eq!(s.span_id, SpanId(3));
        assert_eq!(s.references[0].ref_type, RefType::ChildOf);
        assert_eq!(
            s.start_time,
            UNIX_EPOCH + Duration::new(1_485_467_191, 639_875_139)
        );
        assert_eq!(s.duration, Duration::from_micros(100));
        assert_eq!(s.tags[0].value, Value::String("x".into()));
        assert_eq!(s.tags[1].value, Value::Int64(9_223_372_036_854_775_222));
        assert_eq!(s.tags[2].value, Value::Binary(vec![0, 0, 0x30, 0x39]));
        assert_eq!(s.process.service_name, "svc");
        assert_eq!(t.warnings, vec!["w".to_string()]);
    }

    #[test]
    fn reports_the_bad_field() {
        let json = r#"{"spans":[{"traceId":"!!","spanId":"AAAAAAAAAAM=","startTime":"2017-01-26T16:46:31Z"}]}"#;
        let err = trace_from_json(json).unwrap_err().to_string();
        assert!(err.contains("traceId"), "{err}");
    }
}
