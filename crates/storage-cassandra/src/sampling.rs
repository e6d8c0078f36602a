//! Adaptive sampling's shared state in Jaeger's tables:
//! `operation_throughput` and `sampling_probabilities` (one partition,
//! rows ordered by a time UUID of the bucket), and `leases`, changed only
//! with lightweight transactions so two collectors never both lead.
//! Throughput and probabilities are stored as JSON text.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlTimeuuid, CqlValue, Row};
use serde::{Deserialize, Serialize};
use spoor_storage::{SamplingStore, ServiceProbabilities, StorageError, Throughput};
use uuid::Uuid;

use crate::rows::micros;

/// Jaeger keeps all rows of each table in one partition.
const BUCKET: i32 = 1;

fn backend(context: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("cassandra sampling store: {context}: {e}"))
}

/// Gregorian 100 ns ticks between 1582-10-15 and 1970-01-01.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// A version-1 (time) UUID for `t` with random clock sequence and node, so
/// rows of two collectors for the same bucket never collide.
pub fn time_uuid(t: SystemTime) -> Uuid {
    let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let ticks = (nanos / 100) as u64 + GREGORIAN_OFFSET;
    let random = RandomState::new().hash_one(nanos).to_be_bytes();
    let mut tail = [0u8; 8];
    tail[0] = (random[0] & 0x3f) | 0x80; // RFC 4122 variant
    tail[1..].copy_from_slice(&random[1..]);
    Uuid::from_fields(
        ticks as u32,
        (ticks >> 32) as u16,
        ((ticks >> 48) as u16 & 0x0fff) | 0x1000,
        &tail,
    )
}

/// The time a version-1 UUID carries.
pub fn uuid_time(u: &Uuid) -> Option<SystemTime> {
    let (secs, nanos) = u.get_timestamp()?.to_unix();
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[derive(Serialize, Deserialize)]
struct ThroughputRow {
    service: String,
    operation: String,
    count: u64,
    probabilities: Vec<String>,
}

pub struct CassandraSamplingStore {
    session: Arc<Session>,
    insert_throughput: PreparedStatement,
    select_throughput: PreparedStatement,
    insert_probabilities: PreparedStatement,
    select_probabilities: PreparedStatement,
    select_lease: PreparedStatement,
    insert_lease: PreparedStatement,
    update_lease: PreparedStatement,
    delete_lease: PreparedStatement,
}

impl CassandraSamplingStore {
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StorageError> {
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                session
                    .prepare(cql.clone())
                    .await
                    .map_err(|e| backend(&format!("preparing {cql}"), e))
            }
        };
        Ok(CassandraSamplingStore {
            insert_throughput: prepare(format!(
                "INSERT INTO {ks}.operation_throughput (bucket, ts, throughput) VALUES (?, ?, ?)"
            ))
            .await?,
            select_throughput: prepare(format!(
                "SELECT ts, throughput FROM {ks}.operation_throughput \
                 WHERE bucket = ? AND ts >= minTimeuuid(?) AND ts < minTimeuuid(?)"
            ))
            .await?,
            insert_probabilities: prepare(format!(
                "INSERT INTO {ks}.sampling_probabilities (bucket, ts, hostname, probabilities) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            select_probabilities: prepare(format!(
                "SELECT probabilities FROM {ks}.sampling_probabilities WHERE bucket = ? LIMIT 1"
            ))
            .await?,
            select_lease: prepare(format!("SELECT owner FROM {ks}.leases WHERE name = ?")).await?,
            insert_lease: prepare(format!(
                "INSERT INTO {ks}.leases (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            ))
            .await?,
            update_lease: prepare(format!(
                "UPDATE {ks}.leases USING TTL ? SET owner = ? WHERE name = ? IF owner = ?"
            ))
            .await?,
            delete_lease: prepare(format!("DELETE FROM {ks}.leases WHERE name = ? IF owner = ?")).await?,
            session,
        })
    }

    /// Runs a lightweight transaction; true when it was applied.
    async fn applied(
        &self,
        st: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<bool, StorageError> {
        let result = self
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(|e| backend("lease", e))?;
        let rows = result.into_rows_result().map_err(|e| backend("lease", e))?;
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|e| backend("lease", e))?;
        Ok(matches!(
            row.and_then(|r| r.columns.into_iter().next().flatten()),
            Some(CqlValue::Boolean(true))
        ))
    }

    async fn lease_owner(&self, name: &str) -> Result<Option<String>, StorageError> {
        let result = self
            .session
            .execute_unpaged(&self.select_lease, (name,))
            .await
            .map_err(|e| backend("lease", e))?;
        let rows = result.into_rows_result().map_err(|e| backend("lease", e))?;
        Ok(rows
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|e| backend("lease", e))?
            .and_then(|(owner,)| owner))
    }
}

