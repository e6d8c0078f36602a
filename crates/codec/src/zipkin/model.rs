//! Zipkin's v2 span and its conversion to the model, with Jaeger's naming:
//! kind becomes `span.kind`, the remote endpoint `peer.service`, `peer.ipv4`,
//! `peer.ipv6` and `peer.port`, annotations become logs with an `event` field,
//! and an `error` tag becomes `error=true`.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use spoor_model::{
    KeyValue, Log, Process, RefType, SPAN_KIND_TAG, Span, SpanId, SpanRef, TraceId, Value,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    Server,
    Producer,
    Consumer,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Server => "server",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoint {
    pub service_name: Option<String>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ZipkinSpan {
    pub trace_id: TraceId,
    pub id: SpanId,
    pub parent_id: Option<SpanId>,
    pub name: String,
    pub kind: Option<Kind>,
    /// Microseconds since the epoch.
    pub timestamp: Option<u64>,
    /// Microseconds.
    pub duration: Option<u64>,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    /// (microseconds since the epoch, value)
    pub annotations: Vec<(u64, String)>,
    pub tags: BTreeMap<String, String>,
    pub debug: bool,
    pub shared: bool,
}

/// Jaeger's flags: sampled, and debug for debug spans.
const SAMPLED: u32 = 1;
const DEBUG: u32 = 2;

fn process(local: Option<&Endpoint>) -> Process {
    let mut tags = Vec::new();
    let service_name = local
        .and_then(|e| e.service_name.clone())
        .unwrap_or_default();
    if let Some(e) = local {
        if let Some(ip) = e.ipv4 {
            tags.push(KeyValue::string("ip", ip.to_string()));
        }
        if let Some(ip) = e.ipv6 {
            tags.push(KeyValue::string("ipv6", ip.to_string()));
        }
    }
    Process { service_name, tags }
}

/// Converts spans, sharing one process among spans with the same local endpoint.
pub fn to_model(spans: Vec<ZipkinSpan>) -> Vec<Span> {
    let mut processes: Vec<(Option<Endpoint>, Arc<Process>)> = Vec::new();
    spans
        .into_iter()
        .map(|z| {
            let process = match processes.iter().find(|(e, _)| *e == z.local_endpoint) {
                Some((_, p)) => Arc::clone(p),
                None => {
                    let p = Arc::new(process(z.local_endpoint.as_ref()));
                    processes.push((z.local_endpoint.clone(), Arc::clone(&p)));
                    p
                }
            };
            span(z, process)
        })
        .collect()
}

fn span(z: ZipkinSpan, process: Arc<Process>) -> Span {
    let mut tags = Vec::with_capacity(z.tags.len() + 5);
    for (k, v) in z.tags {
        if k == "error" {
            if v != "false" {
                tags.push(KeyValue::new("error", Value::Bool(true)));
                // as Jaeger's OTel-based Zipkin receiver marks it
                tags.push(KeyValue::string("otel.status_code", "ERROR"));
                if !v.is_empty() && v != "true" {
                    tags.push(KeyValue::string("error.message", v));
                }
            }
        } else {
            tags.push(KeyValue::string(k, v));
        }
    }
    if let Some(kind) = z.kind {
        tags.push(KeyValue::string(SPAN_KIND_TAG, kind.as_str()));
    }
    if let Some(remote) = z.remote_endpoint {
        if let Some(s) = remote.service_name {
            tags.push(KeyValue::string("peer.service", s));
        }
        if let Some(ip) = remote.ipv4 {
            tags.push(KeyValue::new(
                "peer.ipv4",
                Value::Int64(u32::from(ip) as i64),
            ));
        }
        if let Some(ip) = remote.ipv6 {
            tags.push(KeyValue::string("peer.ipv6", ip.to_string()));
        }
        if let Some(port) = remote.port {
            tags.push(KeyValue::new("peer.port", Value::Int64(port as i64)));
        }
    }
    Span {
        trace_id: z.trace_id,
        span_id: z.id,
        operation_name: z.name,
        references: z
            .parent_id
            .filter(|p| !p.is_zero())
            .map(|p| SpanRef {
                trace_id: z.trace_id,
                span_id: p,
                ref_type: RefType::ChildOf,
            })
            .into_iter()
            .collect(),
        flags: if z.debug { SAMPLED | DEBUG } else { SAMPLED },
        start_time: UNIX_EPOCH + Duration::from_micros(z.timestamp.unwrap_or(0)),
        duration: Duration::from_micros(z.duration.unwrap_or(0)),
        tags,
        logs: z
            .annotations
            .into_iter()
            .map(|(ts, value)| Log {
                timestamp: UNIX_EPOCH + Duration::from_micros(ts),
                fields: vec![KeyValue::string("event", value)],
            })
            .collect(),
        process,
        warnings: vec![],
    }
}
