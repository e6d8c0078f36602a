//! Adaptive sampling's state in the embedded store, so a restarted
//! all-in-one keeps its computed probabilities. Each value is a small JSON
//! document: throughput rows per bucket, the latest probabilities, leases.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use spoor_storage::{Lease, SamplingStore, ServiceProbabilities, StorageError, Throughput};

use crate::keys::Key;
use crate::{EmbeddedStore, backend};
use spoor_model::time::{from_unix_nanos, unix_nanos};

/// bucket start ++ sequence -> [service, operation, count, probabilities]
const THROUGHPUT: TableDefinition<&[u8], &str> = TableDefinition::new("sampling_throughput");
/// "latest" -> (computed at, probabilities)
const PROBABILITIES: TableDefinition<&str, (u64, &str)> =
    TableDefinition::new("sampling_probabilities");
/// lease name -> (holder, expires at)
const LEASES: TableDefinition<&str, (&str, u64)> = TableDefinition::new("sampling_leases");

/// Creates the tables, so reads before the first write find them.
pub(crate) fn create_tables(tx: &redb::WriteTransaction) -> Result<(), StorageError> {
    tx.open_table(THROUGHPUT).map_err(backend)?;
    tx.open_table(PROBABILITIES).map_err(backend)?;
    tx.open_table(LEASES).map_err(backend)?;
    Ok(())
}

/// Deletes throughput of buckets before `cutoff` (part of a retention pass).
pub(crate) fn purge_throughput(
    tx: &redb::WriteTransaction,
    cutoff: SystemTime,
) -> Result<(), StorageError> {
    let mut table = tx.open_table(THROUGHPUT).map_err(backend)?;
    let end = Key::new().u64(unix_nanos(cutoff)).bytes();
    table
        .retain_in::<&[u8], _>(..end.as_slice(), |_, _| false)
        .map_err(backend)?;
    Ok(())
}

fn to_json(t: &Throughput) -> String {
    serde_json::json!([t.service, t.operation, t.count, t.probabilities]).to_string()
}

fn from_json(s: &str) -> Result<Throughput, StorageError> {
    let (service, operation, count, probabilities): (String, String, u64, Vec<String>) =
        serde_json::from_str(s).map_err(backend)?;
    Ok(Throughput {
        service,
        operation,
        count,
        probabilities,
    })
}

fn at_nanos(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn write_tx<T>(
    db: &Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let tx = db.begin_write().map_err(backend)?;
    let out = f(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(out)
}

#[async_trait]
impl SamplingStore for EmbeddedStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        self.blocking(move |db| {
            write_tx(db, |tx| {
                let mut table = tx.open_table(THROUGHPUT).map_err(backend)?;
                let start = Key::new().u64(unix_nanos(bucket)).bytes();
                // rows already in the bucket (from other collectors) come first
                let taken = table
                    .range::<&[u8]>(start.as_slice()..)
                    .map_err(backend)?
                    .filter_map(|r| r.ok())
                    .take_while(|(k, _)| k.value().starts_with(&start))
                    .count() as u64;
                for (seq, t) in (taken..).zip(&throughput) {
                    let key = Key::new().u64(unix_nanos(bucket)).u64(seq).bytes();
                    table
                        .insert(key.as_slice(), to_json(t).as_str())
                        .map_err(backend)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(THROUGHPUT).map_err(backend)?;
            let (from, to) = (
                Key::new().u64(unix_nanos(start)).bytes(),
                Key::new().u64(unix_nanos(end)).bytes(),
            );
            let mut out = Vec::new();
            for row in table
                .range::<&[u8]>(from.as_slice()..to.as_slice())
                .map_err(backend)?
            {
                let (k, v) = row.map_err(backend)?;
                let bucket = u64::from_be_bytes(k.value()[..8].try_into().expect("bucket key"));
                out.push((at_nanos(bucket), from_json(v.value())?));
            }
            Ok(out)
        })
        .await
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        self.blocking(move |db| {
            write_tx(db, |tx| {
                let mut table = tx.open_table(PROBABILITIES).map_err(backend)?;
                let newer = table
                    .get("latest")
                    .map_err(backend)?
                    .is_some_and(|v| v.value().0 > unix_nanos(at));
                if !newer {
                    let json = serde_json::to_string(&probabilities).map_err(backend)?;
                    table
                        .insert("latest", (unix_nanos(at), json.as_str()))
                        .map_err(backend)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(backend)?;
            let table = tx.open_table(PROBABILITIES).map_err(backend)?;
            let Some(v) = table.get("latest").map_err(backend)? else {
                return Ok(None);
            };
            Ok(Some(serde_json::from_str(v.value().1).map_err(backend)?))
        })
        .await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.blocking(move |db| {
            write_tx(db, |tx| {
                let mut table = tx.open_table(LEASES).map_err(backend)?;
                let current = table.get(name.as_str()).map_err(backend)?.map(|v| {
                    let (holder, expires) = v.value();
                    Lease {
                        holder: holder.to_string(),
                        expires: from_unix_nanos(expires),
                    }
                });
                let free = Lease::may_take(current.as_ref(), &holder, now);
                if free {
                    table
                        .insert(name.as_str(), (holder.as_str(), unix_nanos(now + ttl)))
                        .map_err(backend)?;
                }
                Ok(free)
            })
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.blocking(move |db| {
            write_tx(db, |tx| {
                let mut table = tx.open_table(LEASES).map_err(backend)?;
                let held = table
                    .get(name.as_str())
                    .map_err(backend)?
                    .is_some_and(|v| v.value().0 == holder);
                if held {
                    table.remove(name.as_str()).map_err(backend)?;
                }
                Ok(())
            })
        })
        .await
    }
}
