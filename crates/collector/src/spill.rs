//! Spans left in the queue at the shutdown deadline, kept on disk instead of
//! lost, and written to storage at the next start. One file per shutdown:
//! length-delimited api_v2 `Batch`es, each span with its own process.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use prost::Message;
use spoor_model::Span;
use spoor_proto::api_v2;
use spoor_storage::SpanWriter;

const PREFIX: &str = "collector-spill-";

/// Writes `batches` to a new file in `dir`, synced; returns its path.
pub fn write(dir: &Path, batches: &[Vec<Span>]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let path = dir.join(format!("{PREFIX}{nanos}.pb"));
    let partial = path.with_extension("partial");
    let mut bytes = Vec::new();
    for spans in batches {
        let batch = api_v2::Batch {
            spans: spans.iter().map(spoor_proto::span_to_proto).collect(),
            process: None,
        };
        batch.encode_length_delimited(&mut bytes)?;
    }
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("while creating {}", partial.display()))?;
    std::io::Write::write_all(&mut &file, &bytes)?;
    file.sync_all()?;
    // complete files only: a crash while writing leaves a .partial, ignored
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Writes every spill file in `dir` to `writer`, oldest first, deleting
/// each once stored; returns the spans written.
pub async fn replay(dir: &Path, writer: &dyn SpanWriter) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "pb")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX))
        })
        .collect();
    files.sort();
    let mut written = 0;
    for path in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("while reading {}", path.display()))?;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let batch = api_v2::Batch::decode_length_delimited(&mut rest)
                .with_context(|| format!("while decoding {}", path.display()))?;
            let (spans, _) = spoor_proto::spans_from_batch(batch);
            written += spans.len();
            match writer.write_spans(spans).await {
                Ok(()) | Err(spoor_storage::StorageError::SpansRefused { .. }) => {}
                Err(e) => return Err(e).context("while writing spilled spans"),
            }
        }
        std::fs::remove_file(&path)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use spoor_model::{Process, SpanId, TraceId};
    use spoor_storage::SpanReader;
    use spoor_storage_memory::{MemoryConfig, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn spilled_spans_are_written_at_the_next_start_once() {
        let dir = tempfile::tempdir().unwrap();
        let process = Arc::new(Process {
            service_name: "spilled".into(),
            tags: vec![],
        });
        let span = |t: u128| Span {
            trace_id: TraceId(t),
            span_id: SpanId(1),
            operation_name: "op".into(),
            references: vec![],
            flags: 1,
            start_time: SystemTime::now(),
            duration: std::time::Duration::from_millis(2),
            tags: vec![],
            logs: vec![],
            process: Arc::clone(&process),
            warnings: vec![],
        };
        write(dir.path(), &[vec![span(1), span(2)], vec![span(3)]]).unwrap();
        std::fs::write(dir.path().join("collector-spill-9.partial"), b"torn").unwrap();
        let store = MemoryStore::new(MemoryConfig {
            max_traces: 0,
            max_bytes: 1 << 30,
        });
        assert_eq!(replay(dir.path(), &store).await.unwrap(), 3);
        for t in 1..=3 {
            assert!(store.get_trace(TraceId(t)).await.unwrap().is_some());
        }
        assert_eq!(
            replay(dir.path(), &store).await.unwrap(),
            0,
            "replayed once"
        );
    }
}
