//! Jaeger api_v3, Jaeger v2's query API: stored traces as OTLP, trace
//! summaries for search results, and the gRPC `jaeger.api_v3.QueryService`.
//! The HTTP routes under `/api/v3/` (http/api_v3.rs) answer from the same
//! functions.
use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use futures::{Stream, StreamExt};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use spoor_model::{RefType, Span, Trace, TraceId, Value};
use spoor_proto::api_v3::query_service_server::QueryService;
use spoor_proto::api_v3::{
    DependenciesResponse, Dependency, FindTraceSummariesRequest, FindTraceSummariesResponse,
    FindTracesRequest, GetDependenciesRequest, GetOperationsRequest, GetOperationsResponse,
    GetServicesRequest, GetServicesResponse, GetTraceRequest, Operation, ServiceSummary,
    TraceQueryParameters, TraceSummary,
};
use spoor_proto::system_time_from_proto;
use spoor_storage::{DependencyReader, OperationQuery, SpanReader, TraceQuery};
use tonic::{Request, Response, Status};

use crate::grpc::{span_kind_param, storage_status};
use crate::read::found_traces;
use spoor_model::time::unix_nanos;

/// Spans per streamed `TracesData`: a large trace goes in several, which
/// clients join by trace id (as Jaeger's own do).
pub(crate) const SPANS_PER_CHUNK: usize = 1_000;
/// Summaries per streamed `FindTraceSummariesResponse`.
const SUMMARIES_PER_CHUNK: usize = 20;

/// A trace id as api_v3 takes it: hex, or base64 (standard or URL-safe,
/// padded or not) of its bytes, as Jaeger accepts.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    let hex = match text.parse::<TraceId>() {
        Ok(id) => return Ok(id),
        Err(e) => e.to_string(),
    };
    if text.len() <= 24 {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        for engine in [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(text) {
                return TraceId::from_slice(&bytes).map_err(|e| e.to_string());
            }
        }
    }
    Err(hex)
}

/// OTLP's parent of a span: its first CHILD_OF reference into its trace
/// (what `spoor_codec::otlp` writes as `parentSpanId`).
fn parent(span: &Span) -> Option<spoor_model::SpanId> {
    span.references
        .iter()
        .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id)
        .map(|r| r.span_id)
}

/// OTel status ERROR, or Jaeger's `error=true` (which is how the status
/// arrives from Jaeger clients, and how OTLP's is stored).
fn is_error(span: &Span) -> bool {
    span.is_error()
        || matches!(span.tag(spoor_codec::otlp::STATUS_CODE_TAG), Some(Value::String(s)) if s == "ERROR")
}

/// What a search result row shows of `trace`, computed as Jaeger does: the
/// root is the earliest span without a parent, an orphan a span whose parent
/// is not in the trace, services sorted by name.
pub fn summary(trace: &Trace) -> TraceSummary {
    let ids: HashSet<spoor_model::SpanId> = trace.spans.iter().map(|s| s.span_id).collect();
    let mut services: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    let mut root: Option<&Span> = None;
    let (mut errors, mut orphans) = (0, 0);
    let (mut min_start, mut max_end) = (None::<SystemTime>, None::<SystemTime>);
    for span in &trace.spans {
        let error = is_error(span);
        let service = services.entry(&span.process.service_name).or_default();
        service.0 += 1;
        if error {
            service.1 += 1;
            errors += 1;
        }
        min_start = Some(min_start.map_or(span.start_time, |t| t.min(span.start_time)));
        max_end = Some(max_end.map_or(span.end_time(), |t| t.max(span.end_time())));
        match parent(span) {
            None => {
                if root.is_none_or(|r| span.start_time < r.start_time) {
                    root = Some(span);
                }
            }
            Some(p) if !ids.contains(&p) => orphans += 1,
            Some(_) => {}
        }
    }
    TraceSummary {
        // 32 hex digits, as OTLP writes trace ids
        trace_id: trace
            .spans
            .first()
            .map(|s| format!("{:032x}", s.trace_id.0))
            .unwrap_or_default(),
        root_service_name: root
            .map(|r| r.process.service_name.clone())
            .unwrap_or_default(),
        root_operation_name: root.map(|r| r.operation_name.clone()).unwrap_or_default(),
        min_start_time_unix_nano: min_start.map(unix_nanos).unwrap_or(0),
        max_end_time_unix_nano: max_end.map(unix_nanos).unwrap_or(0),
        span_count: trace.spans.len() as i32,
        error_span_count: errors,
        orphan_span_count: orphans,
        services: services
            .into_iter()
            .map(|(name, (spans, errors))| ServiceSummary {
                name: name.to_string(),
                span_count: spans,
                error_span_count: errors,
            })
            .collect(),
    }
}

/// `trace` as OTLP, in pieces of at most [`SPANS_PER_CHUNK`] spans.
pub fn traces_data(trace: &Trace) -> impl Iterator<Item = TracesData> + '_ {
    trace.spans.chunks(SPANS_PER_CHUNK).map(|spans| TracesData {
        resource_spans: spoor_codec::otlp::spans_to_otlp(spans),
    })
}

