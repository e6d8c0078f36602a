//! Cassandra / ScyllaDB backend on Jaeger's v004 keyspace.
//!
//! A span is one `traces` row keyed by (trace id, span id, span hash) plus
//! index rows: `service_name_index` (10 buckets), `service_operation_index`,
//! `duration_index` by hour, `tag_index` per indexed tag, and the
//! `service_names` / `operation_names_v2` lists (each written once per
//! process). Searches read trace ids from the index the query calls for
//! (see `query::plan`) and then the traces. Dependencies are read from
//! `dependencies_v2`, where a dependencies job writes them.
pub mod options;
pub mod query;
pub mod rows;
mod sampling;
pub mod schema;

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

pub use options::{CassandraOptions, ConsistencyLevel, DurationIndex};
pub use sampling::CassandraSamplingStore;

use query::{INDEX_ROWS_PER_TRACE, Plan, SERVICE_BUCKETS};
use rows::{DependencyUdt, SPAN_COLUMNS, SpanRow, micros, trace_id_bytes};

/// Tag values longer than this are not indexed (they are still stored).
const MAX_INDEXED_VALUE: usize = 256;
/// Rows remembered as written before the cache starts over.
const WRITE_CACHE_LIMIT: usize = 100_000;
/// Index rows written at once per batch of spans.
const WRITE_CONCURRENCY: usize = 64;

fn backend(context: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("cassandra: {context}: {e}"))
}

/// A request that did not get an answer: worth retrying.
fn unavailable(context: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("cassandra: {context}: {e}"))
}

struct Statements {
    insert_span: PreparedStatement,
    insert_service: PreparedStatement,
    insert_operation: PreparedStatement,
    insert_service_index: PreparedStatement,
    insert_operation_index: PreparedStatement,
    insert_duration: PreparedStatement,
    insert_tag: PreparedStatement,
    insert_dependencies: PreparedStatement,
    select_trace: PreparedStatement,
    select_services: PreparedStatement,
    select_operations: PreparedStatement,
    select_operations_by_kind: PreparedStatement,
    by_service: PreparedStatement,
    by_operation: PreparedStatement,
    by_tag: PreparedStatement,
    by_duration: PreparedStatement,
    select_dependencies: PreparedStatement,
}

