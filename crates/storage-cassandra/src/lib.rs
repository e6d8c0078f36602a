//! Cassandra / ScyllaDB backend on Jaeger's v004 keyspace.
//!
//! A span is one `traces` row keyed by (trace id, span id, span hash) plus
//! index rows: `service_name_index` (10 buckets), `service_operation_index`,
//! `duration_index` by hour, `tag_index` per indexed tag, and the
//! `service_names` / `operation_names_v2` lists (each written once per
//! process). Searches read trace ids from the index the query calls for
//! (see `query::plan`) and then the traces. Dependencies are read from
//! `dependencies_v2`, where a dependencies job writes them.
//!
//! `statements` prepares every CQL statement once, `connection` opens the
//! session and creates the schema, `write` and `read` are the two halves of
//! the store, `query` plans a search and `rows` maps spans to rows.
mod connection;
pub mod options;
pub mod query;
mod read;
pub mod rows;
mod sampling;
pub mod schema;
mod statements;
mod write;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::Consistency;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use spoor_model::{DependencyLink, KeyValue, Span, Trace, TraceId, Value};
use spoor_storage::{
    DependencyCounter, DependencyReader, DependencyWriter, Operation, OperationQuery, SpanReader,
    SpanWriter, StorageError, TraceQuery, dedupe_spans, span_matches,
};

pub use options::{CassandraArchiveOptions, CassandraOptions, ConsistencyLevel, DurationIndex};
pub use sampling::CassandraSamplingStore;

use query::{INDEX_ROWS_PER_TRACE, Plan, SERVICE_BUCKETS};
use rows::{DependencyUdt, SPAN_COLUMNS, SpanRow, trace_id_bytes};

/// Tag values longer than this are not indexed (they are still stored).
const MAX_INDEXED_VALUE: usize = 256;
/// Rows remembered as written before the cache starts over.
const WRITE_CACHE_LIMIT: usize = 100_000;
/// Index rows written at once per batch of spans.
const WRITE_CONCURRENCY: usize = 64;

fn backend(context: &str, e: impl Into<spoor_storage::BoxError>) -> StorageError {
    StorageError::backend(format!("cassandra: {context}"), e)
}

/// A request that did not get an answer: worth retrying.
fn unavailable(context: &str, e: impl Into<spoor_storage::BoxError>) -> StorageError {
    StorageError::unavailable(format!("cassandra: {context}"), e)
}

pub use connection::{connect, create_schema};
use statements::Statements;

pub struct CassandraStore {
    session: std::sync::Arc<Session>,
    statements: Statements,
    options: CassandraOptions,
    /// Service and operation rows already written by this process.
    written: Mutex<HashSet<(String, String, String)>>,
}

impl CassandraStore {
    pub async fn open(options: &CassandraOptions) -> Result<CassandraStore, StorageError> {
        schema::validate_keyspace(&options.keyspace)
            .map_err(|e| StorageError::backend("cassandra options", e))?;
        let session = connect(options).await?;
        if options.schema_create {
            create_schema(&session, options).await?;
        }
        let statements = Statements::prepare(&session, &options.keyspace).await?;
        Ok(CassandraStore {
            session: std::sync::Arc::new(session),
            statements,
            options: options.clone(),
            written: Mutex::new(HashSet::new()),
        })
    }

    /// A sampling store on the same session and keyspace.
    pub async fn sampling_store(&self) -> Result<CassandraSamplingStore, StorageError> {
        CassandraSamplingStore::new(std::sync::Arc::clone(&self.session), &self.options.keyspace)
            .await
    }
}

fn day_bucket(t: SystemTime) -> CqlTimestamp {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CqlTimestamp(((secs - secs % 86_400) * 1000) as i64)
}
