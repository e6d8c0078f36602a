//! The shared conformance suite against a real Elasticsearch or OpenSearch
//! server. Runs when `SPOOR_ES_URL` names one (`docker compose --profile
//! elasticsearch up elasticsearch`, then `SPOOR_ES_URL=http://127.0.0.1:9200`);
//! skipped otherwise. Each case writes under its own index prefix.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use clap::Parser;
use spoor_storage::Archive;
use spoor_storage_elasticsearch::{EsArchiveOptions, EsOptions, EsSamplingStore, EsStore};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    es: EsOptions,
    #[command(flatten)]
    archive: EsArchiveOptions,
}

fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "spoor-test-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store() -> Option<EsStore> {
    let url = std::env::var("SPOOR_ES_URL").ok()?;
    let prefix = unique_prefix();
    let cli = Cli::parse_from([
        "test",
        "--es.server-urls",
        &url,
        "--es.index-prefix",
        &prefix,
        "--es.bulk.refresh",
        "--es.bulk.flush-interval",
        "5ms",
        "--es.num-shards",
        "1",
        "--es.num-replicas",
        "0",
    ]);
    Some(
        EsStore::open(&cli.es.config().expect("options"))
            .await
            .expect("open the elasticsearch store"),
    )
}

async fn sampling_store() -> Option<EsSamplingStore> {
    Some(store().await?.sampling_store())
}

spoor_storage::external_storage_conformance_tests!(store);
spoor_storage::external_sampling_store_conformance_tests!(sampling_store);

/// The archive on its own index: a trace archived from the span store is
/// read back from `jaeger-span-archive` by id.
#[tokio::test]
#[ignore = "needs its server; scripts/test.sh runs it when SPOOR_ES_URL names one"]
async fn archived_traces_are_read_back_by_id_from_the_archive_index() {
    let url = std::env::var("SPOOR_ES_URL").expect("SPOOR_ES_URL names no server");
    let primary = store().await.expect("server");
    let cli = Cli::parse_from([
        "test",
        "--es-archive.enabled",
        "--es-archive.server-urls",
        &url,
        "--es-archive.index-prefix",
        &unique_prefix(),
        "--es-archive.bulk.refresh",
        "--es-archive.num-shards",
        "1",
        "--es-archive.num-replicas",
        "0",
    ]);
    let archive = std::sync::Arc::new(
        EsStore::open(&cli.archive.config().expect("options"))
            .await
            .expect("open the archive"),
    );
    spoor_storage::testsuite::archived_traces_are_read_back_by_id(&primary, &Archive::of(archive))
        .await;
}
