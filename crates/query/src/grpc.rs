//! Jaeger api_v2 QueryService over gRPC. Traces stream back in chunks of a
//! few spans, as Jaeger sends them.
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use spoor_model::{SpanKind, Trace, TraceId};
use spoor_proto::api_v2::query_service_server::QueryService;
use spoor_proto::api_v2::{
    ArchiveTraceRequest, ArchiveTraceResponse, FindTracesRequest, GetDependenciesRequest,
    GetDependenciesResponse, GetOperationsRequest, GetOperationsResponse, GetServicesRequest,
    GetServicesResponse, GetTraceRequest, Operation, SpansResponseChunk,
};
use spoor_proto::{span_to_proto, system_time_from_proto};
use spoor_storage::{
    Archive, DependencyReader, OperationQuery, SpanReader, StorageError, TraceQuery,
};
use tonic::{Request, Response, Status};

/// Spans per streamed chunk, as in Jaeger.
const SPANS_PER_CHUNK: usize = 10;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<SpansResponseChunk, Status>> + Send>>;

pub struct GrpcQuery {
    pub reader: Arc<dyn SpanReader>,
    pub dependencies: Arc<dyn DependencyReader>,
    pub archive: Option<Archive>,
}

pub(crate) fn storage_status(e: StorageError) -> Status {
    match e {
        StorageError::InvalidQuery(m) => Status::invalid_argument(m),
        e => {
            tracing::error!(error = %spoor_storage::Chain(&e), "storage read failed");
            Status::internal("storage read failed")
        }
    }
}

/// A trace's spans as chunks, each encoded only when the stream asks for it.
fn trace_chunks(trace: Trace) -> impl Stream<Item = Result<SpansResponseChunk, Status>> + Send {
    let mut spans = trace.spans.into_iter();
    futures::stream::iter(std::iter::from_fn(move || {
        let chunk: Vec<_> = spans
            .by_ref()
            .take(SPANS_PER_CHUNK)
            .map(|s| span_to_proto(&s))
            .collect();
        (!chunk.is_empty()).then_some(Ok(SpansResponseChunk { spans: chunk }))
    }))
}

/// The traces of `ids` as chunks, read a few at a time as the client takes
/// them, so a large answer never sits whole in memory.
fn found_chunks(reader: Arc<dyn SpanReader>, ids: Vec<TraceId>) -> ChunkStream {
    // traces evicted between search and read are left out, as find_traces does
    let traces = crate::read::found_traces(reader, ids).flat_map(|found| -> ChunkStream {
        match found {
            Ok(trace) => Box::pin(trace_chunks(trace)),
            Err(e) => Box::pin(futures::stream::iter([Err(storage_status(e))])),
        }
    });
    Box::pin(traces)
}

/// A gRPC request's span kind: empty for every kind.
pub(crate) fn span_kind_param(kind: &str) -> Result<Option<SpanKind>, Status> {
    match kind {
        "" => Ok(None),
        k => match SpanKind::parse(k) {
            SpanKind::Unspecified => {
                Err(Status::invalid_argument(format!("unknown span kind {k:?}")))
            }
            kind => Ok(Some(kind)),
        },
    }
}

fn duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    d.and_then(|d| {
        (d.seconds >= 0 && d.nanos >= 0).then(|| Duration::new(d.seconds as u64, d.nanos as u32))
    })
    .filter(|d| !d.is_zero())
}

#[tonic::async_trait]
impl QueryService for GrpcQuery {
    type GetTraceStream = ChunkStream;
    type FindTracesStream = ChunkStream;

    async fn get_trace(
        &self,
        request: Request<GetTraceRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let id = TraceId::from_slice(&request.into_inner().trace_id)
            .map_err(|e| Status::invalid_argument(format!("invalid trace id: {e}")))?;
        match self.reader.get_trace(id).await.map_err(storage_status)? {
            Some(trace) => Ok(Response::new(Box::pin(trace_chunks(trace)))),
            None => Err(Status::not_found("trace not found")),
        }
    }

    async fn archive_trace(
        &self,
        request: Request<ArchiveTraceRequest>,
    ) -> Result<Response<ArchiveTraceResponse>, Status> {
        let id = TraceId::from_slice(&request.into_inner().trace_id)
            .map_err(|e| Status::invalid_argument(format!("invalid trace id: {e}")))?;
        // Jaeger's answer when no archive storage is configured
        let archive = self
            .archive
            .as_ref()
            .ok_or_else(|| Status::unimplemented("archive span storage was not configured"))?;
        match archive.archive(self.reader.as_ref(), id).await {
            Ok(true) => Ok(Response::new(ArchiveTraceResponse {})),
            Ok(false) => Err(Status::not_found("trace not found")),
            Err(e) => Err(storage_status(e)),
        }
    }

    async fn find_traces(
        &self,
        request: Request<FindTracesRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let p = request
            .into_inner()
            .query
            .ok_or_else(|| Status::invalid_argument("missing query parameters"))?;
        let query = TraceQuery {
            service_name: p.service_name,
            operation_name: Some(p.operation_name).filter(|o| !o.is_empty()),
            tags: p.tags.into_iter().collect(),
            start_time_min: system_time_from_proto(p.start_time_min.as_ref()),
            start_time_max: match p.start_time_max {
                Some(t) => system_time_from_proto(Some(&t)),
                None => std::time::SystemTime::now(),
            },
            duration_min: duration(p.duration_min.as_ref()),
            duration_max: duration(p.duration_max.as_ref()),
            num_traces: p
                .search_depth
                .clamp(0, spoor_query_params::MAX_SEARCH_LIMIT as i32)
                as usize,
        };
        let ids = self
            .reader
            .find_trace_ids(&query)
            .await
            .map_err(storage_status)?;
        let reader = Arc::clone(&self.reader);
        Ok(Response::new(found_chunks(reader, ids)))
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
        let ops = self
            .reader
            .get_operations(&OperationQuery {
                service_name: r.service,
                span_kind,
            })
            .await
            .map_err(storage_status)?;
        let mut names: Vec<String> = ops.iter().map(|o| o.name.clone()).collect();
        names.dedup();
        Ok(Response::new(GetOperationsResponse {
            operation_names: names,
            operations: ops
                .into_iter()
                .map(|o| Operation {
                    name: o.name,
                    span_kind: o.span_kind.as_str().to_string(),
                })
                .collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let r = request.into_inner();
        let end = match r.end_time {
            Some(t) => system_time_from_proto(Some(&t)),
            None => std::time::SystemTime::now(),
        };
        let start = system_time_from_proto(r.start_time.as_ref());
        let lookback = end
            .duration_since(start)
            .map_err(|_| Status::invalid_argument("start time is after end time"))?;
        let links = self
            .dependencies
            .get_dependencies(end, lookback)
            .await
            .map_err(storage_status)?;
        Ok(Response::new(GetDependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| spoor_proto::api_v2::DependencyLink {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                    source: l.source,
                })
                .collect(),
        }))
    }
}
