//! Zipkin v2: `POST /api/v2/spans` as JSON or protobuf.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use prost::Message;
use serde::Deserialize;
use spoor_model::{SpanId, TraceId};

use super::{Endpoint, Kind, ZipkinError, ZipkinSpan};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<JsonEndpoint>,
    #[serde(default)]
    remote_endpoint: Option<JsonEndpoint>,
    #[serde(default)]
    annotations: Vec<JsonAnnotation>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    debug: Option<bool>,
    #[serde(default)]
    shared: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsonEndpoint {
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Deserialize)]
struct JsonAnnotation {
    timestamp: u64,
    value: String,
}

impl JsonEndpoint {
    pub(super) fn into_endpoint(self) -> Endpoint {
        Endpoint {
            service_name: self.service_name.filter(|s| !s.is_empty()),
            ipv4: self.ipv4.and_then(|s| s.parse().ok()),
            ipv6: self.ipv6.and_then(|s| s.parse().ok()),
            port: self.port.filter(|p| *p != 0),
        }
    }
}

pub(super) fn kind(s: &str) -> Option<Kind> {
    match s.to_ascii_uppercase().as_str() {
        "CLIENT" => Some(Kind::Client),
        "SERVER" => Some(Kind::Server),
        "PRODUCER" => Some(Kind::Producer),
        "CONSUMER" => Some(Kind::Consumer),
        _ => None,
    }
}

fn trace_id(s: &str) -> Result<TraceId, String> {
    let id: TraceId = s.parse().map_err(|e| format!("span traceId {s:?}: {e}"))?;
    if id.is_zero() {
        return Err(format!("span traceId {s:?} is zero"));
    }
    Ok(id)
}

fn span_id(field: &str, s: &str) -> Result<SpanId, String> {
    s.parse().map_err(|e| format!("span {field} {s:?}: {e}"))
}

/// The hex ids of a JSON span (v1 or v2): trace id, span id, parent id.
pub(super) fn json_ids(
    trace: &str,
    id: &str,
    parent: Option<&str>,
) -> Result<(TraceId, SpanId, Option<SpanId>), String> {
    Ok((
        trace_id(trace)?,
        span_id("id", id)?,
        parent.map(|p| span_id("parentId", p)).transpose()?,
    ))
}

/// Reads a JSON list of v2 spans; spans with unreadable ids are reported
/// and the rest kept.
pub fn decode_v2_json(body: &[u8]) -> Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError> {
    let raw: Vec<JsonSpan> = serde_json::from_slice(body)?;
    let mut spans = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    for s in raw {
        match json_ids(&s.trace_id, &s.id, s.parent_id.as_deref()) {
            Ok((trace_id, id, parent_id)) => spans.push(ZipkinSpan {
                trace_id,
                id,
                parent_id,
                name: s.name.unwrap_or_default(),
                kind: s.kind.as_deref().and_then(kind),
                timestamp: s.timestamp,
                duration: s.duration,
                local_endpoint: s.local_endpoint.map(JsonEndpoint::into_endpoint),
                remote_endpoint: s.remote_endpoint.map(JsonEndpoint::into_endpoint),
                annotations: s
                    .annotations
                    .into_iter()
                    .map(|a| (a.timestamp, a.value))
                    .collect(),
                tags: s.tags,
                debug: s.debug.unwrap_or(false),
                shared: s.shared.unwrap_or(false),
            }),
            Err(e) => errors.push(e),
        }
    }
    Ok((spans, errors))
}

fn proto_endpoint(e: spoor_proto::zipkin::Endpoint) -> Endpoint {
    Endpoint {
        service_name: Some(e.service_name).filter(|s| !s.is_empty()),
        ipv4: <[u8; 4]>::try_from(e.ipv4.as_slice())
            .ok()
            .map(Ipv4Addr::from),
        ipv6: <[u8; 16]>::try_from(e.ipv6.as_slice())
            .ok()
            .map(Ipv6Addr::from),
        port: u16::try_from(e.port).ok().filter(|p| *p != 0),
    }
}

/// Reads a protobuf `ListOfSpans`; spans with unreadable ids are reported.
pub fn decode_v2_proto(body: &[u8]) -> Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError> {
    use spoor_proto::zipkin::{ListOfSpans, span::Kind as PKind};
    let list = ListOfSpans::decode(body)?;
    let mut spans = Vec::with_capacity(list.spans.len());
    let mut errors = Vec::new();
    for s in list.spans {
        let trace_id = match TraceId::from_slice(&s.trace_id) {
            Ok(t) if !t.is_zero() => t,
            _ => {
                errors.push(format!(
                    "span trace_id has {} bytes or is zero",
                    s.trace_id.len()
                ));
                continue;
            }
        };
        let Ok(id) = SpanId::from_slice(&s.id) else {
            errors.push(format!("span id has {} bytes, expected 8", s.id.len()));
            continue;
        };
        let parent_id = if s.parent_id.is_empty() {
            None
        } else {
            SpanId::from_slice(&s.parent_id).ok()
        };
        spans.push(ZipkinSpan {
            trace_id,
            id,
            parent_id,
            name: s.name,
            kind: match PKind::try_from(s.kind) {
                Ok(PKind::Client) => Some(Kind::Client),
                Ok(PKind::Server) => Some(Kind::Server),
                Ok(PKind::Producer) => Some(Kind::Producer),
                Ok(PKind::Consumer) => Some(Kind::Consumer),
                _ => None,
            },
            timestamp: Some(s.timestamp).filter(|t| *t != 0),
            duration: Some(s.duration).filter(|d| *d != 0),
            local_endpoint: s.local_endpoint.map(proto_endpoint),
            remote_endpoint: s.remote_endpoint.map(proto_endpoint),
            annotations: s
                .annotations
                .into_iter()
                .map(|a| (a.timestamp, a.value))
                .collect(),
            tags: s.tags.into_iter().collect(),
            debug: s.debug,
            shared: s.shared,
        });
    }
    Ok((spans, errors))
}
