//! `POST /api/transform`, Jaeger's endpoint for opening OTLP files: OTLP
//! JSON in (one `TracesData` object, or one per line as the OpenTelemetry
//! file exporter writes them), the UI's JSON traces out. The mapping is the
//! collector's own (`spoor_codec::otlp`), so a file shows what the same
//! spans sent to the collector would.
use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use spoor_model::{Span, Trace, TraceId};

use super::{ApiError, ApiResult, ApiState, EnvelopeError, ok};
use crate::uimodel::ui_trace;

/// The largest file the endpoint takes.
pub const MAX_BODY_BYTES: usize = 32 << 20;

pub fn route() -> MethodRouter<ApiState> {
    post(transform).layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The resource spans of `body`: one OTLP JSON object, or JSON lines.
fn parse(body: &[u8]) -> Result<Vec<ExportTraceServiceRequest>, String> {
    match serde_json::from_slice::<ExportTraceServiceRequest>(body) {
        Ok(one) => Ok(vec![one]),
        Err(whole) => {
            let lines: Vec<&[u8]> = body
                .split(|b| *b == b'\n')
                .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
                .collect();
            if lines.len() < 2 {
                return Err(format!("not OTLP JSON: {whole}"));
            }
            lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    serde_json::from_slice(line)
                        .map_err(|e| format!("line {}: not OTLP JSON: {e}", i + 1))
                })
                .collect()
        }
    }
}

async fn transform(body: Bytes) -> ApiResult {
    let requests = parse(&body).map_err(ApiError::BadRequest)?;
    let mut traces: Vec<Vec<Span>> = Vec::new();
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut errors = Vec::new();
    for request in requests {
        let (spans, failed) = spoor_codec::otlp::spans_from_otlp(request.resource_spans)
            .map_err(|e| ApiError::BadRequest(format!("not OTLP: {e}")))?;
        errors.extend(failed.into_iter().map(|e| EnvelopeError {
            code: 400,
            msg: e.to_string(),
            trace_id: None,
        }));
        for span in spans {
            let i = *index.entry(span.trace_id).or_insert_with(|| {
                traces.push(Vec::new());
                traces.len() - 1
            });
            traces[i].push(span);
        }
    }
    let traces = traces
        .into_iter()
        .map(|spans| {
            ui_trace(&Trace {
                spans,
                warnings: vec![],
            })
        })
        .collect();
    Ok(ok(traces, errors))
}