/// The `owner` column holds `holder@expiry-in-µs`: the lease's end travels
/// with it, so expiry follows the callers' clock, not the server's.
fn lease_value(holder: &str, expires: SystemTime) -> String {
    format!("{holder}@{}", micros(expires))
}

fn parse_lease(value: &str) -> (&str, i64) {
    match value.rsplit_once('@') {
        Some((holder, expires)) => (holder, expires.parse().unwrap_or(0)),
        None => (value, 0),
    }
}

#[async_trait]
impl SamplingStore for CassandraSamplingStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        let rows: Vec<ThroughputRow> = throughput
            .into_iter()
            .map(|t| ThroughputRow {
                service: t.service,
                operation: t.operation,
                count: t.count,
                probabilities: t.probabilities,
            })
            .collect();
        let text = serde_json::to_string(&rows).expect("json");
        self.session
            .execute_unpaged(
                &self.insert_throughput,
                (BUCKET, CqlTimeuuid::from(time_uuid(bucket)), text),
            )
            .await
            .map_err(|e| backend("writing throughput", e))?;
        Ok(())
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        let ms = |t: SystemTime| CqlTimestamp(micros(t) / 1000);
        let result = self
            .session
            .execute_unpaged(&self.select_throughput, (BUCKET, ms(start), ms(end)))
            .await
            .map_err(|e| backend("reading throughput", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| backend("reading throughput", e))?;
        let mut out = Vec::new();
        for row in rows
            .rows::<(CqlTimeuuid, String)>()
            .map_err(|e| backend("reading throughput", e))?
        {
            let (ts, text) = row.map_err(|e| backend("reading throughput", e))?;
            let at = uuid_time(ts.as_ref())
                .ok_or_else(|| backend("throughput", "ts is not a time UUID"))?;
            let items: Vec<ThroughputRow> =
                serde_json::from_str(&text).map_err(|e| backend("throughput text", e))?;
            out.extend(items.into_iter().map(|t| {
                (
                    at,
                    Throughput {
                        service: t.service,
                        operation: t.operation,
                        count: t.count,
                        probabilities: t.probabilities,
                    },
                )
            }));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out)
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let text = serde_json::to_string(&probabilities).expect("json");
        self.session
            .execute_unpaged(
                &self.insert_probabilities,
                (BUCKET, CqlTimeuuid::from(time_uuid(at)), host, text),
            )
            .await
            .map_err(|e| backend("writing probabilities", e))?;
        Ok(())
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        let result = self
            .session
            .execute_unpaged(&self.select_probabilities, (BUCKET,))
            .await
            .map_err(|e| backend("reading probabilities", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| backend("reading probabilities", e))?;
        rows.maybe_first_row::<(String,)>()
            .map_err(|e| backend("reading probabilities", e))?
            .map(|(text,)| {
                serde_json::from_str(&text).map_err(|e| backend("probabilities text", e))
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
        let value = lease_value(holder, now + ttl);
        let ttl_secs = ttl.as_secs().max(1) as i32;
        match self.lease_owner(name).await? {
            None => {
                self.applied(&self.insert_lease, (name, &value, ttl_secs))
                    .await
            }
            Some(current) => {
                let (owner, expires) = parse_lease(&current);
                if owner != holder && expires > micros(now) {
                    return Ok(false);
                }
                self.applied(&self.update_lease, (ttl_secs, &value, name, &current))
                    .await
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        if let Some(current) = self.lease_owner(name).await?
            && parse_lease(&current).0 == holder
        {
            self.applied(&self.delete_lease, (name, &current)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_uuids_carry_their_time_and_differ() {
        let t = UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456);
        let a = time_uuid(t);
        let b = time_uuid(t);
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 1);
        assert_eq!(
            uuid_time(&a),
            Some(UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_000))
        );
    }

    #[test]
    fn lease_values_round_trip_even_with_at_signs_in_holders() {
        let t = UNIX_EPOCH + Duration::from_secs(10);
        let v = lease_value("host@1", t);
        assert_eq!(parse_lease(&v), ("host@1", 10_000_000));
        assert_eq!(parse_lease("jaeger-host"), ("jaeger-host", 0));
    }
}
