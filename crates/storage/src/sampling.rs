//! What adaptive sampling keeps in storage, shared by all collectors: root
//! span throughput per time bucket, the probabilities the leader computed,
//! and the lease that makes one collector the leader.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::StorageError;

/// Sampled root spans of one operation seen by one collector in one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    pub service: String,
    pub operation: String,
    pub count: u64,
    /// The sampling probabilities the clients reported (`sampler.param`).
    pub probabilities: Vec<String>,
}

/// Who holds a lease and until when, as a store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub holder: String,
    pub expires: SystemTime,
}

impl Lease {
    /// The one rule of every store: `holder` may take the lease at `now`
    /// when nobody holds it, it holds it already, or the lease has expired.
    pub fn may_take(current: Option<&Lease>, holder: &str, now: SystemTime) -> bool {
        current.is_none_or(|l| l.holder == holder || l.expires <= now)
    }
}

/// service -> operation -> probability.
pub type ServiceProbabilities = BTreeMap<String, BTreeMap<String, f64>>;

#[async_trait]
pub trait SamplingStore: Send + Sync + 'static {
    /// Adds one collector's counts for the bucket starting at `bucket`; counts
    /// from several collectors for one bucket are all kept.
    async fn insert_throughput(
        &self,
        bucket: SystemTime,
        throughput: Vec<Throughput>,
    ) -> Result<(), StorageError>;

    /// Every count recorded for buckets starting within `[start, end)`, with its bucket.
    async fn get_throughput(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<(SystemTime, Throughput)>, StorageError>;

    /// Records the probabilities computed at `at`, replacing older ones.
    async fn insert_probabilities(
        &self,
        at: SystemTime,
        probabilities: ServiceProbabilities,
    ) -> Result<(), StorageError>;

    /// The latest probabilities, or None before any were computed.
    async fn get_latest_probabilities(&self) -> Result<Option<ServiceProbabilities>, StorageError>;

    /// Takes or renews the lease `name` for `holder` until `now + ttl`. True
    /// when `holder` holds it afterwards: it was free, expired, or already its.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StorageError>;

    /// Gives the lease up if `holder` has it, so another can take it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_may_be_taken_when_free_own_or_expired() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let held = |holder: &str, secs| Lease {
            holder: holder.into(),
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        };
        assert!(Lease::may_take(None, "a", now));
        assert!(Lease::may_take(Some(&held("a", 200)), "a", now));
        assert!(!Lease::may_take(Some(&held("b", 200)), "a", now));
        assert!(Lease::may_take(Some(&held("b", 100)), "a", now));
    }
}
