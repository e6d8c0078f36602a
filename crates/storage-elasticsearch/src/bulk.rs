//! The bulk writer: documents from many concurrent writes are gathered into
//! `_bulk` requests bounded by action count, bytes and age; a bounded
//! number of requests is in flight; rejected items that may succeed later
//! (429, 5xx) are sent again with backoff. A write returns once all of its
//! documents are stored, so an acknowledged span is on the cluster.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};
use spoor_storage::StorageError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::client::{EsClient, retryable_status};

#[derive(Clone, Debug)]
pub struct BulkConfig {
    /// Documents per request.
    pub max_actions: usize,
    /// Bytes of request body per request.
    pub max_bytes: usize,
    /// How long the first document of a request waits for company.
    pub flush_interval: Duration,
    /// Requests in flight at once.
    pub workers: usize,
    /// Attempts after the first for documents the cluster could not take yet.
    pub max_retries: u32,
    /// First retry delay; doubled each time.
    pub retry_backoff: Duration,
    /// Writes wait until the documents are searchable (`refresh=wait_for`).
    pub refresh: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            max_actions: 1000,
            max_bytes: 5_000_000,
            flush_interval: Duration::from_millis(200),
            workers: 1,
            max_retries: 5,
            retry_backoff: Duration::from_millis(100),
            refresh: false,
        }
    }
}

/// One document to index.
#[derive(Clone, Debug)]
pub struct Doc {
    pub index: String,
    /// Documents with an id are written once however often they are sent.
    pub id: Option<String>,
    pub source: Vec<u8>,
}

impl Doc {
    fn action(&self) -> Vec<u8> {
        let mut meta = json!({"_index": self.index});
        if let Some(id) = &self.id {
            meta["_id"] = json!(id);
        }
        serde_json::to_vec(&json!({ "index": meta })).expect("json")
    }

    fn size(&self) -> usize {
        self.source.len() + self.index.len() + 40
    }
}

struct Job {
    docs: Vec<Doc>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

#[derive(Debug, Default)]
pub struct BulkStats {
    pub requests: AtomicU64,
    pub indexed: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Clone)]
pub struct BulkWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<BulkStats>,
}

impl BulkWriter {
    /// Starts the dispatcher; it ends when every writer handle is dropped.
    pub fn start(client: EsClient, config: BulkConfig) -> BulkWriter {
        let (tx, rx) = mpsc::channel(config.workers.max(1) * 64);
        let stats = Arc::new(BulkStats::default());
        tokio::spawn(dispatch(client, config, rx, Arc::clone(&stats)));
        BulkWriter { tx, stats }
    }

    pub fn stats(&self) -> &BulkStats {
        &self.stats
    }

