use super::*;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spoor-embedded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn fresh() -> EmbeddedStore {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    EmbeddedStore::open(&dir(&format!("suite-{n}"))).unwrap()
}

spoor_storage::storage_conformance_tests!(fresh);
spoor_storage::sampling_store_conformance_tests!(fresh);

fn span(trace: u128, id: u64, start: SystemTime, payload: usize) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: "op".into(),
        references: vec![],
        flags: 1,
        start_time: start,
        duration: Duration::from_millis(1),
        tags: vec![spoor_model::KeyValue::string(
            "payload",
            "x".repeat(payload),
        )],
        logs: vec![],
        process: std::sync::Arc::new(spoor_model::Process {
            service_name: "svc".into(),
            tags: vec![],
        }),
        warnings: vec![],
    }
}

#[tokio::test]
async fn spans_survive_reopening_the_store() {
    let d = dir("reopen");
    let now = SystemTime::now();
    {
        let store = EmbeddedStore::open(&d).unwrap();
        store
            .write_spans(vec![span(0xabc, 1, now, 10), span(0xabc, 2, now, 10)])
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(&d).unwrap();
    assert_eq!(
        store
            .get_trace(TraceId(0xabc))
            .await
            .unwrap()
            .unwrap()
            .spans
            .len(),
        2
    );
    assert_eq!(store.get_services().await.unwrap(), vec!["svc".to_string()]);
    // sequence numbers continue: a later span with a repeated id is kept beside the first
    store
        .write_spans(vec![span(0xabc, 1, now, 11)])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_trace(TraceId(0xabc))
            .await
            .unwrap()
            .unwrap()
            .spans
            .len(),
        3
    );
}

#[tokio::test]
async fn retention_deletes_old_spans_and_gives_the_disk_back() {
    let d = dir("retention");
    let store = EmbeddedStore::open(&d).unwrap();
    let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    for t in 0..200u128 {
        let spans = (0..10).map(|i| span(t + 1, i, old, 2_000)).collect();
        store.write_spans(spans).await.unwrap();
    }
    store
        .write_spans(vec![span(0xfeed, 1, SystemTime::now(), 10)])
        .await
        .unwrap();
    let file = d.join("spoor.redb");
    let before = std::fs::metadata(&file).unwrap().len();
    let deleted = store
        .purge_before(SystemTime::now() - Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(deleted, 2_000);
    let after = std::fs::metadata(&file).unwrap().len();
    assert!(after * 2 < before, "file {before} -> {after} bytes");
    assert!(store.get_trace(TraceId(1)).await.unwrap().is_none());
    assert!(
        store.get_trace(TraceId(0xfeed)).await.unwrap().is_some(),
        "recent spans kept"
    );
    let q = TraceQuery {
        service_name: "svc".into(),
        operation_name: Some("op".into()),
        tags: vec![],
        start_time_min: old - Duration::from_secs(60),
        start_time_max: SystemTime::now(),
        duration_min: None,
        duration_max: None,
        num_traces: 1000,
    };
    assert_eq!(
        store.find_trace_ids(&q).await.unwrap(),
        vec![TraceId(0xfeed)],
        "index rows went with the spans"
    );
}
