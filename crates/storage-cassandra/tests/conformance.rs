//! The shared conformance suite against a real Cassandra or ScyllaDB node.
//! Runs when `SPOOR_CASSANDRA_SERVERS` names one (`docker compose --profile
//! cassandra up cassandra`, then `SPOOR_CASSANDRA_SERVERS=127.0.0.1`);
//! skipped otherwise. Each case gets its own keyspace, created with the
//! v004 schema.
use std::sync::atomic::{AtomicU32, Ordering};

use clap::Parser;
use spoor_storage_cassandra::{CassandraOptions, CassandraSamplingStore, CassandraStore};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    cassandra: CassandraOptions,
}

async fn store() -> Option<CassandraStore> {
    let servers = std::env::var("SPOOR_CASSANDRA_SERVERS").ok()?;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let keyspace = format!(
        "spoor_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let cli = Cli::parse_from([
        "test",
        "--cassandra.servers",
        &servers,
        "--cassandra.keyspace",
        &keyspace,
        "--cassandra.schema.create",
    ]);
    Some(
        CassandraStore::open(&cli.cassandra)
            .await
            .expect("open the cassandra store"),
    )
}

async fn sampling_store() -> Option<CassandraSamplingStore> {
    Some(
        store()
            .await?
            .sampling_store()
            .await
            .expect("sampling store"),
    )
}

spoor_storage::external_storage_conformance_tests!(store);
spoor_storage::external_sampling_store_conformance_tests!(sampling_store);

/// The archive in a keyspace of its own: a trace archived from the span
/// store is read back from it by id.
#[tokio::test]
#[ignore = "needs its server; scripts/test.sh runs it when SPOOR_CASSANDRA_SERVERS names one"]
async fn archived_traces_are_read_back_by_id_from_the_archive_keyspace() {
    use spoor_storage::Archive;
    let primary = store().await.expect("server");
    let archive = std::sync::Arc::new(store().await.expect("server"));
    spoor_storage::testsuite::archived_traces_are_read_back_by_id(&primary, &Archive::of(archive))
        .await;
}
