//! Adaptive sampling's state beside the block store: held in memory and
//! saved to `sampling.json` (written to a temporary file, synced, renamed)
//! after each change, so a restarted all-in-one keeps its probabilities and
//! the recent throughput they were computed from. Leases are held in
//! memory only: one process owns the data directory.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use spoor_storage::{SamplingStore, ServiceProbabilities, StorageError, Throughput};
use spoor_storage_memory::MemorySamplingStore;

use crate::backend;
use spoor_model::time::{from_unix_nanos, unix_nanos};

/// Buckets of throughput kept; older ones are dropped (the leader reads the
/// last few only).
const MAX_BUCKETS: usize = 1_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Count {
    service: String,
    operation: String,
    count: u64,
    probabilities: Vec<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    /// bucket start (ns since the epoch) -> counts
    throughput: BTreeMap<u64, Vec<Count>>,
    /// (computed at, ns since the epoch; probabilities)
    probabilities: Option<(u64, ServiceProbabilities)>,
}

pub struct FileSamplingStore {
    path: PathBuf,
    saved: Mutex<Saved>,
    /// Leases only: the memory store's, as one process owns the directory.
    leases: MemorySamplingStore,
}

impl FileSamplingStore {
    /// Opens the state saved in `dir`, or starts empty.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join("sampling.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| backend(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(backend(format!("{}: {e}", path.display()))),
        };
        Ok(FileSamplingStore {
            path,
            saved: Mutex::new(saved),
            leases: MemorySamplingStore::default(),
        })
    }

    fn change(&self, f: impl FnOnce(&mut Saved)) -> Result<(), StorageError> {
        let mut saved = self.saved.lock().expect("sampling state lock poisoned");
        f(&mut saved);
        let json = serde_json::to_vec(&*saved).map_err(backend)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(backend)?;
        file.write_all(&json).map_err(backend)?;
        file.sync_all().map_err(backend)?;
        std::fs::rename(&tmp, &self.path).map_err(backend)
    }
}

#[async_trait]
impl SamplingStore for FileSamplingStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        self.change(|s| {
            s.throughput
                .entry(unix_nanos(bucket))
                .or_default()
                .extend(throughput.into_iter().map(|t| Count {
                    service: t.service,
                    operation: t.operation,
                    count: t.count,
                    probabilities: t.probabilities,
                }));
            while s.throughput.len() > MAX_BUCKETS {
                s.throughput.pop_first();
            }
        })
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        let s = self.saved.lock().expect("sampling state lock poisoned");
        Ok(s.throughput
            .range(unix_nanos(start)..unix_nanos(end))
            .flat_map(|(bucket, counts)| {
                counts.iter().map(|c| {
                    (
                        from_unix_nanos(*bucket),
                        Throughput {
                            service: c.service.clone(),
                            operation: c.operation.clone(),
                            count: c.count,
                            probabilities: c.probabilities.clone(),
                        },
                    )
                })
            })
            .collect())
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        self.change(|s| {
            if s.probabilities
                .as_ref()
                .is_none_or(|(t, _)| *t <= unix_nanos(at))
            {
                s.probabilities = Some((unix_nanos(at), probabilities));
            }
        })
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        let s = self.saved.lock().expect("sampling state lock poisoned");
        Ok(s.probabilities.as_ref().map(|(_, p)| p.clone()))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        self.leases.acquire_lease(name, holder, ttl, now).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        self.leases.release_lease(name, holder).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// A store with the directory it writes to, deleted at the end.
    struct Held {
        store: FileSamplingStore,
        _dir: tempfile::TempDir,
    }

    async fn fresh() -> Held {
        let d = tempfile::tempdir().unwrap();
        Held {
            store: FileSamplingStore::open(d.path()).unwrap(),
            _dir: d,
        }
    }

    #[async_trait]
    impl SamplingStore for Held {
        async fn insert_throughput(
            &self,
            b: SystemTime,
            t: Vec<Throughput>,
        ) -> Result<(), StorageError> {
            self.store.insert_throughput(b, t).await
        }
        async fn get_throughput(
            &self,
            s: SystemTime,
            e: SystemTime,
        ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
            self.store.get_throughput(s, e).await
        }
        async fn insert_probabilities(
            &self,
            at: SystemTime,
            p: ServiceProbabilities,
        ) -> Result<(), StorageError> {
            self.store.insert_probabilities(at, p).await
        }
        async fn get_latest_probabilities(
            &self,
        ) -> Result<Option<ServiceProbabilities>, StorageError> {
            self.store.get_latest_probabilities().await
        }
        async fn acquire_lease(
            &self,
            n: &str,
            h: &str,
            ttl: Duration,
            now: SystemTime,
        ) -> Result<bool, StorageError> {
            self.store.acquire_lease(n, h, ttl, now).await
        }
        async fn release_lease(&self, n: &str, h: &str) -> Result<(), StorageError> {
            self.store.release_lease(n, h).await
        }
    }

    spoor_storage::sampling_store_conformance_tests!(fresh);

    #[tokio::test]
    async fn probabilities_and_throughput_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        {
            let s = FileSamplingStore::open(d.path()).unwrap();
            let probabilities = ServiceProbabilities::from([(
                "svc".to_string(),
                BTreeMap::from([("op".to_string(), 0.25)]),
            )]);
            s.insert_probabilities(at, probabilities).await.unwrap();
            let t = Throughput {
                service: "svc".into(),
                operation: "op".into(),
                count: 7,
                probabilities: vec!["0.25".into()],
            };
            s.insert_throughput(at, vec![t]).await.unwrap();
        }
        let s = FileSamplingStore::open(d.path()).unwrap();
        let latest = s.get_latest_probabilities().await.unwrap().unwrap();
        assert_eq!(latest["svc"]["op"], 0.25);
        let counts = s
            .get_throughput(at, at + Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].1.count, 7);
    }
}
