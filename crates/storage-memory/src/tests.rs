use super::*;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use spoor_model::Process;

async fn unbounded() -> MemoryStore {
    MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: usize::MAX,
    })
}

spoor_storage::storage_conformance_tests!(unbounded);

fn span(trace: u128, id: u64, big: usize) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: format!("{trace}{}", "x".repeat(big)),
        references: vec![],
        flags: 0,
        start_time: UNIX_EPOCH + Duration::from_secs(trace as u64),
        duration: Duration::ZERO,
        tags: vec![],
        logs: vec![],
        process: Arc::new(Process {
            service_name: "svc".into(),
            tags: vec![],
        }),
        warnings: vec![],
    }
}

#[tokio::test]
async fn trace_count_bound_evicts_oldest_first_and_counts() {
    let store = MemoryStore::new(MemoryConfig {
        max_traces: 3,
        max_bytes: usize::MAX,
    });
    for t in 1..=5 {
        store
            .write_spans(vec![span(t, 1, 1), span(t, 2, 1)])
            .await
            .unwrap();
    }
    assert!(store.get_trace(TraceId(1)).await.unwrap().is_none());
    assert!(store.get_trace(TraceId(2)).await.unwrap().is_none());
    for t in 3..=5 {
        assert!(
            store.get_trace(TraceId(t)).await.unwrap().is_some(),
            "trace {t} kept"
        );
    }
    let stats = store.stats();
    assert_eq!((stats.traces, stats.spans), (3, 6));
    assert_eq!((stats.evicted_traces, stats.evicted_spans), (2, 4));
}

#[tokio::test]
async fn byte_budget_holds_under_many_traces() {
    let budget = 1 << 20;
    let store = MemoryStore::new(MemoryConfig {
        max_traces: 0,
        max_bytes: budget,
    });
    for t in 1..=10_000u128 {
        store.write_spans(vec![span(t, 1, 1_000)]).await.unwrap();
    }
    let stats = store.stats();
    assert!(
        stats.bytes as usize <= budget,
        "{} bytes over a {budget} budget",
        stats.bytes
    );
    assert!(
        stats.evicted_traces > 8_000,
        "evicted {}",
        stats.evicted_traces
    );
    assert!(
        store.get_trace(TraceId(10_000)).await.unwrap().is_some(),
        "newest kept"
    );
    assert!(
        store.get_trace(TraceId(1)).await.unwrap().is_none(),
        "oldest evicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_see_whole_traces() {
    let store = Arc::new(unbounded().await);
    let writers: Vec<_> = (0..8u128)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for t in 0..200u128 {
                    let id = w * 1_000 + t + 1;
                    store
                        .write_spans(vec![span(id, 1, 1), span(id, 2, 1)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for _ in 0..50 {
                let q = TraceQuery {
                    service_name: "svc".into(),
                    operation_name: None,
                    tags: vec![],
                    start_time_min: UNIX_EPOCH,
                    start_time_max: UNIX_EPOCH + Duration::from_secs(1 << 20),
                    duration_min: None,
                    duration_max: None,
                    num_traces: 20,
                };
                for t in store.find_traces(&q).await.unwrap() {
                    assert!(!t.spans.is_empty());
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    reader.await.unwrap();
    assert_eq!(store.stats().spans, 8 * 200 * 2);
}

#[tokio::test]
async fn evicted_traces_free_their_unique_strings() {
    let store = MemoryStore::new(MemoryConfig {
        max_traces: 10,
        max_bytes: usize::MAX,
    });
    let mut bytes_after_warmup = 0;
    for t in 1..=5_000u128 {
        let mut s = span(t, 1, 1);
        s.tags.push(spoor_model::KeyValue::string(
            "request.id",
            format!("req-{t}-{}", "y".repeat(100)),
        ));
        store.write_spans(vec![s]).await.unwrap();
        if t == 100 {
            bytes_after_warmup = store.stats().bytes;
        }
    }
    let stats = store.stats();
    assert_eq!(stats.traces, 10);
    assert!(
        stats.bytes <= bytes_after_warmup + 1_000,
        "{} grew from {bytes_after_warmup}",
        stats.bytes
    );
}

#[tokio::test]
async fn every_value_type_round_trips_and_matches_by_its_text() {
    use spoor_model::{KeyValue, Log, Value};
    let store = unbounded().await;
    let mut s = span(0x99, 1, 1);
    s.tags = vec![
        KeyValue::new("s", Value::String("text".into())),
        KeyValue::new("b", Value::Bool(false)),
        KeyValue::new("i", Value::Int64(i64::MIN)),
        KeyValue::new("f", Value::Float64(-0.25)),
        KeyValue::new("bin", Value::Binary(vec![0, 0xab, 0xff])),
    ];
    s.logs = vec![Log {
        timestamp: UNIX_EPOCH,
        fields: vec![KeyValue::new("log.bin", Value::Binary(vec![]))],
    }];
    s.warnings = vec!["clock skew".into()];
    store.write_spans(vec![s.clone()]).await.unwrap();
    assert_eq!(
        store.get_trace(TraceId(0x99)).await.unwrap().unwrap().spans,
        vec![s]
    );
    for (key, text, hit) in [
        ("s", "text", true),
        ("b", "false", true),
        ("i", "-9223372036854775808", true),
        ("f", "-0.25", true),
        ("bin", "00abff", true),
        ("bin", "00ABFF", false),
        ("i", "0", false),
    ] {
        let q = TraceQuery {
            service_name: "svc".into(),
            operation_name: None,
            tags: vec![(key.into(), text.into())],
            start_time_min: UNIX_EPOCH,
            start_time_max: UNIX_EPOCH + Duration::from_secs(1 << 20),
            duration_min: None,
            duration_max: None,
            num_traces: 10,
        };
        assert_eq!(
            store.find_trace_ids(&q).await.unwrap().len(),
            hit as usize,
            "{key}={text}"
        );
    }
}

async fn sampling_store() -> MemorySamplingStore {
    MemorySamplingStore::default()
}

spoor_storage::sampling_store_conformance_tests!(sampling_store);

#[tokio::test]
async fn one_endless_trace_cannot_outgrow_the_budget() {
    let budget = 64 * 1024;
    let store = MemoryStore::new(MemoryConfig {
        max_traces: 10,
        max_bytes: budget,
    });
    for i in 0..5_000u64 {
        store.write_spans(vec![span(7, i, 100)]).await.unwrap();
    }
    let stats = store.stats();
    assert!(
        stats.bytes as usize <= budget,
        "{} bytes over {budget}",
        stats.bytes
    );
    assert!(
        stats.dropped_spans > 4_000,
        "dropped {}",
        stats.dropped_spans
    );
    assert_eq!(stats.spans + stats.dropped_spans, 5_000);
    assert!(
        store.get_trace(TraceId(7)).await.unwrap().is_some(),
        "what fitted is kept"
    );
}
