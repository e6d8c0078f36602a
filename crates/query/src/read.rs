//! Reading the traces a search found, a few at a time as the answer is
//! sent, so a large answer never sits whole in memory: one implementation
//! for every API that streams traces.
use std::sync::Arc;

use futures::{Stream, StreamExt};
use spoor_model::{Trace, TraceId};
use spoor_storage::{SpanReader, StorageError};

/// Traces read at once while streaming an answer.
const TRACES_IN_FLIGHT: usize = 4;

/// Each of `ids` with what the store has of it, in order.
pub fn traces_of(
    reader: Arc<dyn SpanReader>,
    ids: Vec<TraceId>,
) -> impl Stream<Item = (TraceId, Result<Option<Trace>, StorageError>)> + Send {
    futures::stream::iter(ids)
        .map(move |id| {
            let reader = Arc::clone(&reader);
            async move { (id, reader.get_trace(id).await) }
        })
        .buffered(TRACES_IN_FLIGHT)
}

/// The traces of `ids`; those gone since the search (evicted) are left out.
pub fn found_traces(
    reader: Arc<dyn SpanReader>,
    ids: Vec<TraceId>,
) -> impl Stream<Item = Result<Trace, StorageError>> + Send {
    traces_of(reader, ids).filter_map(|(_, found)| async move { found.transpose() })
}
