//! The JSON shape Jaeger's HTTP API and UI use for traces: hex ids, times in
//! microseconds, typed tags, and processes listed once per trace under keys
//! p1, p2, ... that spans point at.
use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;

use spoor_model::time::unix_micros;
use spoor_model::{DependencyLink, KeyValue, Process, Span, Trace, Value};

/// Integers outside ±(2^53 - 1) lose precision in JavaScript; Jaeger sends them as strings.
const MAX_SAFE_INT: i64 = (1 << 53) - 1;

#[derive(Serialize, Debug)]
pub struct UiTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<UiSpan>,
    pub processes: BTreeMap<String, UiProcess>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UiSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(skip_serializing_if = "is_zero")]
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

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct UiReference {
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Serialize, Debug)]
pub struct UiKeyValue {
    pub key: spoor_model::Key,
    #[serde(rename = "type")]
    pub value_type: String,
    pub value: serde_json::Value,
}

#[derive(Serialize, Debug)]
pub struct UiLog {
    pub timestamp: u64,
    pub fields: Vec<UiKeyValue>,
}

#[derive(Serialize, Debug)]
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
/// A trace's processes, each once (equal processes of different batches
/// too), and the index of each span's: `p{index + 1}` in the UI's JSON.
pub fn trace_processes(trace: &Trace) -> (Vec<&Process>, Vec<usize>) {
    let mut processes: Vec<&Process> = Vec::new();
    // spans of a batch share their process: most lookups are by address
    let mut by_address: std::collections::HashMap<*const Process, usize> = Default::default();
    let of_span = trace
        .spans
        .iter()
        .map(|span| {
            let address: *const Process = &*span.process;
            *by_address.entry(address).or_insert_with(|| {
                processes
                    .iter()
                    .position(|p| **p == *span.process)
                    .unwrap_or_else(|| {
                        processes.push(&span.process);
                        processes.len() - 1
                    })
            })
        })
        .collect();
    (processes, of_span)
}

/// The UI's `processes` object of [`trace_processes`].
pub fn ui_processes(processes: &[&Process]) -> BTreeMap<String, UiProcess> {
    processes
        .iter()
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
        .collect()
}

/// One span as the UI reads it; `process` its index in [`trace_processes`].
pub fn ui_span(span: &Span, process: usize) -> UiSpan {
    UiSpan {
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
        start_time: unix_micros(span.start_time),
        duration: duration_micros(span.duration),
        tags: key_values(&span.tags),
        logs: span
            .logs
            .iter()
            .map(|l| UiLog {
                timestamp: unix_micros(l.timestamp),
                fields: key_values(&l.fields),
            })
            .collect(),
        process_id: format!("p{}", process + 1),
        warnings: warnings(&span.warnings),
    }
}

pub fn ui_trace(trace: &Trace) -> UiTrace {
    let (processes, of_span) = trace_processes(trace);
    UiTrace {
        trace_id: trace
            .spans
            .first()
            .map(|s| s.trace_id.to_string())
            .unwrap_or_default(),
        spans: trace
            .spans
            .iter()
            .zip(of_span)
            .map(|(span, process)| ui_span(span, process))
            .collect(),
        processes: ui_processes(&processes),
        warnings: warnings(&trace.warnings),
    }
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
    fn long_trace_ids_and_unsafe_integers() {
        let kv = key_value(&KeyValue::new("n", Value::Int64(-(1 << 60))));
        assert_eq!(kv.value, serde_json::json!("-1152921504606846976"));
        let kv = key_value(&KeyValue::new("n", Value::Int64(MAX_SAFE_INT)));
        assert_eq!(kv.value, serde_json::json!(MAX_SAFE_INT));
        assert_eq!(spoor_model::TraceId::new(1, 2).to_string().len(), 32);
    }
}
