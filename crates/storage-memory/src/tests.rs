use super::*;
use spoor_storage::StorageError;
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
    let mut refused = 0;
    for i in 0..5_000u64 {
        match store.write_spans(vec![span(7, i, 100)]).await {
            Ok(()) => {}
            Err(StorageError::SpansRefused { count, reason }) => {
                assert!(reason.contains("bytes per trace"), "{reason}");
                refused += count as u64;
            }
            Err(e) => panic!("{e}"),
        }
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
    // every refused span was reported to the writer, and the trace says so
    assert_eq!(refused, stats.dropped_spans);
    let trace = store
        .get_trace(TraceId(7))
        .await
        .unwrap()
        .expect("what fitted is kept");
    let warnings: Vec<&String> = trace.spans.iter().flat_map(|s| &s.warnings).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!("{refused} span(s) of this trace were not stored")),
        "{}",
        warnings[0]
    );
}

/// The dependencies job's computation, run over this store, agrees with the
/// links the store derives itself.
#[tokio::test]
async fn computed_dependencies_match_the_stores_own() {
    let store = unbounded().await;
    let now = SystemTime::now();
    let mut spans = Vec::new();
    for t in 1..=20u128 {
        let call = |id: u64, service: &str, parent: Option<u64>| Span {
            trace_id: TraceId(t),
            span_id: SpanId(id),
            references: parent
                .map(|p| spoor_model::SpanRef {
                    trace_id: TraceId(t),
                    span_id: SpanId(p),
                    ref_type: RefType::ChildOf,
                })
                .into_iter()
                .collect(),
            start_time: now - Duration::from_secs(60),
            process: Arc::new(Process {
                service_name: service.into(),
                tags: vec![],
            }),
            ..span(t, id, 0)
        };
        spans.push(call(1, "web", None));
        spans.push(call(2, "api", Some(1)));
        spans.push(call(3, "db", Some(2)));
        if t % 2 == 0 {
            spans.push(call(4, "cache", Some(2)));
        }
    }
    store.write_spans(spans).await.unwrap();
    let window = Duration::from_secs(3600);
    let own = store.get_dependencies(now, window).await.unwrap();
    let computed = spoor_storage::compute_dependencies(&store, now, window, 1000)
        .await
        .unwrap();
    assert_eq!(computed, own);
    let counts: Vec<(&str, &str, u64)> = computed
        .iter()
        .map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count))
        .collect();
    assert_eq!(
        counts,
        [("api", "cache", 10), ("api", "db", 20), ("web", "api", 20)]
    );
}

/// The all-in-one's memory archive: a second memory store.
#[tokio::test]
async fn archived_traces_are_read_back_by_id() {
    let archive = spoor_storage::Archive::of(Arc::new(unbounded().await));
    spoor_storage::testsuite::archived_traces_are_read_back_by_id(&unbounded().await, &archive)
        .await;
}
