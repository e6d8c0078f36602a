//! Moving a data directory of the redb engine to the blocks engine, on the
//! blocks engine's first start. The spans and the sampling state are copied
//! into a store in `migrating/`; only when that store is whole, synced, and
//! holds as many spans as the redb file are its blocks moved into
//! `blocks/` and the redb file deleted. A crash before that leaves the redb
//! file as it was, and the next start begins again.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use spoor_storage::{SamplingStore, SpanWriter, StorageError};

use crate::blocks::{BlockOptions, BlockStore};
use crate::sampling_file::FileSamplingStore;
use crate::{EmbeddedStore, backend};

const REDB_FILE: &str = "spoor.redb";
const MIGRATING: &str = "migrating";
/// Spans per write into the new store.
const BATCH: usize = 10_000;

/// Migrates `dir` when it holds a redb store; returns the spans moved
/// (None when there was nothing to migrate).
pub async fn migrate_redb(dir: &Path, options: BlockOptions) -> Result<Option<u64>, StorageError> {
    let redb = dir.join(REDB_FILE);
    if !redb.exists() {
        return Ok(None);
    }
    let staging = dir.join(MIGRATING);
    if staging.exists() {
        tracing::warn!(dir = %staging.display(), "embedded store: an unfinished migration is started over");
        std::fs::remove_dir_all(&staging).map_err(backend)?;
    }
    if std::fs::read_dir(dir.join("blocks")).is_ok_and(|mut d| d.next().is_some()) {
        return Err(backend(format!(
            "{} holds both a redb store ({REDB_FILE}) and blocks: move one of them away, \
             or start with --embedded.engine=redb to keep reading the redb store",
            dir.display()
        )));
    }
    tracing::info!(file = %redb.display(), "embedded store: migrating the redb store to blocks");
    let old = std::sync::Arc::new(EmbeddedStore::open(dir)?);
    let new = BlockStore::open(&staging, options).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<spoor_model::Span>>(2);
    let reader = {
        let old = std::sync::Arc::clone(&old);
        tokio::task::spawn_blocking(move || {
            old.for_each_batch(BATCH, |spans| {
                tx.blocking_send(spans)
                    .map_err(|_| backend("migration writer stopped"))
            })
        })
    };
    let mut moved = 0u64;
    while let Some(spans) = rx.recv().await {
        moved += spans.len() as u64;
        new.write_spans(spans).await?;
    }
    reader.await.map_err(backend)??;
    new.cut().await?;
    let in_blocks = new.stats().block_spans;
    if in_blocks != moved {
        return Err(backend(format!(
            "migration wrote {in_blocks} spans of {moved}; {REDB_FILE} is kept"
        )));
    }
    // adaptive sampling's state: the latest probabilities and the throughput
    let sampling = FileSamplingStore::open(&staging)?;
    if let Some(p) = old.get_latest_probabilities().await? {
        sampling.insert_probabilities(SystemTime::now(), p).await?;
    }
    let mut buckets: Vec<(SystemTime, Vec<spoor_storage::Throughput>)> = Vec::new();
    for (bucket, t) in old.get_throughput(UNIX_EPOCH, SystemTime::now()).await? {
        match buckets.last_mut() {
            Some((b, ts)) if *b == bucket => ts.push(t),
            _ => buckets.push((bucket, vec![t])),
        }
    }
    for (bucket, ts) in buckets {
        sampling.insert_throughput(bucket, ts).await?;
    }
    drop(new);
    drop(old);
    // the new store is whole: put it in place, then let the old one go
    std::fs::create_dir_all(dir.join("blocks")).map_err(backend)?;
    for entry in std::fs::read_dir(staging.join("blocks")).map_err(backend)? {
        let path = entry.map_err(backend)?.path();
        let name = path.file_name().expect("a file name");
        std::fs::rename(&path, dir.join("blocks").join(name)).map_err(backend)?;
    }
    crate::wal::sync_dir(&dir.join("blocks")).map_err(backend)?;
    if staging.join("sampling.json").exists() {
        std::fs::rename(staging.join("sampling.json"), dir.join("sampling.json"))
            .map_err(backend)?;
    }
    std::fs::remove_file(&redb).map_err(backend)?;
    crate::wal::sync_dir(dir).map_err(backend)?;
    std::fs::remove_dir_all(&staging).map_err(backend)?;
    tracing::info!(
        spans = moved,
        "embedded store: migrated to blocks; the redb file is deleted"
    );
    Ok(Some(moved))
}
