//! Zipkin v1 (`POST /api/v1/spans` as JSON or Thrift, and `emitZipkinBatch`
//! on the agent's UDP 5775) read and converted to v2 spans the way Zipkin's
//! V1SpanConverter does: core annotations (cs/cr, sr/ss, ms/mr) give the kind,
//! endpoint, start and duration; a v1 span with both client and server
//! annotations becomes two spans sharing one id; `sa`/`ca`/`ma` become the
//! remote endpoint; other binary annotations become tags.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine;
use serde::Deserialize;
use spoor_model::{SpanId, TraceId};

use super::v2::{JsonEndpoint, json_ids};
use super::{Endpoint, Kind, ZipkinError, ZipkinSpan};
use crate::thrift::protocol::{
    BinaryReader, CompactReader, Reader, TType, ThriftError, read_list, read_struct, unexpected,
};

struct V1Annotation {
    timestamp: u64,
    value: String,
    endpoint: Option<Endpoint>,
}

struct V1Binary {
    key: String,
    value: String,
    endpoint: Option<Endpoint>,
}

struct V1Span {
    trace_id: TraceId,
    id: SpanId,
    parent_id: Option<SpanId>,
    name: String,
    timestamp: Option<u64>,
    duration: Option<u64>,
    annotations: Vec<V1Annotation>,
    binary_annotations: Vec<V1Binary>,
    debug: bool,
}

fn has_service(e: &Option<Endpoint>) -> bool {
    e.as_ref().is_some_and(|e| e.service_name.is_some())
}

