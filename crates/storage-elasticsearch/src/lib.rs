//! Elasticsearch / OpenSearch backend with Jaeger's index layout, document
//! shape and queries, so Jaeger and Spoor share a cluster's data both ways.
//!
//! Spans go to `<prefix>jaeger-span-<date>` (or the `-write` alias), one row
//! per service and operation to `<prefix>jaeger-service-<date>`; searches
//! aggregate matching spans by trace id, then read each trace's spans in
//! pages. Dependencies are read from `<prefix>jaeger-dependencies-<date>`,
//! where a dependencies job writes them.
pub mod admin;
mod bulk;
pub mod client;
pub mod document;
pub mod indices;
pub mod mapping;
mod options;
pub mod query;
mod sampling;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use elasticsearch::http::Method;
use serde_json::Value as Json;
use spoor_model::{DependencyLink, Span, Trace, TraceId};
use spoor_storage::{
    DependencyCounter, DependencyReader, DependencyWriter, Operation, OperationQuery, SpanReader,
    SpanWriter, StorageError, TraceQuery, dedupe_spans,
};

pub use bulk::{BulkConfig, BulkStats};
pub use client::{ConnectOptions, EsClient, EsError};
pub use options::{EsArchiveOptions, EsConfig, EsOptions};
pub use sampling::EsSamplingStore;

use bulk::{BulkWriter, Doc};
use document::{ServiceDoc, SpanDoc, TagsAsFields};
use indices::IndexLayout;
use mapping::IndexKind;

/// Service rows remembered as written before the cache starts over.
const SERVICE_CACHE_LIMIT: usize = 100_000;

pub struct EsStore {
    client: EsClient,
    layout: IndexLayout,
    tags: TagsAsFields,
    bulk: BulkWriter,
    max_span_age: Duration,
    max_doc_count: usize,
    max_span_count: usize,
    /// (index, row id) already written: each service row goes out once per index.
    services_written: Mutex<HashSet<(String, String)>>,
}

impl EsStore {
    /// Connects, learns the server family and, when configured, puts the
    /// index templates.
    pub async fn open(config: &EsConfig) -> Result<EsStore, EsError> {
        let client = EsClient::connect(&config.connect)?;
        let flavor = client.flavor().await?;
        if let Some(templates) = &config.templates {
            admin::put_templates(&client, flavor, templates).await?;
        }
        tracing::info!(
            ?flavor,
            urls = ?config.connect.urls,
            archive = config.layout.archive,
            "elasticsearch storage ready"
        );
        Ok(EsStore::new(client, config))
    }

    fn new(client: EsClient, config: &EsConfig) -> EsStore {
        EsStore {
            bulk: BulkWriter::start(client.clone(), config.bulk.clone()),
            client,
            layout: config.layout.clone(),
            tags: config.tags.clone(),
            max_span_age: config.max_span_age,
            max_doc_count: config.max_doc_count,
            max_span_count: config.max_span_count,
            services_written: Mutex::new(HashSet::new()),
        }
    }

    pub fn client(&self) -> &EsClient {
        &self.client
    }

    pub fn layout(&self) -> &IndexLayout {
        &self.layout
    }

    pub fn bulk_stats(&self) -> &BulkStats {
        self.bulk.stats()
    }

    /// A sampling store on the same cluster and index layout.
    pub fn sampling_store(&self) -> EsSamplingStore {
        EsSamplingStore::new(self.client.clone(), self.layout.clone())
    }

    fn service_docs(&self, spans: &[Span]) -> Vec<Doc> {
        if self.layout.archive {
            // the archive is read by trace id only
            return Vec::new();
        }
        let mut written = self.services_written.lock().expect("not poisoned");
        if written.len() > SERVICE_CACHE_LIMIT {
            written.clear();
        }
        let mut docs = Vec::new();
        for span in spans {
            let row = ServiceDoc {
                service_name: span.process.service_name.clone(),
                operation_name: span.operation_name.clone(),
                span_kind: span.kind().as_str().to_string(),
            };
            let index = self.layout.write_index(IndexKind::Service, span.start_time);
            let id = row.id();
            if written.insert((index.clone(), id.clone())) {
                docs.push(Doc {
                    index,
                    id: Some(id),
                    source: serde_json::to_vec(&row).expect("json"),
                });
            }
        }
        docs
    }

    fn forget_services(&self, docs: &[Doc]) {
        let mut written = self.services_written.lock().expect("not poisoned");
        for d in docs {
            written.remove(&(d.index.clone(), d.id.clone().unwrap_or_default()));
        }
    }