    /// Stores the documents; errors name what the cluster refused.
    pub async fn write(&self, docs: Vec<Doc>) -> Result<(), StorageError> {
        if docs.is_empty() {
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        self.tx
            .send(Job { docs, done })
            .await
            .map_err(|_| StorageError::backend_msg("elasticsearch bulk writer stopped"))?;
        result
            .await
            .map_err(|_| StorageError::backend_msg("elasticsearch bulk writer stopped"))?
    }
}

async fn dispatch(
    client: EsClient,
    config: BulkConfig,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<BulkStats>,
) {
    let slots = Arc::new(Semaphore::new(config.workers.max(1)));
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + config.flush_interval;
        let mut batch = Batch::default();
        batch.push(first);
        while batch.actions < config.max_actions && batch.bytes < config.max_bytes {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => batch.push(job),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let (client, config, stats) = (client.clone(), config.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            batch.flush(&client, &config, &stats).await;
            drop(permit);
        });
    }
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    actions: usize,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, job: Job) {
        self.actions += job.docs.len();
        self.bytes += job.docs.iter().map(Doc::size).sum::<usize>();
        self.jobs.push(job);
    }

    /// Sends every document, retrying those refused for now; then answers
    /// each job with its own documents' outcome.
    async fn flush(self, client: &EsClient, config: &BulkConfig, stats: &BulkStats) {
        let docs: Vec<&Doc> = self.jobs.iter().flat_map(|j| &j.docs).collect();
        let mut outcome: Vec<Option<String>> = vec![None; docs.len()];
        let mut pending: Vec<usize> = (0..docs.len()).collect();
        let mut attempt = 0;
        let query: &[(&str, &str)] = if config.refresh {
            &[("refresh", "wait_for")]
        } else {
            &[]
        };
        while !pending.is_empty() {
            let mut lines = Vec::with_capacity(pending.len() * 2);
            for &i in &pending {
                lines.push(docs[i].action());
                lines.push(docs[i].source.clone());
            }
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let retry: Vec<usize> = match client.ndjson("/_bulk", query, lines).await {
                Ok(answer) => {
                    let verdicts = item_verdicts(&answer, pending.len());
                    let mut retry = Vec::new();
                    for (&i, verdict) in pending.iter().zip(verdicts) {
                        match verdict {
                            Verdict::Stored => {
                                outcome[i] = None;
                                stats.indexed.fetch_add(1, Ordering::Relaxed);
                            }
                            Verdict::Retry(e) => {
                                outcome[i] = Some(e);
                                retry.push(i);
                            }
                            Verdict::Refused(e) => outcome[i] = Some(e),
                        }
                    }
                    retry
                }
                Err(e) => {
                    for &i in &pending {
                        outcome[i] = Some(e.to_string());
                    }
                    if e.retryable() {
                        pending.clone()
                    } else {
                        Vec::new()
                    }
                }
            };
            if retry.is_empty() || attempt >= config.max_retries {
                break;
            }
            stats
                .retried
                .fetch_add(retry.len() as u64, Ordering::Relaxed);
            tokio::time::sleep(config.retry_backoff * 2u32.pow(attempt.min(16))).await;
            attempt += 1;
            pending = retry;
        }
        let mut offset = 0;
        for job in self.jobs {
            let mine = &outcome[offset..offset + job.docs.len()];
            offset += job.docs.len();
            let failed: Vec<&String> = mine.iter().flatten().collect();
            stats
                .failed
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            let result = match failed.first() {
                None => Ok(()),
                Some(first) => Err(StorageError::backend_msg(format!(
                    "elasticsearch refused {} of {} documents; first: {first}",
                    failed.len(),
                    mine.len()
                ))),
            };
            let _ = job.done.send(result);
        }
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Stored,
    Retry(String),
    Refused(String),
}

