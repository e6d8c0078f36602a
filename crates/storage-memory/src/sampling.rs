//! The memory store's share of adaptive sampling: throughput buckets (kept
//! for a bounded number of buckets), the latest probabilities, and leases.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use spoor_storage::{Lease, SamplingStore, ServiceProbabilities, StorageError, Throughput};

/// Buckets of throughput kept; older ones are dropped (the leader reads the
/// last few only).
const MAX_BUCKETS: usize = 1_000;

#[derive(Default)]
struct State {
    throughput: BTreeMap<SystemTime, Vec<Throughput>>,
    probabilities: Option<(SystemTime, ServiceProbabilities)>,
    leases: HashMap<String, Lease>,
}

/// In-process sampling store: collectors in one process share it.
#[derive(Default)]
pub struct MemorySamplingStore {
    state: Mutex<State>,
}

impl MemorySamplingStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("sampling store lock poisoned")
    }
}

#[async_trait]
impl SamplingStore for MemorySamplingStore {
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError> {
        let mut s = self.state();
        s.throughput.entry(bucket).or_default().extend(throughput);
        while s.throughput.len() > MAX_BUCKETS {
            s.throughput.pop_first();
        }
        Ok(())
    }

    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError> {
        let s = self.state();
        Ok(s.throughput
            .range(start..end)
            .flat_map(|(bucket, ts)| ts.iter().map(|t| (*bucket, t.clone())))
            .collect())
    }

    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError> {
        let mut s = self.state();
        if s.probabilities.as_ref().is_none_or(|(t, _)| *t <= at) {
            s.probabilities = Some((at, probabilities));
        }
        Ok(())
    }

    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError> {
        Ok(self.state().probabilities.as_ref().map(|(_, p)| p.clone()))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError> {
        let mut s = self.state();
        let free = Lease::may_take(s.leases.get(name), holder, now);
        if free {
            let lease = Lease {
                holder: holder.to_string(),
                expires: now + ttl,
            };
            s.leases.insert(name.to_string(), lease);
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        let mut s = self.state();
        if s.leases.get(name).is_some_and(|l| l.holder == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }
}
