//! Spans as Elasticsearch documents, in Jaeger's `dbmodel` shape so Jaeger and
//! Spoor read each other's indices: hex ids, times in microseconds (plus
//! `startTimeMillis` for range queries), tags as nested `{key, type, value}`
//! arrays, and optionally tags as fields under `tag.*` / `process.tag.*` with
//! `.` in keys replaced.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use spoor_model::time::{from_unix_micros, unix_micros};
use spoor_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

#[derive(Debug, thiserror::Error)]
#[error("span document {field}: {message}")]
pub struct DocumentError {
    field: &'static str,
    message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> DocumentError {
    DocumentError {
        field,
        message: message.into(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpanDoc {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// Written by old Jaeger versions only; read as a CHILD_OF reference.
    #[serde(
        rename = "parentSpanID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub parent_span_id: String,
    #[serde(default)]
    pub flags: u32,
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<RefDoc>,
    pub start_time: u64,
    pub start_time_millis: u64,
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<KeyValueDoc>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tag: Map<String, Json>,
    #[serde(default)]
    pub logs: Vec<LogDoc>,
    pub process: ProcessDoc,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RefDoc {
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyValueDoc {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Json,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogDoc {
    pub timestamp: u64,
    #[serde(default)]
    pub fields: Vec<KeyValueDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessDoc {
    pub service_name: String,
    #[serde(default)]
    pub tags: Vec<KeyValueDoc>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tag: Map<String, Json>,
}

/// A row of the service index: one per service, operation (and span kind).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDoc {
    pub service_name: String,
    pub operation_name: String,
    /// Spoor's addition; absent from Jaeger's rows (read as unspecified).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub span_kind: String,
}

impl ServiceDoc {
    /// A stable document id, so each row is written once per index.
    pub fn id(&self) -> String {
        let mut h = Fnv64::default();
        // length-prefixed, so no two rows hash the same bytes
        for part in [&self.service_name, &self.operation_name, &self.span_kind] {
            h.write(&(part.len() as u64).to_le_bytes());
            h.write(part.as_bytes());
        }
        format!("{:016x}", h.0)
    }
}

/// FNV-1a, 64 bit: a stable hash for document ids (std's hasher is not stable).
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Which tags are also written as fields (`tag.http@method: "GET"`), so
/// they can be searched without a nested query.
#[derive(Clone, Debug, Default)]
pub struct TagsAsFields {
    pub all: bool,
    pub keys: HashSet<String>,
    pub dot_replacement: String,
}

impl TagsAsFields {
    fn as_field(&self, kv: &KeyValue) -> bool {
        !matches!(kv.value, Value::Binary(_)) && (self.all || self.keys.contains(kv.key.as_str()))
    }

    pub fn field_name(&self, key: &str) -> String {
        key.replace('.', &self.dot_replacement)
    }

    fn key_name(&self, field: &str) -> String {
        if self.dot_replacement.is_empty() {
            field.to_string()
        } else {
            field.replace(&self.dot_replacement, ".")
        }
    }

    fn split(&self, kvs: &[KeyValue]) -> (Vec<KeyValueDoc>, Map<String, Json>) {
        let mut nested = Vec::new();
        let mut fields = Map::new();
        for kv in kvs {
            if self.as_field(kv) {
                fields.insert(self.field_name(&kv.key), field_value(&kv.value));
            } else {
                nested.push(key_value_doc(kv));
            }
        }
        (nested, fields)
    }

    /// The span as its document.
    pub fn to_doc(&self, span: &Span) -> SpanDoc {
        let start = unix_micros(span.start_time);
        let (tags, tag) = self.split(&span.tags);
        let (process_tags, process_tag) = self.split(&span.process.tags);
        SpanDoc {
            trace_id: span.trace_id.to_string(),
            span_id: span_id_hex(span.span_id),
            parent_span_id: String::new(),
            flags: span.flags,
            operation_name: span.operation_name.clone(),
            references: span
                .references
                .iter()
                .map(|r| RefDoc {
                    ref_type: match r.ref_type {
                        RefType::ChildOf => "CHILD_OF",
                        RefType::FollowsFrom => "FOLLOWS_FROM",
                    }
                    .to_string(),
                    trace_id: r.trace_id.to_string(),
                    span_id: span_id_hex(r.span_id),
                })
                .collect(),
            start_time: start,
            start_time_millis: start / 1000,
            duration: span.duration.as_micros() as u64,
            tags,
            tag,
            logs: span
                .logs
                .iter()
                .map(|l| LogDoc {
                    timestamp: unix_micros(l.timestamp),
                    fields: l.fields.iter().map(key_value_doc).collect(),
                })
                .collect(),
            process: ProcessDoc {
                service_name: span.process.service_name.clone(),
                tags: process_tags,
                tag: process_tag,
            },
        }
    }

    /// The span a document holds; tags written as fields come back after
    /// the nested ones, in key order.
    pub fn from_doc(&self, doc: SpanDoc) -> Result<Span, DocumentError> {
        let trace_id: TraceId = doc
            .trace_id
            .parse()
            .map_err(|e| bad("traceID", format!("{e}")))?;
        let mut references = doc
            .references
            .into_iter()
            .map(|r| {
                Ok(SpanRef {
                    trace_id: r
                        .trace_id
                        .parse()
                        .map_err(|e| bad("references.traceID", format!("{e}")))?,
                    span_id: r
                        .span_id
                        .parse()
                        .map_err(|e| bad("references.spanID", format!("{e}")))?,
                    ref_type: match r.ref_type.as_str() {
                        "CHILD_OF" => RefType::ChildOf,
                        "FOLLOWS_FROM" => RefType::FollowsFrom,
                        other => {
                            return Err(bad(
                                "references.refType",
                                format!("unknown reference type {other:?}"),
                            ));
                        }
                    },
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !doc.parent_span_id.is_empty() {
            let parent: SpanId = doc
                .parent_span_id
                .parse()
                .map_err(|e| bad("parentSpanID", format!("{e}")))?;
            if !parent.is_zero() && !references.iter().any(|r| r.span_id == parent) {
                references.insert(
                    0,
                    SpanRef {
                        trace_id,
                        span_id: parent,
                        ref_type: RefType::ChildOf,
                    },
                );
            }
        }
        let logs = doc
            .logs
            .into_iter()
            .map(|l| {
                Ok(Log {
                    timestamp: from_unix_micros(l.timestamp),
                    fields: l
                        .fields
                        .into_iter()
                        .map(from_key_value_doc)
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, DocumentError>>()?;
        Ok(Span {
            trace_id,
            span_id: doc
                .span_id
                .parse()
                .map_err(|e| bad("spanID", format!("{e}")))?,
            operation_name: doc.operation_name,
            references,
            flags: doc.flags,
            start_time: from_unix_micros(doc.start_time),
            duration: Duration::from_micros(doc.duration),
            tags: self.join(doc.tags, doc.tag)?,
            logs,
            process: Arc::new(Process {
                service_name: doc.process.service_name,
                tags: self.join(doc.process.tags, doc.process.tag)?,
            }),
            warnings: Vec::new(),
        })
    }

    fn join(
        &self,
        nested: Vec<KeyValueDoc>,
        fields: Map<String, Json>,
    ) -> Result<Vec<KeyValue>, DocumentError> {
        let mut out = nested
            .into_iter()
            .map(from_key_value_doc)
            .collect::<Result<Vec<_>, _>>()?;
        let mut from_fields = fields
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    Json::String(s) => Value::String(s),
                    Json::Bool(b) => Value::Bool(b),
                    Json::Number(n) => match n.as_i64() {
                        Some(i) => Value::Int64(i),
                        None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    other => return Err(bad("tag", format!("unexpected value {other}"))),
                };
                Ok(KeyValue::new(self.key_name(&k), value))
            })
            .collect::<Result<Vec<_>, _>>()?;
        from_fields.sort_by(|a, b| a.key.cmp(&b.key));
        out.extend(from_fields);
        Ok(out)
    }
}

fn span_id_hex(id: SpanId) -> String {
    format!("{:016x}", id.0)
}

fn field_value(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Int64(i) => Json::from(*i),
        Value::Float64(f) => float_json(*f),
        Value::Binary(b) => Json::String(spoor_model::hex::encode(b)),
    }
}

/// Non-finite floats have no JSON number; they are written as text.
fn float_json(f: f64) -> Json {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(f.to_string()))
}

fn key_value_doc(kv: &KeyValue) -> KeyValueDoc {
    let (kind, value) = match &kv.value {
        Value::String(s) => ("string", Json::String(s.clone())),
        Value::Bool(b) => ("bool", Json::Bool(*b)),
        Value::Int64(i) => ("int64", Json::from(*i)),
        Value::Float64(f) => ("float64", float_json(*f)),
        Value::Binary(b) => ("binary", Json::String(spoor_model::hex::encode(b))),
    };
    KeyValueDoc {
        key: kv.key.to_string(),
        kind: kind.to_string(),
        value,
    }
}

fn from_key_value_doc(doc: KeyValueDoc) -> Result<KeyValue, DocumentError> {
    let wrong = |v: &Json| {
        bad(
            "tags",
            format!("{:?}: {} is not a {}", doc.key, v, doc.kind),
        )
    };
    let value = match (doc.kind.as_str(), &doc.value) {
        ("string", Json::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(other.to_string()),
        ("bool", Json::Bool(b)) => Value::Bool(*b),
        ("bool", Json::String(s)) => Value::Bool(s == "true"),
        ("int64", Json::Number(n)) => Value::Int64(n.as_i64().ok_or_else(|| wrong(&doc.value))?),
        ("int64", Json::String(s)) => Value::Int64(s.parse().map_err(|_| wrong(&doc.value))?),
        ("float64", Json::Number(n)) => {
            Value::Float64(n.as_f64().ok_or_else(|| wrong(&doc.value))?)
        }
        ("float64", Json::String(s)) => Value::Float64(s.parse().map_err(|_| wrong(&doc.value))?),
        ("binary", Json::String(s)) => {
            Value::Binary(spoor_model::hex::decode(s).ok_or_else(|| wrong(&doc.value))?)
        }
        (kind, _) if !["string", "bool", "int64", "float64", "binary"].contains(&kind) => {
            return Err(bad("tags", format!("{:?}: unknown type {kind:?}", doc.key)));
        }
        _ => return Err(wrong(&doc.value)),
    };
    Ok(KeyValue::new(doc.key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../testdata/elasticsearch/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Jaeger's domain span (api_v2 proto-JSON) whose document is es_01.json.
    fn domain_span() -> Span {
        let json = format!("{{\"spans\":[{}]}}", fixture("domain_01.json"));
        let mut trace = spoor_proto::jsonpb::trace_from_json(&json).unwrap();
        trace.spans.remove(0)
    }

    #[test]
    fn span_converts_to_jaegers_document() {
        let span = domain_span();
        let want: Json = serde_json::from_str(&fixture("es_01.json")).unwrap();
        let got = serde_json::to_value(TagsAsFields::default().to_doc(&span)).unwrap();
        assert_eq!(got, want);
        let back = TagsAsFields::default()
            .from_doc(serde_json::from_value(want).unwrap())
            .unwrap();
        assert_eq!(back, span);
        assert_eq!(span.trace_id, TraceId(1));
        assert_eq!(span.references.len(), 3);
        assert_eq!(
            span.tag("blob"),
            Some(&Value::Binary(vec![0, 0, 0x30, 0x39]))
        );
        assert_eq!(span.tag("temperature"), Some(&Value::Float64(72.5)));
        assert_eq!(span.tag("peer.ipv4"), Some(&Value::Int64(23456)));
        assert_eq!(span.duration, Duration::from_micros(5));
    }

    #[test]
    fn tags_as_fields_replace_dots_and_round_trip() {
        let span = domain_span();
        let opts = TagsAsFields {
            all: true,
            keys: HashSet::new(),
            dot_replacement: "@".into(),
        };
        let doc = opts.to_doc(&span);
        assert_eq!(doc.tag["peer@service"], "service-y");
        assert_eq!(doc.tag["peer@ipv4"], 23456);
        assert_eq!(doc.process.tag["peer@ipv4"], 23456);
        // binary stays nested, as in Jaeger
        assert_eq!(doc.tags.len(), 1);
        assert_eq!(doc.tags[0].key, "blob");
        let back = opts.from_doc(doc).unwrap();
        let mut want = span.tags.clone();
        let mut got = back.tags.clone();
        want.sort_by(|a, b| a.key.cmp(&b.key));
        got.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(got, want);
    }

    #[test]
    fn only_configured_keys_become_fields() {
        let span = domain_span();
        let opts = TagsAsFields {
            all: false,
            keys: ["error".to_string()].into(),
            dot_replacement: "@".into(),
        };
        let doc = opts.to_doc(&span);
        assert_eq!(doc.tag.len(), 1);
        assert_eq!(doc.tag["error"], true);
        assert_eq!(doc.tags.len(), span.tags.len() - 1);
    }

    #[test]
    fn legacy_parent_span_id_becomes_a_reference() {
        let mut doc: SpanDoc = serde_json::from_str(&fixture("es_01.json")).unwrap();
        doc.references.clear();
        doc.parent_span_id = "00000000000000aa".into();
        let span = TagsAsFields::default().from_doc(doc).unwrap();
        assert_eq!(span.parent_span_id(), Some(SpanId(0xaa)));
    }

    #[test]
    fn values_written_as_text_by_other_writers_are_read() {
        let kv = |kind: &str, value: Json| KeyValueDoc {
            key: "k".into(),
            kind: kind.into(),
            value,
        };
        assert_eq!(
            from_key_value_doc(kv("int64", Json::String("42".into())))
                .unwrap()
                .value,
            Value::Int64(42)
        );
        assert_eq!(
            from_key_value_doc(kv("float64", Json::String("NaN".into())))
                .unwrap()
                .value
                .as_string(),
            "NaN"
        );
        let err = from_key_value_doc(kv("int64", Json::Bool(true))).unwrap_err();
        assert!(err.to_string().contains("is not a int64"), "{err}");
        assert!(from_key_value_doc(kv("uuid", Json::Null)).is_err());
        assert!(from_key_value_doc(kv("binary", Json::String("abc".into()))).is_err());
    }

    #[test]
    fn service_ids_are_stable_and_distinct() {
        let a = ServiceDoc {
            service_name: "a".into(),
            operation_name: "b|c".into(),
            span_kind: String::new(),
        };
        let b = ServiceDoc {
            service_name: "a|b".into(),
            operation_name: "c".into(),
            span_kind: String::new(),
        };
        assert_eq!(a.id(), a.clone().id());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
    }
}