/// The outcome of each document of a `_bulk` answer, in request order.
fn item_verdicts(answer: &Json, sent: usize) -> Vec<Verdict> {
    let items = answer["items"].as_array();
    (0..sent)
        .map(|i| {
            let Some(item) = items.and_then(|items| items.get(i)) else {
                return Verdict::Retry("bulk answer lacks this document".into());
            };
            let result = item
                .as_object()
                .and_then(|o| o.values().next())
                .unwrap_or(&Json::Null);
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            if (200..300).contains(&status) {
                Verdict::Stored
            } else {
                let error = format!("{status} {}", result["error"]);
                if retryable_status(status) {
                    Verdict::Retry(error)
                } else {
                    Verdict::Refused(error)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_item_statuses() {
        let answer = json!({"errors": true, "items": [
            {"index": {"_index": "a", "status": 201}},
            {"index": {"_index": "a", "status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            {"index": {"_index": "a", "status": 400, "error": {"type": "mapper_parsing_exception"}}},
            {"create": {"_index": "a", "status": 200}},
        ]});
        let v = item_verdicts(&answer, 5);
        assert_eq!(v[0], Verdict::Stored);
        assert!(matches!(&v[1], Verdict::Retry(e) if e.contains("es_rejected")));
        assert!(
            matches!(&v[2], Verdict::Refused(e) if e.starts_with("400") && e.contains("mapper_parsing"))
        );
        assert_eq!(v[3], Verdict::Stored);
        assert!(
            matches!(&v[4], Verdict::Retry(_)),
            "missing items are sent again"
        );
    }

    #[test]
    fn actions_name_index_and_id() {
        let doc = Doc {
            index: "jaeger-span-2026-11-24".into(),
            id: Some("abc".into()),
            source: b"{}".to_vec(),
        };
        let action: Json = serde_json::from_slice(&doc.action()).unwrap();
        assert_eq!(
            action,
            json!({"index": {"_index": "jaeger-span-2026-11-24", "_id": "abc"}})
        );
        let anonymous = Doc { id: None, ..doc };
        let action: Json = serde_json::from_slice(&anonymous.action()).unwrap();
        assert_eq!(
            action,
            json!({"index": {"_index": "jaeger-span-2026-11-24"}})
        );
    }
}

/// The writer against a small HTTP endpoint that answers `_bulk` the way a
/// busy cluster does: it refuses documents marked `flaky` with 429 once.
#[cfg(test)]
mod over_http {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use axum::Router;
    use axum::routing::post;

    use super::*;
    use crate::client::ConnectOptions;

    #[derive(Default)]
    struct Seen {
        requests: Vec<usize>,
        refused_once: HashSet<String>,
        stored: Vec<String>,
    }

    async fn serve(seen: Arc<Mutex<Seen>>) -> String {
        let app = Router::new().route(
            "/_bulk",
            post(move |body: String| {
                let seen = Arc::clone(&seen);
                async move {
                    let mut seen = seen.lock().unwrap();
                    let lines: Vec<&str> = body.lines().collect();
                    seen.requests.push(lines.len() / 2);
                    let mut items = Vec::new();
                    for pair in lines.chunks(2) {
                        let source: Json = serde_json::from_str(pair[1]).unwrap();
                        let name = source["name"].as_str().unwrap().to_string();
                        let status =
                            if source["flaky"] == true && seen.refused_once.insert(name.clone()) {
                                429
                            } else if source["bad"] == true {
                                400
                            } else {
                                seen.stored.push(name);
                                201
                            };
                        items.push(json!({"index": {"status": status, "error": {"reason": "r"}}}));
                    }
                    axum::Json(json!({"errors": true, "items": items}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn doc(name: &str, extra: Json) -> Doc {
        let mut source = json!({"name": name});
        source
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Doc {
            index: "i".into(),
            id: None,
            source: serde_json::to_vec(&source).unwrap(),
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_requests_and_refused_documents_are_retried() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let url = serve(Arc::clone(&seen)).await;
        let client = EsClient::connect(&ConnectOptions {
            urls: vec![url],
            timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        })
        .unwrap();
        let writer = BulkWriter::start(
            client,
            BulkConfig {
                flush_interval: Duration::from_millis(100),
                retry_backoff: Duration::from_millis(1),
                ..BulkConfig::default()
            },
        );
        let (a, b, c) = tokio::join!(
            writer.write(vec![
                doc("a1", json!({})),
                doc("a2", json!({"flaky": true}))
            ]),
            writer.write(vec![doc("b1", json!({}))]),
            writer.write(vec![doc("c1", json!({"bad": true})), doc("c2", json!({}))]),
        );
        a.unwrap();
        b.unwrap();
        let err = c.unwrap_err().to_string();
        assert!(err.contains("refused 1 of 2 documents"), "{err}");
        assert!(err.contains("400"), "{err}");
        let seen = seen.lock().unwrap();
        // one request for all five, then one for the document refused for now
        assert_eq!(seen.requests, [5, 1]);
        let mut stored = seen.stored.clone();
        stored.sort();
        assert_eq!(stored, ["a1", "a2", "b1", "c2"]);
        let stats = writer.stats();
        assert_eq!(stats.indexed.load(Ordering::Relaxed), 4);
        assert_eq!(stats.retried.load(Ordering::Relaxed), 1);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_cluster_that_is_down_fails_the_write_after_the_retries() {
        let client = EsClient::connect(&ConnectOptions {
            urls: vec!["http://127.0.0.1:1".into()],
            timeout: Duration::from_secs(1),
            ..ConnectOptions::default()
        })
        .unwrap();
        let writer = BulkWriter::start(
            client,
            BulkConfig {
                flush_interval: Duration::from_millis(1),
                retry_backoff: Duration::from_millis(1),
                max_retries: 2,
                ..BulkConfig::default()
            },
        );
        let err = writer.write(vec![doc("x", json!({}))]).await.unwrap_err();
        assert!(err.to_string().contains("/_bulk"), "{err}");
        assert_eq!(writer.stats().requests.load(Ordering::Relaxed), 3);
    }
}