    async fn search(&self, indices: &[String], body: Json) -> Result<Json, EsError> {
        let path = format!("/{}/_search", indices.join(","));
        self.client
            .request(
                Method::Post,
                &path,
                &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                Some(body),
            )
            .await
    }

    fn recent_indices(&self, kind: IndexKind) -> Vec<String> {
        let now = SystemTime::now();
        self.layout.read_indices(kind, now - self.max_span_age, now)
    }

    /// The spans of each trace, read in pages from `indices`.
    async fn read_traces(
        &self,
        ids: &[TraceId],
        indices: &[String],
    ) -> Result<Vec<Trace>, StorageError> {
        let page = self.max_doc_count.min(self.max_span_count);
        let header = serde_json::to_vec(&serde_json::json!({
            "index": indices,
            "ignore_unavailable": true,
            "allow_no_indices": true,
        }))
        .expect("json");
        let mut traces = Vec::with_capacity(ids.len());
        // first pages of every trace in one request
        for chunk in ids.chunks(100) {
            let mut lines = Vec::with_capacity(chunk.len() * 2);
            for id in chunk {
                lines.push(header.clone());
                lines.push(serde_json::to_vec(&query::trace_page(*id, page, None)).expect("json"));
            }
            let answer = self.client.ndjson("/_msearch", &[], lines).await?;
            let responses = answer["responses"].as_array().ok_or_else(|| {
                StorageError::backend_msg("multi-search answer without responses")
            })?;
            for (id, response) in chunk.iter().zip(responses) {
                if !response["error"].is_null() {
                    return Err(StorageError::backend_msg(format!(
                        "reading trace {id}: {}",
                        response["error"]
                    )));
                }
                let mut docs = hits(response);
                let total = response["hits"]["total"]["value"].as_u64().unwrap_or(0) as usize;
                let mut after = docs.last().and_then(|h| h.get("sort").cloned());
                while docs.len() < total.min(self.max_span_count) {
                    let Some(last) = after.take() else { break };
                    let more = self
                        .search(indices, query::trace_page(*id, page, Some(&last)))
                        .await?;
                    let more = hits(&more);
                    if more.is_empty() {
                        break;
                    }
                    after = more.last().and_then(|h| h.get("sort").cloned());
                    docs.extend(more);
                }
                let spans = docs
                    .into_iter()
                    .map(|hit| {
                        let doc: SpanDoc =
                            serde_json::from_value(hit["_source"].clone()).map_err(|e| {
                                StorageError::backend_msg(format!("span document of {id}: {e}"))
                            })?;
                        self.tags
                            .from_doc(doc)
                            .map_err(|e| StorageError::backend_msg(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut spans = spans;
                dedupe_spans(&mut spans);
                if !spans.is_empty() {
                    traces.push(Trace {
                        spans,
                        warnings: Vec::new(),
                    });
                }
            }
        }
        Ok(traces)
    }
}

fn hits(response: &Json) -> Vec<Json> {
    response["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl SpanWriter for EsStore {
    async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let services = self.service_docs(&spans);
        let mut docs: Vec<Doc> = spans
            .iter()
            .map(|span| Doc {
                index: self.layout.write_index(IndexKind::Span, span.start_time),
                id: None,
                source: serde_json::to_vec(&self.tags.to_doc(span)).expect("json"),
            })
            .collect();
        docs.extend(services.iter().cloned());
        let result = self.bulk.write(docs).await;
        if result.is_err() {
            // write the rows again with the next spans
            self.forget_services(&services);
        }
        result
    }
}

#[async_trait]
impl SpanReader for EsStore {
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let indices = self.recent_indices(IndexKind::Span);
        Ok(self.read_traces(&[trace_id], &indices).await?.pop())
    }

    async fn get_services(&self) -> Result<Vec<String>, StorageError> {
        let indices = self.recent_indices(IndexKind::Service);
        let answer = self
            .search(&indices, query::services(self.max_doc_count))
            .await?;
        let mut services = query::read_services(&answer).map_err(StorageError::backend_msg)?;
        services.sort();
        Ok(services)
    }

    async fn get_operations(&self, q: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        let indices = self.recent_indices(IndexKind::Service);
        let answer = self
            .search(
                &indices,
                query::operations(&q.service_name, q.span_kind, self.max_doc_count),
            )
            .await?;
        let mut ops: Vec<Operation> = query::read_operations(&answer)
            .map_err(StorageError::backend_msg)?
            .into_iter()
            .map(|(name, span_kind)| Operation { name, span_kind })
            .collect();
        ops.sort();
        ops.dedup();
        Ok(ops)
    }

    async fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        let ids = self.find_trace_ids(q).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // spans of a found trace may have started a little before or after
        // the window, as in Jaeger
        let hour = Duration::from_secs(3600);
        let indices = self.layout.read_indices(
            IndexKind::Span,
            q.start_time_min - hour,
            q.start_time_max + hour,
        );
        self.read_traces(&ids, &indices).await
    }

    async fn find_trace_ids(&self, q: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
        q.validate()?;
        let indices = self
            .layout
            .read_indices(IndexKind::Span, q.start_time_min, q.start_time_max);
        let answer = self
            .search(
                &indices,
                query::find_trace_ids(q, &self.tags.dot_replacement),
            )
            .await?;
        query::read_trace_ids(&answer).map_err(StorageError::backend_msg)
    }
}

#[async_trait]
impl DependencyWriter for EsStore {
    /// As Jaeger's dependencies job: one document per run in the day's index.
    async fn write_dependencies(
        &self,
        at: SystemTime,
        links: &[DependencyLink],
    ) -> Result<(), StorageError> {
        let doc = serde_json::json!({
            "timestamp": rfc3339(at),
            "dependencies": links.iter().map(|l| serde_json::json!({
                "parent": l.parent,
                "child": l.child,
                "callCount": l.call_count,
                "source": l.source,
            })).collect::<Vec<_>>(),
        });
        let index = self.layout.write_index(IndexKind::Dependencies, at);
        Ok(self.client.index_document(&index, doc).await?)
    }
}

#[async_trait]
impl DependencyReader for EsStore {
    async fn get_dependencies(
        &self,
        end_time: SystemTime,
        lookback: Duration,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        let start = end_time - lookback;
        let indices = self
            .layout
            .read_indices(IndexKind::Dependencies, start, end_time);
        let answer = self
            .search(
                &indices,
                query::dependencies(&rfc3339(start), &rfc3339(end_time), self.max_doc_count),
            )
            .await?;
        let mut sums = DependencyCounter::default();
        for hit in hits(&answer) {
            for link in hit["_source"]["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let (Some(parent), Some(child)) = (link["parent"].as_str(), link["child"].as_str())
                else {
                    continue;
                };
                sums.add_link(DependencyLink {
                    parent: parent.to_string(),
                    child: child.to_string(),
                    call_count: link["callCount"].as_u64().unwrap_or(0),
                    source: link["source"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(sums.into_links())
    }
}

/// What the store sends, against a small HTTP endpoint that takes `_bulk`
/// requests and keeps the index of every action (the store against a real
/// cluster: tests/conformance.rs with `SPOOR_ES_URL`).
#[cfg(test)]
mod over_http {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use spoor_model::{Process, SpanId};

    use super::*;
    use crate::options::EsArchiveOptions;

    async fn serve(indices: Arc<Mutex<Vec<String>>>) -> String {
        let app = Router::new().route(
            "/_bulk",
            post(move |body: String| {
                let indices = Arc::clone(&indices);
                async move {
                    let mut items = Vec::new();
                    for line in body.lines().step_by(2) {
                        let action: Json = serde_json::from_str(line).unwrap();
                        let index = action["index"]["_index"].as_str().unwrap().to_string();
                        indices.lock().unwrap().push(index);
                        items.push(serde_json::json!({"index": {"status": 201}}));
                    }
                    axum::Json(serde_json::json!({"errors": false, "items": items}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        archive: EsArchiveOptions,
    }

    #[tokio::test]
    async fn the_archive_writes_spans_to_jaegers_archive_index_and_no_services() {
        let indices = Arc::new(Mutex::new(Vec::new()));
        let url = serve(Arc::clone(&indices)).await;
        let cli = <Cli as clap::Parser>::try_parse_from([
            "spoor",
            "--es-archive.enabled",
            "--es-archive.server-urls",
            &url,
            "--es-archive.index-prefix=prod",
            "--es-archive.bulk.flush-interval=1ms",
        ])
        .unwrap();
        assert!(cli.archive.enabled);
        let config = cli.archive.config().unwrap();
        let store = EsStore::new(EsClient::connect(&config.connect).unwrap(), &config);
        let process = Arc::new(Process {
            service_name: "svc".into(),
            tags: vec![],
        });
        let span = |id| Span {
            trace_id: TraceId(7),
            span_id: SpanId(id),
            operation_name: "op".into(),
            references: vec![],
            flags: 1,
            start_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(1),
            tags: vec![],
            logs: vec![],
            process: Arc::clone(&process),
            warnings: vec![],
        };
        store.write_spans(vec![span(1), span(2)]).await.unwrap();
        assert_eq!(
            *indices.lock().unwrap(),
            ["prod-jaeger-span-archive", "prod-jaeger-span-archive"]
        );
    }
}