/// A gRPC search's query; Jaeger's checks and defaults.
fn query_from_proto(p: Option<TraceQueryParameters>) -> Result<TraceQuery, Status> {
    let p = p.ok_or_else(|| Status::invalid_argument("missing query"))?;
    let (Some(min), Some(max)) = (p.start_time_min, p.start_time_max) else {
        return Err(Status::invalid_argument(
            "start time min and max are required parameters",
        ));
    };
    let duration = |d: Option<prost_types::Duration>| {
        d.filter(|d| d.seconds >= 0 && d.nanos >= 0)
            .map(|d| Duration::new(d.seconds as u64, d.nanos as u32))
            .filter(|d| !d.is_zero())
    };
    Ok(TraceQuery {
        service_name: p.service_name,
        operation_name: Some(p.operation_name).filter(|o| !o.is_empty()),
        tags: p.attributes.into_iter().collect(),
        start_time_min: system_time_from_proto(Some(&min)),
        start_time_max: system_time_from_proto(Some(&max)),
        duration_min: duration(p.duration_min),
        duration_max: duration(p.duration_max),
        num_traces: match p.search_depth {
            n if n <= 0 => spoor_query_params::API_V3_SEARCH_DEPTH,
            n => (n as usize).min(spoor_query_params::MAX_SEARCH_LIMIT),
        },
    })
}

type Chunks<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub struct GrpcQueryV3 {
    pub reader: Arc<dyn SpanReader>,
    pub dependencies: Arc<dyn DependencyReader>,
}

impl GrpcQueryV3 {
    /// The ids of the traces a search's parameters find.
    async fn find_ids(&self, query: Option<TraceQueryParameters>) -> Result<Vec<TraceId>, Status> {
        let query = query_from_proto(query)?;
        self.reader
            .find_trace_ids(&query)
            .await
            .map_err(storage_status)
    }
}

#[tonic::async_trait]
impl QueryService for GrpcQueryV3 {
    type GetTraceStream = Chunks<TracesData>;
    type FindTracesStream = Chunks<TracesData>;
    type FindTraceSummariesStream = Chunks<FindTraceSummariesResponse>;

    async fn get_trace(
        &self,
        request: Request<GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let id = parse_trace_id(&request.into_inner().trace_id)
            .map_err(|e| Status::invalid_argument(format!("malformed trace ID: {e}")))?;
        match self.reader.get_trace(id).await.map_err(storage_status)? {
            Some(trace) => {
                let chunks: Vec<_> = traces_data(&trace).map(Ok).collect();
                Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
            }
            None => Err(Status::not_found("trace not found")),
        }
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let ids = self.find_ids(request.into_inner().query).await?;
        let chunks = found_traces(Arc::clone(&self.reader), ids).flat_map(|found| match found {
            Ok(trace) => {
                let chunks: Vec<_> = traces_data(&trace).map(Ok).collect();
                futures::stream::iter(chunks)
            }
            Err(e) => futures::stream::iter(vec![Err(storage_status(e))]),
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn find_trace_summaries(
        &self,
        request: Request<FindTraceSummariesRequest>,
    ) -> Result<Response<Self::FindTraceSummariesStream>, Status> {
        let ids = self.find_ids(request.into_inner().query).await?;
        let chunks = found_traces(Arc::clone(&self.reader), ids)
            .map(|found| found.map(|t| summary(&t)).map_err(storage_status))
            .chunks(SUMMARIES_PER_CHUNK)
            .map(|chunk| {
                chunk
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map(|summaries| FindTraceSummariesResponse { summaries })
            });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn get_services(
        &self,
        _request: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        let services = self.reader.get_services().await.map_err(storage_status)?;
        Ok(Response::new(GetServicesResponse { services }))
    }

    async fn get_operations(
        &self,
        request: Request<GetOperationsRequest>,
    ) -> Result<Response<GetOperationsResponse>, Status> {
        let r = request.into_inner();
        let span_kind = span_kind_param(&r.span_kind)?;
        let operations = self
            .reader
            .get_operations(&OperationQuery {
                service_name: r.service,
                span_kind,
            })
            .await
            .map_err(storage_status)?
            .into_iter()
            .map(|o| Operation {
                name: o.name,
                span_kind: o.span_kind.as_str().to_string(),
            })
            .collect();
        Ok(Response::new(GetOperationsResponse { operations }))
    }

    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<DependenciesResponse>, Status> {
        let r = request.into_inner();
        let (Some(start), Some(end)) = (r.start_time, r.end_time) else {
            return Err(Status::invalid_argument(
                "start_time and end_time are required",
            ));
        };
        let (start, end) = (
            system_time_from_proto(Some(&start)),
            system_time_from_proto(Some(&end)),
        );
        let lookback = end
            .duration_since(start)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Status::invalid_argument("end_time must be after start_time"))?;
        if lookback > spoor_query_params::MAX_DEPENDENCY_LOOKBACK {
            return Err(Status::invalid_argument(format!(
                "the window may be at most {} days",
                spoor_query_params::MAX_DEPENDENCY_LOOKBACK.as_secs() / 86_400
            )));
        }
        let links = self
            .dependencies
            .get_dependencies(end, lookback)
            .await
            .map_err(storage_status)?;
        Ok(Response::new(DependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| Dependency {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                })
                .collect(),
        }))
    }
}
