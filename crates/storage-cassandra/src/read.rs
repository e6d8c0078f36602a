//! Reads: traces by id, searches through the index a plan picks, and
//! dependencies summed over the days of a window.
use super::*;
use spoor_model::time::unix_micros_i64;

impl CassandraStore {
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
            unix_micros_i64(q.start_time_min),
            unix_micros_i64(q.start_time_max),
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
                    let hour = CqlTimestamp(unix_micros_i64(b) / 1000);
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
impl DependencyReader for CassandraStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        let start = end_time - lookback;
        let (from, to) = (
            CqlTimestamp(unix_micros_i64(start) / 1000),
            CqlTimestamp(unix_micros_i64(end_time) / 1000),
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
