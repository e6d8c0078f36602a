//! Conformance cases of the adaptive sampling store.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{SamplingStore, Throughput};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn throughput(op: &str, count: u64) -> Throughput {
    Throughput {
        service: "svc".into(),
        operation: op.into(),
        count,
        probabilities: vec!["0.001".into()],
    }
}

pub async fn throughput_is_kept_per_bucket_from_every_collector(store: &impl SamplingStore) {
    store
        .insert_throughput(at(0), vec![throughput("a", 5)])
        .await
        .unwrap();
    store
        .insert_throughput(at(0), vec![throughput("a", 7)])
        .await
        .unwrap();
    store
        .insert_throughput(at(60), vec![throughput("b", 1)])
        .await
        .unwrap();
    store
        .insert_throughput(at(120), vec![throughput("c", 1)])
        .await
        .unwrap();
    let got = store.get_throughput(at(0), at(120)).await.unwrap();
    let mut counts: Vec<(u64, String, u64)> = got
        .iter()
        .map(|(b, t)| {
            (
                b.duration_since(at(0)).unwrap().as_secs(),
                t.operation.clone(),
                t.count,
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![(0, "a".into(), 5), (0, "a".into(), 7), (60, "b".into(), 1)]
    );
}

pub async fn latest_probabilities_win(store: &impl SamplingStore) {
    assert_eq!(store.get_latest_probabilities().await.unwrap(), None);
    let probs =
        |p: f64| BTreeMap::from([("svc".to_string(), BTreeMap::from([("op".to_string(), p)]))]);
    store
        .insert_probabilities(at(60), probs(0.5))
        .await
        .unwrap();
    store.insert_probabilities(at(0), probs(0.1)).await.unwrap();
    assert_eq!(
        store.get_latest_probabilities().await.unwrap(),
        Some(probs(0.5))
    );
    store
        .insert_probabilities(at(120), probs(0.7))
        .await
        .unwrap();
    assert_eq!(
        store.get_latest_probabilities().await.unwrap(),
        Some(probs(0.7))
    );
}

pub async fn one_holder_has_a_lease_until_it_expires_or_is_released(store: &impl SamplingStore) {
    let ttl = Duration::from_secs(10);
    assert!(
        store
            .acquire_lease("leader", "a", ttl, at(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("leader", "b", ttl, at(5))
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("leader", "a", ttl, at(8))
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !store
            .acquire_lease("leader", "b", ttl, at(15))
            .await
            .unwrap(),
        "renewal extended it to 18"
    );
    assert!(
        store
            .acquire_lease("leader", "b", ttl, at(18))
            .await
            .unwrap(),
        "expired"
    );
    store.release_lease("leader", "a").await.unwrap();
    assert!(
        !store
            .acquire_lease("leader", "a", ttl, at(19))
            .await
            .unwrap(),
        "only the holder releases"
    );
    store.release_lease("leader", "b").await.unwrap();
    assert!(
        store
            .acquire_lease("leader", "a", ttl, at(19))
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("other", "b", ttl, at(19))
            .await
            .unwrap(),
        "leases are per name"
    );
}
