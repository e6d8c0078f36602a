use redb::ReadableTableMetadata;

use super::*;
use spoor_model::SpanId;

/// A new directory, deleted with its files when the guard drops.
fn dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("spoor-embedded-")
        .tempdir()
        .unwrap()
}

async fn fresh() -> EmbeddedStore {
    let d = dir();
    let store = EmbeddedStore::open(d.path()).unwrap();
    // the store holds its file open: the directory entry can go now, and the
    // space is freed when the test drops the store
    drop(d);
    store
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
    let d = dir();
    let now = SystemTime::now();
    {
        let store = EmbeddedStore::open(d.path()).unwrap();
        store
            .write_spans(vec![span(0xabc, 1, now, 10), span(0xabc, 2, now, 10)])
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(d.path()).unwrap();
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
    let d = dir();
    let store = EmbeddedStore::open(d.path()).unwrap();
    let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    for t in 0..200u128 {
        let spans = (0..10).map(|i| span(t + 1, i, old, 2_000)).collect();
        store.write_spans(spans).await.unwrap();
    }
    store
        .write_spans(vec![span(0xfeed, 1, SystemTime::now(), 10)])
        .await
        .unwrap();
    let file = d.path().join("spoor.redb");
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
    // the recent span's tag (its long-payload elders were not indexed) and duration
    assert_eq!(rows(&store, BY_TAG), 1);
    assert_eq!(rows(&store, BY_DURATION), 1);
}

fn rows(store: &EmbeddedStore, table: TableDefinition<&[u8], ()>) -> u64 {
    let db = store.db.read().unwrap();
    let tx = db.begin_read().unwrap();
    tx.open_table(table).unwrap().len().unwrap()
}

fn query(tags: &[(&str, &str)], duration_min: Option<Duration>) -> TraceQuery {
    TraceQuery {
        service_name: "svc".into(),
        operation_name: None,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        start_time_min: SystemTime::now() - Duration::from_secs(3600),
        start_time_max: SystemTime::now(),
        duration_min,
        duration_max: None,
        num_traces: 10,
    }
}

#[tokio::test]
async fn files_from_before_the_tag_and_duration_indexes_are_reindexed_at_open() {
    let d = dir();
    let store = EmbeddedStore::open(d.path()).unwrap();
    let mut slow = span(7, 1, SystemTime::now() - Duration::from_secs(5), 3);
    slow.duration = Duration::from_secs(2);
    store
        .write_spans(vec![slow, span(8, 1, SystemTime::now(), 3)])
        .await
        .unwrap();
    assert_eq!(rows(&store, BY_TAG), 2);
    {
        // what a version-1 file looks like: no tag or duration rows
        let db = store.db.read().unwrap();
        let tx = db.begin_write().unwrap();
        tx.delete_table(BY_TAG).unwrap();
        tx.delete_table(BY_DURATION).unwrap();
        let mut meta = tx.open_table(META).unwrap();
        meta.insert(INDEX_VERSION, 1).unwrap();
        meta.remove(TAG_INDEX_COMPLETE).unwrap();
        drop(meta);
        tx.commit().unwrap();
    }
    drop(store);
    let store = EmbeddedStore::open(d.path()).unwrap();
    assert_eq!(rows(&store, BY_TAG), 2);
    let by_tag = query(&[("payload", "xxx")], None);
    assert_eq!(
        store.find_trace_ids(&by_tag).await.unwrap(),
        [TraceId(8), TraceId(7)]
    );
    let slow_only = query(&[], Some(Duration::from_secs(1)));
    assert_eq!(
        store.find_trace_ids(&slow_only).await.unwrap(),
        [TraceId(7)]
    );
}

#[tokio::test]
async fn without_the_tag_index_tag_searches_still_answer_and_turning_it_on_builds_it() {
    let d = dir();
    let off = EmbeddedOptions { index_tags: false };
    let store = EmbeddedStore::open_with(d.path(), off).unwrap();
    store
        .write_spans(vec![span(5, 1, SystemTime::now(), 3)])
        .await
        .unwrap();
    assert_eq!(rows(&store, BY_TAG), 0);
    let q = query(&[("payload", "xxx")], None);
    assert_eq!(store.find_trace_ids(&q).await.unwrap(), [TraceId(5)]);
    drop(store);
    let store = EmbeddedStore::open(d.path()).unwrap();
    assert_eq!(rows(&store, BY_TAG), 1, "built at open");
    assert_eq!(store.find_trace_ids(&q).await.unwrap(), [TraceId(5)]);
}

/// A block store in a directory of its own, deleted when the test ends.
mod block_store {
    use super::*;

    pub struct Held {
        store: Arc<BlockStore>,
        /// Every write becomes a block before it returns.
        cut_each_write: bool,
        /// ... and small blocks are merged.
        compact: bool,
        _dir: tempfile::TempDir,
    }

    async fn open(cut_each_write: bool, compact: bool) -> Held {
        let d = dir();
        Held {
            store: BlockStore::open(d.path(), BlockOptions::default())
                .await
                .unwrap(),
            cut_each_write,
            compact,
            _dir: d,
        }
    }

    /// Everything stays in the head.
    pub async fn in_head() -> Held {
        open(false, false).await
    }

    /// Every write is a block of its own: queries merge many blocks.
    pub async fn in_blocks() -> Held {
        open(true, false).await
    }

    /// Every write is a block, and every four small blocks are merged into one.
    pub async fn in_merged_blocks() -> Held {
        open(true, true).await
    }

    #[async_trait]
    impl SpanWriter for Held {
        async fn write_spans(&self, spans: Vec<Span>) -> Result<(), StorageError> {
            self.store.write_spans(spans).await?;
            if self.cut_each_write {
                self.store.cut().await?;
                assert_eq!(self.store.block_counts().1, 0, "a head left unwritten");
            }
            if self.compact {
                self.store.compact().await?;
                assert!(
                    self.store.block_counts().0 < 4,
                    "small blocks left unmerged"
                );
            }
            Ok(())
        }
    }

    #[async_trait]
    impl SpanReader for Held {
        async fn get_trace(&self, id: TraceId) -> Result<Option<Trace>, StorageError> {
            self.store.get_trace(id).await
        }
        async fn get_services(&self) -> Result<Vec<String>, StorageError> {
            self.store.get_services().await
        }
        async fn get_operations(&self, q: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
            self.store.get_operations(q).await
        }
        async fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
            self.store.find_traces(q).await
        }
        async fn find_trace_ids(&self, q: &TraceQuery) -> Result<Vec<TraceId>, StorageError> {
            self.store.find_trace_ids(q).await
        }
    }

    #[async_trait]
    impl DependencyReader for Held {
        async fn get_dependencies(
            &self,
            end: SystemTime,
            lookback: Duration,
        ) -> Result<Vec<DependencyLink>, StorageError> {
            self.store.get_dependencies(end, lookback).await
        }
    }

    mod head {
        spoor_storage::storage_conformance_tests!(super::in_head);
    }

    mod blocks {
        spoor_storage::storage_conformance_tests!(super::in_blocks);
    }

    mod merged_blocks {
        spoor_storage::storage_conformance_tests!(super::in_merged_blocks);
    }

    /// The embedded archive: a block store of its own, the trace cut into
    /// a block there.
    #[tokio::test]
    async fn archived_traces_are_read_back_by_id() {
        let archive = spoor_storage::Archive::of(std::sync::Arc::new(in_blocks().await));
        spoor_storage::testsuite::archived_traces_are_read_back_by_id(&in_head().await, &archive)
            .await;
    }

    #[tokio::test]
    async fn merged_blocks_keep_traces_split_over_them_and_a_cut_short_merge_is_finished() {
        let (a, b) = (dir(), dir());
        let now = SystemTime::now();
        let options = BlockOptions::default();
        let store = BlockStore::open(a.path(), options).await.unwrap();
        // trace 0xf in every block, the others in one each
        for i in 0..6u64 {
            let spans = vec![
                span(0xf, 100 + i, now, 10),
                span(u128::from(i + 1), i + 1, now, 10),
            ];
            store.write_spans(spans).await.unwrap();
            store.cut().await.unwrap();
        }
        let copy_blocks = |from: &std::path::Path, to: &std::path::Path| {
            std::fs::create_dir_all(to.join("blocks")).unwrap();
            for e in std::fs::read_dir(from.join("blocks")).unwrap() {
                let p = e.unwrap().path();
                std::fs::copy(&p, to.join("blocks").join(p.file_name().unwrap())).unwrap();
            }
        };
        copy_blocks(a.path(), b.path());
        assert_eq!(store.compact().await.unwrap(), 6);
        assert_eq!(store.block_counts(), (1, 0));
        assert_eq!(
            store
                .get_trace(TraceId(0xf))
                .await
                .unwrap()
                .unwrap()
                .spans
                .len(),
            6
        );
        for i in 1..=6u128 {
            assert_eq!(
                store
                    .get_trace(TraceId(i))
                    .await
                    .unwrap()
                    .unwrap()
                    .spans
                    .len(),
                1
            );
        }
        // `b` as a kill would leave it after the merged block was in place,
        // before its inputs were deleted
        drop(store);
        copy_blocks(a.path(), b.path());
        assert_eq!(
            std::fs::read_dir(b.path().join("blocks")).unwrap().count(),
            7
        );
        let reopened = BlockStore::open(b.path(), options).await.unwrap();
        assert_eq!(reopened.block_counts(), (1, 0));
        assert_eq!(
            std::fs::read_dir(b.path().join("blocks")).unwrap().count(),
            1
        );
        assert_eq!(
            reopened
                .get_trace(TraceId(0xf))
                .await
                .unwrap()
                .unwrap()
                .spans
                .len(),
            6
        );
    }

    #[tokio::test]
    async fn a_head_past_its_size_is_cut_in_the_background() {
        let d = dir();
        let options = BlockOptions {
            head_bytes: 1,
            ..BlockOptions::default()
        };
        let store = BlockStore::open(d.path(), options).await.unwrap();
        let now = SystemTime::now();
        for i in 0..5 {
            store
                .write_spans(vec![span(0xc, i + 1, now, 10)])
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.block_counts().0 == 0 || store.block_counts().1 > 0 {
            assert!(std::time::Instant::now() < deadline, "no block written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            store
                .get_trace(TraceId(0xc))
                .await
                .unwrap()
                .unwrap()
                .spans
                .len(),
            5
        );
    }

    #[tokio::test]
    async fn acknowledged_spans_survive_reopening_from_the_log_and_from_blocks() {
        let d = dir();
        let now = SystemTime::now();
        let options = BlockOptions::default();
        {
            let store = BlockStore::open(d.path(), options).await.unwrap();
            store
                .write_spans(vec![span(0xa, 1, now, 10)])
                .await
                .unwrap();
            store.cut().await.unwrap();
            store
                .write_spans(vec![span(0xa, 2, now, 10), span(0xb, 3, now, 10)])
                .await
                .unwrap();
            assert_eq!(store.block_counts(), (1, 0));
        }
        let store = BlockStore::open(d.path(), options).await.unwrap();
        let ids = |t: Option<Trace>| {
            let mut ids: Vec<u64> = t.unwrap().spans.iter().map(|s| s.span_id.0).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(store.get_trace(TraceId(0xa)).await.unwrap()), [1, 2]);
        assert_eq!(ids(store.get_trace(TraceId(0xb)).await.unwrap()), [3]);
        // the replayed log becomes a block at the next cut, and its segments go
        store.cut().await.unwrap();
        assert_eq!(store.block_counts(), (2, 0));
        assert_eq!(
            crate::wal::segments(&d.path().join("wal")).unwrap().len(),
            1
        );
        drop(store);
        let store = BlockStore::open(d.path(), options).await.unwrap();
        assert_eq!(ids(store.get_trace(TraceId(0xa)).await.unwrap()), [1, 2]);
    }

    #[tokio::test]
    async fn the_disk_quota_deletes_the_oldest_blocks() {
        let d = dir();
        let store = BlockStore::open(d.path(), BlockOptions::default())
            .await
            .unwrap();
        let now = SystemTime::now();
        for i in 0..3u64 {
            let at = now - Duration::from_secs(3600 * (3 - i));
            store
                .write_spans(vec![span(u128::from(i + 1), i + 1, at, 1000)])
                .await
                .unwrap();
            store.cut().await.unwrap();
        }
        let sizes: u64 = store.stats().block_disk_bytes;
        let store = {
            drop(store);
            let options = BlockOptions {
                max_disk_bytes: sizes * 2 / 3 + 1,
                ..BlockOptions::default()
            };
            BlockStore::open(d.path(), options).await.unwrap()
        };
        assert_eq!(store.enforce_disk_quota().await.unwrap(), 1);
        assert!(
            store.get_trace(TraceId(1)).await.unwrap().is_none(),
            "the oldest block stayed"
        );
        assert!(store.get_trace(TraceId(3)).await.unwrap().is_some());
        assert_eq!(store.stats().deleted_by_quota, 1);
    }

    #[tokio::test]
    async fn retention_deletes_whole_blocks() {
        let d = dir();
        let store = BlockStore::open(d.path(), BlockOptions::default())
            .await
            .unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        store
            .write_spans(vec![span(0xa, 1, old, 10)])
            .await
            .unwrap();
        store.cut().await.unwrap();
        store
            .write_spans(vec![span(0xb, 2, SystemTime::now(), 10)])
            .await
            .unwrap();
        store.cut().await.unwrap();
        let cutoff = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(store.purge_before(cutoff).await.unwrap(), 1);
        assert!(store.get_trace(TraceId(0xa)).await.unwrap().is_none());
        assert!(store.get_trace(TraceId(0xb)).await.unwrap().is_some());
        assert_eq!(
            std::fs::read_dir(d.path().join("blocks")).unwrap().count(),
            1
        );
    }
}

#[tokio::test]
async fn a_redb_directory_is_migrated_to_blocks_with_its_spans_and_sampling_state() {
    use spoor_storage::SamplingStore;
    let d = dir();
    let now = SystemTime::now();
    {
        let old = EmbeddedStore::open(d.path()).unwrap();
        let spans: Vec<Span> = (0..25_000u64)
            .map(|i| span(u128::from(i / 10 + 1), i + 1, now, 10))
            .collect();
        old.write_spans(spans).await.unwrap();
        let probabilities = spoor_storage::ServiceProbabilities::from([(
            "svc".to_string(),
            std::collections::BTreeMap::from([("op".to_string(), 0.5)]),
        )]);
        old.insert_probabilities(now, probabilities).await.unwrap();
    }
    // a migration a crash cut short is started over
    std::fs::create_dir_all(d.path().join("migrating/blocks")).unwrap();
    std::fs::write(
        d.path().join("migrating/blocks/0000000000000001.parquet"),
        b"torn",
    )
    .unwrap();
    let options = BlockOptions::default();
    assert_eq!(migrate_redb(d.path(), options).await.unwrap(), Some(25_000));
    assert!(!d.path().join("spoor.redb").exists());
    assert!(!d.path().join("migrating").exists());
    assert_eq!(migrate_redb(d.path(), options).await.unwrap(), None);
    let store = BlockStore::open(d.path(), options).await.unwrap();
    assert_eq!(store.stats().block_spans, 25_000);
    let trace = store.get_trace(TraceId(7)).await.unwrap().unwrap();
    let mut ids: Vec<u64> = trace.spans.iter().map(|s| s.span_id.0).collect();
    ids.sort();
    assert_eq!(ids, (61..=70).collect::<Vec<_>>());
    let sampling = FileSamplingStore::open(d.path()).unwrap();
    assert_eq!(
        sampling.get_latest_probabilities().await.unwrap().unwrap()["svc"]["op"],
        0.5
    );
}
