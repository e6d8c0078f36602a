use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use spoor_model::{DependencyLink, Span, Trace, TraceId};

use crate::{Operation, OperationQuery, StorageError, TraceQuery};

/// Accepts spans for storage.
///
/// Implementations are shared behind `Arc<dyn SpanWriter>` and called from many
/// tasks at once; they must not hold a lock across the whole call.
#[async_trait]
pub trait SpanWriter: Send + Sync + 'static {
    /// Stores `spans`, which may belong to many traces and arrive in any order.
    ///
    /// On `Ok` every span is durable to the backend's own standard (for the
    /// memory store: visible to readers; it may be evicted later under its
    /// bounds). On `Err` some spans may have been stored and the caller may
    /// retry the whole batch: writes are idempotent up to duplicate spans, which
    /// readers collapse. Spans with the same span id but different content are
    /// all kept (Zipkin's shared client/server spans).
    /// [`StorageError::SpansRefused`] says the others were stored and these
    /// never will be: the caller reports them and does not retry.
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError>;
}

/// Reads spans back.
///
/// All methods may run concurrently with each other and with writes; a read
/// sees each write either entirely or (for a multi-trace batch) per trace.
#[async_trait]
pub trait SpanReader: Send + Sync + 'static {
    /// Every stored span of the trace, in no guaranteed order, exact duplicates
    /// removed. `Ok(None)` when no span of the trace is stored.
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError>;

    /// Names of all services that have stored spans, sorted, without repeats.
    /// Empty when nothing is stored.
    async fn get_services(&self) -> Result<Vec<String>, StorageError>;

    /// Operations of one service, sorted by name then kind. With
    /// `span_kind: Some(k)` only operations seen with kind `k` (from the
    /// `span.kind` tag); with `None` every (name, kind) pair seen. Empty for an
    /// unknown service.
    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError>;

    /// Traces with at least one span matching the query (see [`TraceQuery`]),
    /// each complete, newest first by trace start time, at most
    /// `query.num_traces` of them.
    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError>;

    /// The ids of exactly the traces `find_traces` would return, in the same order.
    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError>;
}

/// Reads the service dependency graph.
/// Stores dependency links computed by a batch job for a time window, for
/// backends that do not compute them from spans (Cassandra, Elasticsearch).
#[async_trait]
pub trait DependencyWriter: Send + Sync + 'static {
    async fn write_dependencies(
        &self,
        at: SystemTime,
        links: &[DependencyLink],
    ) -> Result<(), StorageError>;
}

#[async_trait]
pub trait DependencyReader: Send + Sync + 'static {
    /// Call counts between services for spans that started within
    /// `[end_time - lookback, end_time]`, one link per (parent, child) pair,
    /// sorted by parent then child. Empty when there were no calls.
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError>;
}
