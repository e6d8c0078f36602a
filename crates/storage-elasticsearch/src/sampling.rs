//! Adaptive sampling's shared state on the cluster: throughput and
//! probabilities as documents in the dated `jaeger-sampling` indices, and
//! the leader lease as one document per lease name, changed only with
//! optimistic concurrency (`if_seq_no` / `if_primary_term`) so two
//! collectors can never both take it.
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use elasticsearch::http::{Method, StatusCode};
use serde_json::{Value as Json, json};
use spoor_storage::{Lease, SamplingStore, ServiceProbabilities, StorageError, Throughput};

use crate::client::EsClient;
use crate::indices::IndexLayout;
use crate::mapping::IndexKind;
use spoor_model::time::{from_unix_micros, unix_micros};

pub struct EsSamplingStore {
    client: EsClient,
    layout: IndexLayout,
    /// How far back the latest probabilities are looked for.
    probabilities_lookback: Duration,
}

impl EsSamplingStore {
    pub fn new(client: EsClient, layout: IndexLayout) -> Self {
        EsSamplingStore {
            client,
            layout,
            probabilities_lookback: Duration::from_secs(7 * 86_400),
        }
    }

    /// Outside the templates' `jaeger-sampling-*` pattern, so no lifecycle
    /// policy ever rolls or deletes it.
    fn lease_index(&self) -> String {
        format!("{}jaeger-leases", self.layout.prefix)
    }

    async fn index(&self, at: SystemTime, doc: Json) -> Result<(), StorageError> {
        let index = self.layout.write_index(IndexKind::Sampling, at);
        Ok(self.client.index_document(&index, doc).await?)
    }

    async fn search(
        &self,
        start: SystemTime,
        end: SystemTime,
        body: Json,
    ) -> Result<Vec<Json>, StorageError> {
        let indices = self.layout.read_indices(IndexKind::Sampling, start, end);
        let answer = self
            .client
            .request(
                Method::Post,
                &format!("/{}/_search", indices.join(",")),
                &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                Some(body),
            )
            .await?;
        Ok(answer["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut h| h["_source"].take())
            .collect())
    }
}

fn bad(what: &str, doc: &Json) -> StorageError {
    StorageError::backend_msg(format!("sampling document without {what}: {doc}"))
}

#[async_trait]
impl SamplingStore for EsSamplingStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        let items: Vec<Json> = throughput
            .into_iter()
            .map(|t| {
                json!({
                    "service": t.service,
                    "operation": t.operation,
                    "count": t.count,
                    "probabilities": t.probabilities,
                })
            })
            .collect();
        self.index(
            bucket,
            json!({"timestamp": unix_micros(bucket), "throughput": items}),
        )
        .await
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        let docs = self
            .search(
                start,
                end,
                json!({
                    "size": 10_000,
                    "query": {"bool": {"must": [
                        {"exists": {"field": "throughput"}},
                        {"range": {"timestamp": {"gte": unix_micros(start), "lt": unix_micros(end)}}},
                    ]}},
                    "sort": [{"timestamp": "asc"}],
                }),
            )
            .await?;
        let mut out = Vec::new();
        for doc in docs {
            let at = from_unix_micros(
                doc["timestamp"]
                    .as_u64()
                    .ok_or_else(|| bad("timestamp", &doc))?,
            );
            for t in doc["throughput"].as_array().into_iter().flatten() {
                out.push((
                    at,
                    Throughput {
                        service: t["service"]
                            .as_str()
                            .ok_or_else(|| bad("service", t))?
                            .into(),
                        operation: t["operation"]
                            .as_str()
                            .ok_or_else(|| bad("operation", t))?
                            .into(),
                        count: t["count"].as_u64().ok_or_else(|| bad("count", t))?,
                        probabilities: t["probabilities"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect(),
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        self.index(
            at,
            json!({"timestamp": unix_micros(at), "probabilities": probabilities}),
        )
        .await
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        let now = SystemTime::now();
        let docs = self
            .search(
                now - self.probabilities_lookback,
                now,
                json!({
                    "size": 1,
                    "query": {"exists": {"field": "probabilities"}},
                    "sort": [{"timestamp": "desc"}],
                }),
            )
            .await?;
        docs.into_iter()
            .next()
            .map(|doc| {
                serde_json::from_value(doc["probabilities"].clone())
                    .map_err(|e| StorageError::backend_msg(format!("stored probabilities: {e}")))
            })
            .transpose()
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        let path = format!("/{}/_doc/{name}", self.lease_index());
        let doc = json!({"holder": holder, "expires": unix_micros(now + ttl)});
        let (status, current) = self
            .client
            .request_status(Method::Get, &path, &[], None)
            .await?;
        let conditions: Vec<(&str, String)> = if status == StatusCode::NOT_FOUND {
            vec![("op_type", "create".into())]
        } else if status.is_success() {
            let source = &current["_source"];
            let held = Lease {
                holder: source["holder"].as_str().unwrap_or_default().to_string(),
                expires: from_unix_micros(source["expires"].as_u64().unwrap_or(0)),
            };
            if !Lease::may_take(Some(&held), holder, now) {
                return Ok(false);
            }
            vec![
                ("if_seq_no", current["_seq_no"].to_string()),
                ("if_primary_term", current["_primary_term"].to_string()),
            ]
        } else {
            return Err(StorageError::backend_msg(format!(
                "reading lease {name}: status {status}: {current}"
            )));
        };
        let mut query: Vec<(&str, &str)> =
            conditions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query.push(("refresh", "wait_for"));
        let (status, answer) = self
            .client
            .request_status(Method::Put, &path, &query, Some(doc))
            .await?;
        match status {
            s if s.is_success() => Ok(true),
            // someone else changed the lease first
            StatusCode::CONFLICT => Ok(false),
            s => Err(StorageError::backend_msg(format!(
                "writing lease {name}: status {s}: {answer}"
            ))),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        let path = format!("/{}/_doc/{name}", self.lease_index());
        let (status, current) = self
            .client
            .request_status(Method::Get, &path, &[], None)
            .await?;
        if !status.is_success() || current["_source"]["holder"] != holder {
            return Ok(());
        }
        let (seq, term) = (
            current["_seq_no"].to_string(),
            current["_primary_term"].to_string(),
        );
        let (status, answer) = self
            .client
            .request_status(
                Method::Delete,
                &path,
                &[
                    ("if_seq_no", &seq),
                    ("if_primary_term", &term),
                    ("refresh", "wait_for"),
                ],
                None,
            )
            .await?;
        if status.is_success() || status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND
        {
            Ok(())
        } else {
            Err(StorageError::backend_msg(format!(
                "releasing lease {name}: status {status}: {answer}"
            )))
        }
    }
}
