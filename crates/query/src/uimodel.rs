//! The JSON shape Jaeger's HTTP API and UI use for traces: hex ids, times in
//! microseconds, typed tags, and processes listed once per trace under keys
//! p1, p2, ... that spans point at.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use spoor_model::{
    DependencyLink, KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, Trace, TraceId, Value,
};

/// Integers outside ±(2^53 - 1) lose precision in JavaScript; Jaeger sends them as strings.
const MAX_SAFE_INT: i64 = (1 << 53) - 1;

#[derive(Serialize, Deserialize, Debug)]
pub struct UiTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<UiSpan>,
    pub processes: BTreeMap<String, UiProcess>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UiSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    pub operation_name: String,
    pub references: Vec<UiReference>,
    pub start_time: u64,
    pub duration: u64,
    pub tags: Vec<UiKeyValue>,
    pub logs: Vec<UiLog>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UiReference {
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct UiKeyValue {
    pub key: String,
    #[serde(rename = "type")]
    pub value_type: String,
    pub value: serde_json::Value,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct UiLog {
    pub timestamp: u64,
    pub fields: Vec<UiKeyValue>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UiProcess {
    pub service_name: String,
    pub tags: Vec<UiKeyValue>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UiDependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
}

pub fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn duration_micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn key_value(kv: &KeyValue) -> UiKeyValue {
    let (value_type, value) = match &kv.value {
        Value::String(s) => ("string", serde_json::Value::String(s.clone())),
        Value::Bool(b) => ("bool", serde_json::Value::Bool(*b)),
        Value::Int64(i) if (-MAX_SAFE_INT..=MAX_SAFE_INT).contains(i) => {
            ("int64", serde_json::Value::from(*i))
        }
        Value::Int64(i) => ("int64", serde_json::Value::String(i.to_string())),
        Value::Float64(f) => ("float64", serde_json::Value::from(*f)),
        Value::Binary(b) => (
            "binary",
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
    UiKeyValue {
        key: kv.key.clone(),
        value_type: value_type.to_string(),
        value,
    }
}

fn key_values(kvs: &[KeyValue]) -> Vec<UiKeyValue> {
    kvs.iter().map(key_value).collect()
}

fn warnings(w: &[String]) -> Option<Vec<String>> {
    (!w.is_empty()).then(|| w.to_vec())
}

/// Converts a trace, numbering distinct processes p1, p2, ... in order of
/// first appearance. Spans keep their stored order.
pub fn ui_trace(trace: &Trace) -> UiTrace {
    let mut processes: Vec<&Process> = Vec::new();
    let mut spans = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let index = match processes
            .iter()
            .position(|p| std::ptr::eq(*p, &*span.process) || **p == *span.process)
        {
            Some(i) => i,
            None => {
                processes.push(&span.process);
                processes.len() - 1
            }
        };
        spans.push(UiSpan {
            trace_id: span.trace_id.to_string(),
            span_id: span.span_id.to_string(),
            flags: span.flags,
            operation_name: span.operation_name.clone(),
            references: span
                .references
                .iter()
                .map(|r| UiReference {
                    ref_type: r.ref_type.as_str().to_string(),
                    trace_id: r.trace_id.to_string(),
                    span_id: r.span_id.to_string(),
                })
                .collect(),
            start_time: micros(span.start_time),
            duration: duration_micros(span.duration),
            tags: key_values(&span.tags),
            logs: span
                .logs
                .iter()
                .map(|l| UiLog {
                    timestamp: micros(l.timestamp),
                    fields: key_values(&l.fields),
                })
                .collect(),
            process_id: format!("p{}", index + 1),
            warnings: warnings(&span.warnings),
        });
    }
    UiTrace {
        trace_id: trace
            .spans
            .first()
            .map(|s| s.trace_id.to_string())
            .unwrap_or_default(),
        spans,
        processes: processes
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    format!("p{}", i + 1),
                    UiProcess {
                        service_name: p.service_name.clone(),
                        tags: key_values(&p.tags),
                    },
                )
            })
            .collect(),
        warnings: warnings(&trace.warnings),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UiJsonError {
    #[error("malformed trace json: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("invalid {field} {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
}

fn ui_err(field: &'static str, value: impl ToString, reason: impl ToString) -> UiJsonError {
    UiJsonError::Field {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn from_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn key_value_from_ui(kv: UiKeyValue) -> Result<KeyValue, UiJsonError> {
    use serde_json::Value as J;
    let bad = |why: &str| {
        ui_err(
            "tag value",
            &kv.value,
            format!("{why} for key {:?}", kv.key),
        )
    };
    let value = match (kv.value_type.as_str(), &kv.value) {
        ("string", J::String(s)) => Value::String(s.clone()),
        ("bool", J::Bool(b)) => Value::Bool(*b),
        ("int64", J::Number(n)) => Value::Int64(n.as_i64().ok_or_else(|| bad("not an int64"))?),
        ("int64", J::String(s)) => Value::Int64(s.parse().map_err(|_| bad("not an int64"))?),
        ("float64", J::Number(n)) => {
            Value::Float64(n.as_f64().ok_or_else(|| bad("not a float64"))?)
        }
        ("binary", J::String(s)) => Value::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| bad("not base64"))?,
        ),
        (t, _) => return Err(bad(&format!("value does not fit type {t:?}"))),
    };
    Ok(KeyValue { key: kv.key, value })
}

fn key_values_from_ui(kvs: Vec<UiKeyValue>) -> Result<Vec<KeyValue>, UiJsonError> {
    kvs.into_iter().map(key_value_from_ui).collect()
}

/// Reads one trace in the UI JSON shape (what `/api/traces/{id}` returns in
/// `data`, and what Jaeger's UI downloads), the inverse of [`ui_trace`].
pub fn trace_from_ui(ui: UiTrace) -> Result<Trace, UiJsonError> {
    let mut processes = std::collections::HashMap::new();
    for (id, p) in ui.processes {
        let process = Process {
            service_name: p.service_name,
            tags: key_values_from_ui(p.tags)?,
        };
        processes.insert(id, Arc::new(process));
    }
    let spans = ui
        .spans
        .into_iter()
        .map(|s| {
            let trace_id: TraceId = s
                .trace_id
                .parse()
                .map_err(|e| ui_err("traceID", &s.trace_id, e))?;
            let span_id: SpanId = s
                .span_id
                .parse()
                .map_err(|e| ui_err("spanID", &s.span_id, e))?;
            let process = processes
                .get(&s.process_id)
                .cloned()
                .ok_or_else(|| ui_err("processID", &s.process_id, "not in processes"))?;
            let references = s
                .references
                .into_iter()
                .map(|r| {
                    Ok(SpanRef {
                        trace_id: r
                            .trace_id
                            .parse()
                            .map_err(|e| ui_err("traceID", &r.trace_id, e))?,
                        span_id: r
                            .span_id
                            .parse()
                            .map_err(|e| ui_err("spanID", &r.span_id, e))?,
                        ref_type: match r.ref_type.as_str() {
                            "CHILD_OF" => RefType::ChildOf,
                            "FOLLOWS_FROM" => RefType::FollowsFrom,
                            other => {
                                return Err(ui_err("refType", other, "unknown reference type"));
                            }
                        },
                    })
                })
                .collect::<Result<_, _>>()?;
            let logs = s
                .logs
                .into_iter()
                .map(|l| {
                    Ok(Log {
                        timestamp: from_micros(l.timestamp),
                        fields: key_values_from_ui(l.fields)?,
                    })
                })
                .collect::<Result<_, UiJsonError>>()?;
            Ok(Span {
                trace_id,
                span_id,
                operation_name: s.operation_name,
                references,
                flags: s.flags,
                start_time: from_micros(s.start_time),
                duration: Duration::from_micros(s.duration),
                tags: key_values_from_ui(s.tags)?,
                logs,
                process,
                warnings: s.warnings.unwrap_or_default(),
            })
        })
        .collect::<Result<_, UiJsonError>>()?;
    Ok(Trace {
        spans,
        warnings: ui.warnings.unwrap_or_default(),
    })
}

pub fn ui_dependency(link: &DependencyLink) -> UiDependencyLink {
    UiDependencyLink {
        parent: link.parent.clone(),
        child: link.child.clone(),
        call_count: link.call_count,
        source: link.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> String {
        let path = format!(
            "{}/../../testdata/uimodel/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Jaeger's own pair: the domain trace and the UI JSON its API returns.
    #[test]
    fn matches_jaegers_ui_json_golden_file() {
        let trace = spoor_proto::jsonpb::trace_from_json(&testdata("domain_01.json")).unwrap();
        let got = serde_json::to_value(ui_trace(&trace)).unwrap();
        let want: serde_json::Value = serde_json::from_str(&testdata("ui_01.json")).unwrap();
        assert_eq!(
            got,
            want,
            "got {}",
            serde_json::to_string_pretty(&got).unwrap()
        );
    }

    #[test]
    fn ui_json_reads_back_to_the_same_trace() {
        let ui: UiTrace = serde_json::from_str(&testdata("ui_01.json")).unwrap();
        let trace = trace_from_ui(ui).unwrap();
        let again = serde_json::to_value(ui_trace(&trace)).unwrap();
        let want: serde_json::Value = serde_json::from_str(&testdata("ui_01.json")).unwrap();
        assert_eq!(again, want);
        assert_eq!(
            trace.spans[1].tags[4].value,
            Value::Int64(9_223_372_036_854_775_222)
        );
    }

    #[test]
    fn ui_json_errors_name_the_field() {
        let mut ui: serde_json::Value = serde_json::from_str(&testdata("ui_01.json")).unwrap();
        ui["spans"][0]["processID"] = "p9".into();
        let err = trace_from_ui(serde_json::from_value(ui).unwrap()).unwrap_err();
        assert!(err.to_string().contains("processID"), "{err}");
    }

    #[test]
    fn long_trace_ids_and_unsafe_integers() {
        let kv = key_value(&KeyValue::new("n", Value::Int64(-(1 << 60))));
        assert_eq!(kv.value, serde_json::json!("-1152921504606846976"));
        let kv = key_value(&KeyValue::new("n", Value::Int64(MAX_SAFE_INT)));
        assert_eq!(kv.value, serde_json::json!(MAX_SAFE_INT));
        assert_eq!(spoor_model::TraceId::new(1, 2).to_string().len(), 32);
    }
}