impl Statements {
    async fn prepare(s: &Session, ks: &str) -> Result<Statements, StorageError> {
        let p = |cql: String| async move {
            s.prepare(cql.clone())
                .await
                .map_err(|e| backend(&format!("preparing {cql}"), e))
        };
        let range = "start_time >= ? AND start_time <= ?";
        Ok(Statements {
            insert_span: p(format!(
                "INSERT INTO {ks}.traces ({SPAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_service: p(format!("INSERT INTO {ks}.service_names (service_name) VALUES (?)")).await?,
            insert_operation: p(format!(
                "INSERT INTO {ks}.operation_names_v2 (service_name, span_kind, operation_name) VALUES (?, ?, ?)"
            ))
            .await?,
            insert_service_index: p(format!(
                "INSERT INTO {ks}.service_name_index (service_name, bucket, start_time, trace_id) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            insert_operation_index: p(format!(
                "INSERT INTO {ks}.service_operation_index (service_name, operation_name, start_time, trace_id) \
                 VALUES (?, ?, ?, ?)"
            ))
            .await?,
            insert_duration: p(format!(
                "INSERT INTO {ks}.duration_index (service_name, operation_name, bucket, duration, start_time, trace_id) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_tag: p(format!(
                "INSERT INTO {ks}.tag_index (service_name, tag_key, tag_value, start_time, trace_id, span_id) \
                 VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            insert_dependencies: p(format!(
                "INSERT INTO {ks}.dependencies_v2 (ts_bucket, ts, dependencies) VALUES (?, ?, ?)"
            ))
            .await?,
            select_trace: p(format!("SELECT {SPAN_COLUMNS} FROM {ks}.traces WHERE trace_id = ?")).await?,
            select_services: p(format!("SELECT service_name FROM {ks}.service_names")).await?,
            select_operations: p(format!(
                "SELECT span_kind, operation_name FROM {ks}.operation_names_v2 WHERE service_name = ?"
            ))
            .await?,
            select_operations_by_kind: p(format!(
                "SELECT span_kind, operation_name FROM {ks}.operation_names_v2 WHERE service_name = ? AND span_kind = ?"
            ))
            .await?,
            by_service: p(format!(
                "SELECT start_time, trace_id FROM {ks}.service_name_index \
                 WHERE service_name = ? AND bucket = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_operation: p(format!(
                "SELECT start_time, trace_id FROM {ks}.service_operation_index \
                 WHERE service_name = ? AND operation_name = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_tag: p(format!(
                "SELECT start_time, trace_id FROM {ks}.tag_index \
                 WHERE service_name = ? AND tag_key = ? AND tag_value = ? AND {range} LIMIT ?"
            ))
            .await?,
            by_duration: p(format!(
                "SELECT start_time, trace_id FROM {ks}.duration_index \
                 WHERE service_name = ? AND operation_name = ? AND bucket = ? AND duration >= ? AND duration <= ? LIMIT ?"
            ))
            .await?,
            select_dependencies: p(format!(
                "SELECT ts, dependencies FROM {ks}.dependencies_v2 WHERE ts_bucket = ? AND ts >= ? AND ts <= ?"
            ))
            .await?,
        })
    }
}

pub struct CassandraStore {
    session: std::sync::Arc<Session>,
    statements: Statements,
    options: CassandraOptions,
    /// Service and operation rows already written by this process.
    written: Mutex<HashSet<(String, String, String)>>,
}

/// Opens a session with the options' contact points, credentials, TLS,
/// consistency and token-aware, datacenter-aware load balancing.
pub async fn connect(o: &CassandraOptions) -> Result<Session, StorageError> {
    let consistency = match o.consistency {
        ConsistencyLevel::Any => Consistency::Any,
        ConsistencyLevel::One => Consistency::One,
        ConsistencyLevel::Two => Consistency::Two,
        ConsistencyLevel::Three => Consistency::Three,
        ConsistencyLevel::Quorum => Consistency::Quorum,
        ConsistencyLevel::All => Consistency::All,
        ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
        ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
        ConsistencyLevel::LocalOne => Consistency::LocalOne,
    };
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if !o.local_dc.is_empty() {
        policy = policy.prefer_datacenter(o.local_dc.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(consistency)
        .request_timeout((!o.timeout.is_zero()).then_some(o.timeout))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(o.contact_points())
        .default_execution_profile_handle(profile.into_handle());
    if !o.username.is_empty() {
        builder = builder.user(o.username.clone(), o.password.clone());
    }
    if o.tls_enabled {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut tls = SslConnector::builder(SslMethod::tls()).map_err(|e| backend("TLS", e))?;
        if let Some(ca) = &o.tls_ca {
            tls.set_ca_file(ca)
                .map_err(|e| backend(&format!("CA file {}", ca.display()), e))?;
        }
        tls.set_verify(if o.tls_skip_host_verify {
            SslVerifyMode::NONE
        } else {
            SslVerifyMode::PEER
        });
        builder = builder.tls_context(Some(tls));
    }
    builder
        .build()
        .await
        .map_err(|e| backend(&format!("connecting to {:?}", o.servers), e))
}

/// Creates the keyspace and tables when missing.
pub async fn create_schema(session: &Session, o: &CassandraOptions) -> Result<(), StorageError> {
    let params = o.schema().map_err(StorageError::InvalidQuery)?;
    for statement in schema::statements(&params).map_err(StorageError::InvalidQuery)? {
        session
            .query_unpaged(statement.clone(), ())
            .await
            .map_err(|e| backend(&format!("schema statement {statement}"), e))?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| backend("schema agreement", e))?;
    Ok(())
}

impl CassandraStore {
    pub async fn open(options: &CassandraOptions) -> Result<CassandraStore, StorageError> {
        schema::validate_keyspace(&options.keyspace).map_err(StorageError::InvalidQuery)?;
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

    async fn exec(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(), StorageError> {
        self.session
            .execute_unpaged(st, values)
            .await
            .map(|_| ())
            .map_err(|e| unavailable("write", e))
    }

    /// True the first time this process sees the row.
    fn first_write(&self, row: (String, String, String)) -> bool {
        let mut written = self.written.lock().expect("not poisoned");
        if written.len() > WRITE_CACHE_LIMIT {
            written.clear();
        }
        written.insert(row)
    }

    /// The (key, value) pairs of a span that go to tag_index.
    fn indexed_tags(&self, span: &Span) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |kvs: &[KeyValue]| {
            for kv in kvs {
                if matches!(kv.value, Value::Binary(_)) || !self.options.indexes_tag(&kv.key) {
                    continue;
                }
                let value = kv.value.as_string();
                if value.len() > MAX_INDEXED_VALUE {
                    continue;
                }
                let pair = (kv.key.clone(), value.into_owned());
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
        };
        if self.options.index_tags {
            add(&span.tags);
        }
        if self.options.index_process_tags {
            add(&span.process.tags);
        }
        if self.options.index_logs {
            for log in &span.logs {
                add(&log.fields);
            }
        }
        out
    }

    async fn write_span(&self, span: &Span) -> Result<(), StorageError> {
        let st = &self.statements;
        self.exec(&st.insert_span, rows::span_values(span)).await?;
        let service = &span.process.service_name;
        let trace_id = trace_id_bytes(span.trace_id);
        let start = micros(span.start_time);
        if self.first_write((service.clone(), String::new(), String::new())) {
            self.exec(&st.insert_service, (service,)).await?;
        }
        let kind = span.kind().as_str().to_string();
        if self.first_write((service.clone(), span.operation_name.clone(), kind.clone())) {
            self.exec(&st.insert_operation, (service, &kind, &span.operation_name))
                .await?;
        }
        let bucket = (rows::span_hash(span).unsigned_abs() % SERVICE_BUCKETS as u64) as i32;
        self.exec(
            &st.insert_service_index,
            (service, bucket, start, &trace_id),
        )
        .await?;
        self.exec(
            &st.insert_operation_index,
            (service, &span.operation_name, start, &trace_id),
        )
        .await?;
        let index_duration = match self.options.index_duration {
            DurationIndex::All => true,
            DurationIndex::Root => span.parent_span_id().is_none(),
            DurationIndex::None => false,
        };
        if index_duration {
            let hour = CqlTimestamp(micros(query::hour_bucket(span.start_time)) / 1000);
            let duration = span.duration.as_micros() as i64;
            for op in ["", span.operation_name.as_str()] {
                self.exec(
                    &st.insert_duration,
                    (service, op, hour, duration, start, &trace_id),
                )
                .await?;
            }
        }
        for (key, value) in self.indexed_tags(span) {
            self.exec(
                &st.insert_tag,
                (service, key, value, start, &trace_id, span.span_id.0 as i64),
            )
            .await?;
        }
        Ok(())
    }

    /// Trace ids from one index query, newest first.
    async fn index_ids(
        &self,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<(i64, Vec<u8>)>, StorageError> {
        let result = self
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| unavailable("index query", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| backend("index query", e))?;
        rows.rows::<(i64, Vec<u8>)>()
            .map_err(|e| backend("index rows", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| backend("index rows", e))
    }

    async fn candidate_ids(&self, q: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        let st = &self.statements;
        let (svc, min, max) = (
            &q.service_name,
            micros(q.start_time_min),
            micros(q.start_time_max),
        );
        let limit = (q.limit() * INDEX_ROWS_PER_TRACE).min(i32::MAX as usize) as i32;
        let mut rows: Vec<(i64, Vec<u8>)> = match query::plan(q) {
            Plan::Service => {
                let reads: Vec<_> = (0..SERVICE_BUCKETS)
                    .map(|b| self.index_ids(&st.by_service, (svc, b, min, max, limit)))
                    .collect();
                let per_bucket = futures::future::try_join_all(reads).await?;
                per_bucket.into_iter().flatten().collect()
            }
            Plan::Operation(op) => {
                self.index_ids(&st.by_operation, (svc, op, min, max, limit))
                    .await?
            }
            Plan::Duration {
                operation,
                buckets,
                min_us,
                max_us,
            } => {
                let mut out = Vec::new();
                for b in buckets {
                    let hour = CqlTimestamp(micros(b) / 1000);
                    out.extend(
                        self.index_ids(
                            &st.by_duration,
                            (svc, &operation, hour, min_us, max_us, limit),
                        )
                        .await?
                        .into_iter()
                        .filter(|(start, _)| (min..=max).contains(start)),
                    );
                    if out.len() >= limit as usize {
                        break;
                    }
                }
                out
            }
            Plan::Tags {
                tags, operation, ..
            } => {
                let mut lists = Vec::new();
                for (k, v) in &tags {
                    lists.push(
                        self.index_ids(&st.by_tag, (svc, k, v, min, max, limit))
                            .await?,
                    );
                }
                if let Some(op) = operation {
                    lists.push(
                        self.index_ids(&st.by_operation, (svc, op, min, max, limit))
                            .await?,
                    );
                }
                let id_lists: Vec<Vec<Vec<u8>>> = lists
                    .iter()
                    .map(|l| l.iter().map(|(_, id)| id.clone()).collect())
                    .collect();
                let keep = query::intersect(&id_lists);
                lists
                    .swap_remove(0)
                    .into_iter()
                    .filter(|(_, id)| keep.contains(id))
                    .collect()
            }
        };
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut ids = Vec::new();
        for (_, bytes) in rows {
            let id = TraceId::from_slice(&bytes).map_err(|e| backend("trace id in index", e))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

fn day_bucket(t: SystemTime) -> CqlTimestamp {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CqlTimestamp(((secs - secs % 86_400) * 1000) as i64)
}

#[async_trait]
impl SpanWriter for CassandraStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let writes: Vec<_> = spans.iter().map(|span| self.write_span(span)).collect();
        stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl SpanReader for CassandraStore {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let pager = self
            .session
            .execute_iter(
                self.statements.select_trace.clone(),
                (trace_id_bytes(trace_id),),
            )
            .await
            .map_err(|e| unavailable("reading trace", e))?;
        let rows: Vec<SpanRow> = pager
            .rows_stream::<SpanRow>()
            .map_err(|e| backend("reading trace", e))?
            .try_collect()
            .await
            .map_err(|e| backend("reading trace", e))?;
        let mut spans = rows
            .into_iter()
            .map(|r| rows::span_from_row(r).map_err(|e| backend("reading trace", e)))
            .collect::<Result<Vec<_>, _>>()?;
        dedupe_spans(&mut spans);
        Ok((!spans.is_empty()).then(|| Trace {
            spans,
            warnings: Vec::new(),
        }))
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        let pager = self
            .session
            .execute_iter(self.statements.select_services.clone(), ())
            .await
            .map_err(|e| backend("reading services", e))?;
        let mut services: Vec<String> = pager
            .rows_stream::<(String,)>()
            .map_err(|e| backend("reading services", e))?
            .map_ok(|(s,)| s)
            .try_collect()
            .await
            .map_err(|e| backend("reading services", e))?;
        services.sort();
        Ok(services)
    }

    async fn get_operations(&self, q: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        let st = &self.statements;
        let pager = match q.span_kind {
            Some(kind) => {
                self.session
                    .execute_iter(
                        st.select_operations_by_kind.clone(),
                        (&q.service_name, kind.as_str()),
                    )
                    .await
            }
            None => {
                self.session
                    .execute_iter(st.select_operations.clone(), (&q.service_name,))
                    .await
            }
        }
        .map_err(|e| backend("reading operations", e))?;
        let mut ops: Vec<Operation> = pager
            .rows_stream::<(String, String)>()
            .map_err(|e| backend("reading operations", e))?
            .map_ok(|(kind, name)| Operation {
                name,
                span_kind: spoor_model::SpanKind::parse(&kind),
            })
            .try_collect()
            .await
            .map_err(|e| backend("reading operations", e))?;
        ops.sort();
        Ok(ops)
    }

    async fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        q.validate()?;
        let check_duration = matches!(
            query::plan(q),
            Plan::Tags {
                check_duration: true,
                ..
            }
        );
        let mut traces = Vec::new();
        for id in self.candidate_ids(q).await? {
            if traces.len() >= q.limit() {
                break;
            }
            let Some(trace) = self.get_trace(id).await? else {
                continue;
            };
            if check_duration && !trace.spans.iter().any(|s| span_matches(s, q)) {
                continue;
            }
            traces.push(trace);
        }
        Ok(traces)
    }

    async fn find_trace_ids(&self, q: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        q.validate()?;
        if matches!(
            query::plan(q),
            Plan::Tags {
                check_duration: true,
                ..
            }
        ) {
            let traces = self.find_traces(q).await?;
            return Ok(traces.iter().map(|t| t.spans[0].trace_id).collect());
        }
        let mut ids = self.candidate_ids(q).await?;
        ids.truncate(q.limit());
        Ok(ids)
    }
}

#[async_trait]
impl DependencyWriter for CassandraStore {
    /// One row per run, in the partition of its day.
    async fn write_dependencies(
        &self,
        at: SystemTime,
        links: &[DependencyLink],
    ) -> Result<(), StorageError> {
        let udts: Vec<DependencyUdt> = links
            .iter()
            .map(|l| DependencyUdt {
                parent: l.parent.clone(),
                child: l.child.clone(),
                call_count: l.call_count as i64,
                source: Some(l.source.clone()),
            })
            .collect();
        let ts = CqlTimestamp(micros(at) / 1000);
        self.exec(
            &self.statements.insert_dependencies,
            (day_bucket(at), ts, udts),
        )
        .await
    }
}

#[async_trait]
impl DependencyReader for CassandraStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        let start = end_time - lookback;
        let (from, to) = (
            CqlTimestamp(micros(start) / 1000),
            CqlTimestamp(micros(end_time) / 1000),
        );
        let mut sums = DependencyCounter::default();
        let mut day = day_bucket(start).0;
        while day <= day_bucket(end_time).0 {
            let result = self
                .session
                .execute_unpaged(
                    &self.statements.select_dependencies,
                    (CqlTimestamp(day), from, to),
                )
                .await
                .map_err(|e| backend("reading dependencies", e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| backend("reading dependencies", e))?;
            for row in rows
                .rows::<(CqlTimestamp, Option<Vec<DependencyUdt>>)>()
                .map_err(|e| backend("reading dependencies", e))?
            {
                let (_, links) = row.map_err(|e| backend("reading dependencies", e))?;
                for l in links.unwrap_or_default() {
                    sums.add_link(DependencyLink {
                        parent: l.parent,
                        child: l.child,
                        call_count: l.call_count.max(0) as u64,
                        source: l.source.unwrap_or_default(),
                    });
                }
            }
            day += 86_400_000;
        }
        Ok(sums.into_links())
    }
}
