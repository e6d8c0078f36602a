//! The archive: a second store that traces are copied to on request (the
//! UI's Archive button, `POST /api/archive/{id}`) and that the primary's
//! retention does not reach. Reads by trace id fall back to it, as Jaeger's
//! query service does.
use std::sync::Arc;

use async_trait::async_trait;
use spoor_model::{Trace, TraceId};

use crate::{Operation, OperationQuery, SpanReader, SpanWriter, StorageError, TraceQuery};

/// The archive store's two sides.
#[derive(Clone)]
pub struct Archive {
    pub writer: Arc<dyn SpanWriter>,
    pub reader: Arc<dyn SpanReader>,
}

impl Archive {
    /// An archive kept in one store that both writes and reads.
    pub fn of<S: SpanWriter + SpanReader>(store: Arc<S>) -> Archive {
        Archive {
            writer: store.clone(),
            reader: store,
        }
    }

    /// Copies trace `id` from `from` to the archive; `Ok(false)` when `from`
    /// has no span of it.
    pub async fn archive(&self, from: &dyn SpanReader, id: TraceId) -> Result<bool, StorageError> {
        match from.get_trace(id).await? {
            Some(trace) => {
                self.writer.write_spans(trace.spans).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A reader of the primary store whose lookups by trace id go on to the
/// archive when the primary has no span of the trace. Searches read the
/// primary only.
pub struct WithArchive {
    pub primary: Arc<dyn SpanReader>,
    pub archive: Arc<dyn SpanReader>,
}

#[async_trait]
impl SpanReader for WithArchive {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        match self.primary.get_trace(trace_id).await? {
            Some(trace) => Ok(Some(trace)),
            None => self.archive.get_trace(trace_id).await,
        }
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        self.primary.get_services().await
    }

    async fn get_operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        self.primary.get_operations(query).await
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        self.primary.find_traces(query).await
    }

    async fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        self.primary.find_trace_ids(query).await
    }
}
