//! Writes: a span's row, its index rows, and each service and operation
//! once per process; dependency rows from the dependencies job.
use super::*;
use spoor_model::time::unix_micros_i64;

impl CassandraStore {
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
                let pair = (kv.key.to_string(), value.into_owned());
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
        let start = unix_micros_i64(span.start_time);
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
            let hour = CqlTimestamp(unix_micros_i64(query::hour_bucket(span.start_time)) / 1000);
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
        let ts = CqlTimestamp(unix_micros_i64(at) / 1000);
        self.exec(
            &self.statements.insert_dependencies,
            (day_bucket(at), ts, udts),
        )
        .await
    }
}