/// Splits and converts one v1 span.
fn to_v2(v1: V1Span) -> Vec<ZipkinSpan> {
    let find = |value: &str| v1.annotations.iter().find(|a| a.value == value);
    let (cs, cr, sr, ss, ms, mr) = (
        find("cs"),
        find("cr"),
        find("sr"),
        find("ss"),
        find("ms"),
        find("mr"),
    );
    let base = |kind, local: Option<Endpoint>| ZipkinSpan {
        trace_id: v1.trace_id,
        id: v1.id,
        parent_id: v1.parent_id,
        name: v1.name.clone(),
        kind,
        timestamp: None,
        duration: None,
        local_endpoint: local,
        remote_endpoint: None,
        annotations: Vec::new(),
        tags: BTreeMap::new(),
        debug: v1.debug,
        shared: false,
    };
    let window = |start: Option<&V1Annotation>, end: Option<&V1Annotation>| {
        let ts = start.map(|a| a.timestamp);
        let dur = match (start, end) {
            (Some(s), Some(e)) if e.timestamp >= s.timestamp => Some(e.timestamp - s.timestamp),
            _ => None,
        };
        (ts, dur)
    };
    let endpoint_of = |a: Option<&V1Annotation>, b: Option<&V1Annotation>| {
        a.and_then(|a| a.endpoint.clone())
            .or_else(|| b.and_then(|b| b.endpoint.clone()))
    };

    let client = cs.is_some() || cr.is_some();
    let server = sr.is_some() || ss.is_some();
    let mut spans = Vec::new();
    if client {
        let mut s = base(Some(Kind::Client), endpoint_of(cs, cr));
        (s.timestamp, s.duration) = window(cs, cr);
        spans.push(s);
    }
    if server {
        let mut s = base(Some(Kind::Server), endpoint_of(sr, ss));
        (s.timestamp, s.duration) = window(sr, ss);
        // the server half of a span the client reported too
        s.shared = client;
        spans.push(s);
    }
    if !client && !server {
        if ms.is_some() {
            let mut s = base(Some(Kind::Producer), endpoint_of(ms, None));
            s.timestamp = ms.map(|a| a.timestamp);
            spans.push(s);
        } else if mr.is_some() {
            let mut s = base(Some(Kind::Consumer), endpoint_of(mr, None));
            s.timestamp = mr.map(|a| a.timestamp);
            spans.push(s);
        } else {
            spans.push(base(None, None));
        }
    }
    // the span's own timing wins for the first (or only) half, as in Zipkin
    if let Some(first) = spans.first_mut() {
        if v1.timestamp.is_some() {
            first.timestamp = v1.timestamp;
        }
        if v1.duration.is_some() {
            first.duration = v1.duration;
        }
    }

    const CORE: [&str; 6] = ["cs", "cr", "sr", "ss", "ms", "mr"];
    let index_for = |spans: &[ZipkinSpan], e: &Option<Endpoint>| {
        spans
            .iter()
            .position(|s| {
                e.is_some()
                    && s.local_endpoint.as_ref().map(|l| &l.service_name)
                        == e.as_ref().map(|e| &e.service_name)
            })
            .unwrap_or(0)
    };
    for a in &v1.annotations {
        if CORE.contains(&a.value.as_str()) {
            continue;
        }
        let i = index_for(&spans, &a.endpoint);
        spans[i].annotations.push((a.timestamp, a.value.clone()));
        if !has_service(&spans[i].local_endpoint) && has_service(&a.endpoint) {
            spans[i].local_endpoint = a.endpoint.clone();
        }
    }
    for b in &v1.binary_annotations {
        let remote_for = match b.key.as_str() {
            "sa" => Some(Kind::Client),
            "ca" => Some(Kind::Server),
            "ma" => None,
            _ => {
                let i = index_for(&spans, &b.endpoint);
                if b.key == "lc" && !has_service(&spans[i].local_endpoint) {
                    spans[i].local_endpoint = b.endpoint.clone();
                }
                spans[i].tags.insert(b.key.clone(), b.value.clone());
                continue;
            }
        };
        let target = match remote_for {
            Some(kind) => spans.iter_mut().find(|s| s.kind == Some(kind)),
            None => spans
                .iter_mut()
                .find(|s| matches!(s.kind, Some(Kind::Producer | Kind::Consumer))),
        };
        match target {
            Some(s) => s.remote_endpoint = b.endpoint.clone(),
            // an address without its core annotation: the local span's peer
            None => spans[0].remote_endpoint = b.endpoint.clone(),
        }
    }
    spans
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonV1Span {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    annotations: Vec<JsonV1Annotation>,
    #[serde(default)]
    binary_annotations: Vec<JsonV1Binary>,
    #[serde(default)]
    debug: Option<bool>,
}

#[derive(Deserialize)]
struct JsonV1Annotation {
    timestamp: u64,
    value: String,
    #[serde(default)]
    endpoint: Option<JsonEndpoint>,
}

#[derive(Deserialize)]
struct JsonV1Binary {
    key: String,
    value: serde_json::Value,
    #[serde(default)]
    endpoint: Option<JsonEndpoint>,
}

/// Reads a JSON list of v1 spans; spans with unreadable ids are reported.
pub fn decode_v1_json(body: &[u8]) -> Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError> {
    let raw: Vec<JsonV1Span> = serde_json::from_slice(body)?;
    let mut spans = Vec::new();
    let mut errors = Vec::new();
    for s in raw {
        let (trace_id, id, parent_id) = match json_ids(&s.trace_id, &s.id, s.parent_id.as_deref()) {
            Ok(ids) => ids,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        spans.extend(to_v2(V1Span {
            trace_id,
            id,
            parent_id,
            name: s.name.unwrap_or_default(),
            timestamp: s.timestamp,
            duration: s.duration,
            annotations: s
                .annotations
                .into_iter()
                .map(|a| V1Annotation {
                    timestamp: a.timestamp,
                    value: a.value,
                    endpoint: a.endpoint.map(JsonEndpoint::into_endpoint),
                })
                .collect(),
            binary_annotations: s
                .binary_annotations
                .into_iter()
                .map(|b| V1Binary {
                    key: b.key,
                    value: match b.value {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    },
                    endpoint: b.endpoint.map(JsonEndpoint::into_endpoint),
                })
                .collect(),
            debug: s.debug.unwrap_or(false),
        }));
    }
    Ok((spans, errors))
}

fn read_endpoint<'a, R: Reader<'a>>(r: &mut R) -> Result<Endpoint, ThriftError> {
    let mut e = Endpoint::default();
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I32) => {
                e.ipv4 =
                    Some(Ipv4Addr::from(r.read_i32()? as u32)).filter(|ip| !ip.is_unspecified())
            }
            (2, TType::I16) => e.port = Some(r.read_i16()? as u16).filter(|p| *p != 0),
            (3, TType::Binary) => {
                e.service_name = Some(r.read_string()?.to_string()).filter(|s| !s.is_empty())
            }
            (4, TType::Binary) => {
                e.ipv6 = <[u8; 16]>::try_from(r.read_binary()?)
                    .ok()
                    .map(Ipv6Addr::from)
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(e)
}

fn binary_value(bytes: &[u8], kind: i32) -> Result<String, ThriftError> {
    let fixed = |n: usize| -> Result<&[u8], ThriftError> {
        bytes
            .get(..n)
            .filter(|_| bytes.len() == n)
            .ok_or_else(|| unexpected("binary annotation length", bytes.len()))
    };
    Ok(match kind {
        0 => (bytes.first().copied().unwrap_or(0) != 0).to_string(),
        1 => base64::engine::general_purpose::STANDARD.encode(bytes),
        2 => i16::from_be_bytes(fixed(2)?.try_into().expect("2 bytes")).to_string(),
        3 => i32::from_be_bytes(fixed(4)?.try_into().expect("4 bytes")).to_string(),
        4 => i64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes")).to_string(),
        5 => f64::from_bits(u64::from_be_bytes(fixed(8)?.try_into().expect("8 bytes"))).to_string(),
        6 => String::from_utf8_lossy(bytes).into_owned(),
        other => return Err(unexpected("binary annotation type", other)),
    })
}

fn read_v1_span<'a, R: Reader<'a>>(r: &mut R) -> Result<V1Span, ThriftError> {
    let (mut low, mut high) = (0i64, 0i64);
    let mut s = V1Span {
        trace_id: TraceId(0),
        id: SpanId(0),
        parent_id: None,
        name: String::new(),
        timestamp: None,
        duration: None,
        annotations: Vec::new(),
        binary_annotations: Vec::new(),
        debug: false,
    };
    read_struct(r, |r, t, id| {
        match (id, t) {
            (1, TType::I64) => low = r.read_i64()?,
            (3, TType::Binary) => s.name = r.read_string()?.to_string(),
            (4, TType::I64) => s.id = SpanId(r.read_i64()? as u64),
            (5, TType::I64) => {
                s.parent_id = Some(SpanId(r.read_i64()? as u64)).filter(|p| !p.is_zero())
            }
            (6, TType::List) => {
                s.annotations = read_list(r, TType::Struct, |r| {
                    let mut a = V1Annotation {
                        timestamp: 0,
                        value: String::new(),
                        endpoint: None,
                    };
                    read_struct(r, |r, t, id| {
                        match (id, t) {
                            (1, TType::I64) => a.timestamp = r.read_i64()?.max(0) as u64,
                            (2, TType::Binary) => a.value = r.read_string()?.to_string(),
                            (3, TType::Struct) => a.endpoint = Some(read_endpoint(r)?),
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    Ok(a)
                })?
            }
            (8, TType::List) => {
                s.binary_annotations = read_list(r, TType::Struct, |r| {
                    let (mut key, mut value, mut kind, mut endpoint) =
                        (String::new(), Vec::new(), 6, None);
                    read_struct(r, |r, t, id| {
                        match (id, t) {
                            (1, TType::Binary) => key = r.read_string()?.to_string(),
                            (2, TType::Binary) => value = r.read_binary()?.to_vec(),
                            (3, TType::I32) => kind = r.read_i32()?,
                            (4, TType::Struct) => endpoint = Some(read_endpoint(r)?),
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    Ok(V1Binary {
                        key,
                        value: binary_value(&value, kind)?,
                        endpoint,
                    })
                })?
            }
            (9, TType::Bool) => s.debug = r.read_bool()?,
            (10, TType::I64) => s.timestamp = Some(r.read_i64()?.max(0) as u64),
            (11, TType::I64) => s.duration = Some(r.read_i64()?.max(0) as u64),
            (12, TType::I64) => high = r.read_i64()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    s.trace_id = TraceId::new(high as u64, low as u64);
    Ok(s)
}

fn thrift_spans(v1: Vec<V1Span>) -> (Vec<ZipkinSpan>, Vec<String>) {
    let mut spans = Vec::new();
    let mut errors = Vec::new();
    for s in v1 {
        if s.trace_id.is_zero() {
            errors.push(format!("span {}: trace id is zero", s.id));
        } else {
            spans.extend(to_v2(s));
        }
    }
    (spans, errors)
}

/// Reads a Thrift binary `list<Span>`, the body of `POST /api/v1/spans`.
pub fn decode_v1_thrift(body: &[u8]) -> Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError> {
    let v1 = read_list(&mut BinaryReader::new(body), TType::Struct, read_v1_span)?;
    Ok(thrift_spans(v1))
}

/// Decodes one agent datagram: an `Agent.emitZipkinBatch` call in Thrift compact.
pub fn decode_emit_zipkin_batch(
    datagram: &[u8],
) -> Result<(Vec<ZipkinSpan>, Vec<String>), ZipkinError> {
    let mut r = CompactReader::new(datagram);
    let header = r.read_message_begin()?;
    if header.name != "emitZipkinBatch" {
        return Err(unexpected("method", header.name).into());
    }
    let mut v1 = None;
    read_struct(&mut r, |r, t, id| {
        if (id, t) == (1, TType::List) {
            v1 = Some(read_list(r, TType::Struct, read_v1_span)?);
            return Ok(true);
        }
        Ok(false)
    })?;
    let v1 = v1.ok_or_else(|| unexpected("emitZipkinBatch", "no spans argument"))?;
    Ok(thrift_spans(v1))
}
