//! Where blocks live: an object store behind the `object_store` crate's
//! interface, the local filesystem by default. Blocks are written whole
//! (one put, or a multipart upload for large ones) and read by byte ranges,
//! so the same code can later keep them in S3-compatible storage; the
//! write-ahead log and the head stay local files.
//!
//! The block code is synchronous and runs on blocking threads; it waits here
//! for the store's futures on the runtime it was opened in.
use std::future::Future;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Location;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use parquet::errors::ParquetError;
use spoor_storage::StorageError;

use crate::backend;

/// Bytes of a block sent per part of a multipart upload; a smaller block
/// is one put. (S3 wants parts of at least 5 MiB.)
const PART_BYTES: usize = 8 << 20;
/// Bytes fetched at least per request outside a read's plan: the footer
/// and page headers are read a little at a time.
const WINDOW_BYTES: u64 = 64 << 10;
/// Ranges fetched outside a plan that one read keeps.
const MAX_WINDOWS: usize = 256;

/// A store of block objects and the runtime that drives its futures.
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Handle,
    /// Read requests made, and the bytes they fetched.
    reads: AtomicU64,
    read_bytes: AtomicU64,
    /// The runtime made for a store opened outside of one (unit tests).
    _own: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects({})", self.store)
    }
}

fn err(e: object_store::Error) -> StorageError {
    backend(e)
}

impl Objects {
    /// Blocks as files in `dir`, each synced (file and directory) before a
    /// write returns, as a remote object store's write is durable.
    pub fn local(dir: &Path) -> Result<Arc<Objects>, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        // a crash during a write leaves the local store's staging file
        // (`<name>#<n>`), which it does not list: remove those
        for entry in std::fs::read_dir(dir).map_err(backend)? {
            let path = entry.map_err(backend)?.path();
            let staged = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split_once('#'))
                .is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()));
            if staged || path.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&path).map_err(backend)?;
            }
        }
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(err)?
            .with_fsync(true);
        Ok(Arc::new(Self::new(Arc::new(store))))
    }

    fn new(store: Arc<dyn ObjectStore>) -> Objects {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Objects {
                store,
                runtime,
                reads: AtomicU64::new(0),
                read_bytes: AtomicU64::new(0),
                _own: None,
            },
            Err(_) => {
                let own = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the block store");
                Objects {
                    store,
                    runtime: own.handle().clone(),
                    reads: AtomicU64::new(0),
                    read_bytes: AtomicU64::new(0),
                    _own: Some(own),
                }
            }
        }
    }

    /// Waits for `f`; called only from blocking threads.
    fn wait<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Read requests made so far, and the bytes they fetched.
    pub fn reads(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.read_bytes.load(Ordering::Relaxed),
        )
    }

    /// Fetches `ranges` of `at` in one request.
    fn get_ranges(&self, at: &Location, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, ParquetError> {
        let bytes = self
            .wait(self.store.get_ranges(at, ranges))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let n: usize = bytes.iter().map(Bytes::len).sum();
        self.read_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// The name of block `id`.
    pub fn location(id: u64) -> Location {
        Location::from(format!("{id:016}.parquet"))
    }

    /// Every object, with its size.
    pub fn list(&self) -> Result<Vec<(Location, u64)>, StorageError> {
        self.wait(async {
            let mut found = Vec::new();
            let mut listing = self.store.list(None);
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(err)?;
                found.push((meta.location, meta.size));
            }
            Ok(found)
        })
    }

    pub fn size(&self, at: &Location) -> Result<u64, StorageError> {
        Ok(self.wait(self.store.head(at)).map_err(err)?.size)
    }

    /// Deletes `at`, from a blocking thread.
    pub fn delete(&self, at: &Location) -> Result<(), StorageError> {
        self.wait(self.store.delete(at)).map_err(err)
    }

    /// Deletes `at`, from async code.
    pub async fn delete_async(&self, at: &Location) -> Result<(), StorageError> {
        self.store.delete(at).await.map_err(err)
    }

    /// Deletes `at` in the background (from a `Drop`).
    pub fn delete_later(&self, at: Location) {
        let store = Arc::clone(&self.store);
        self.runtime.spawn(async move {
            if let Err(e) = store.delete(&at).await {
                tracing::warn!(block = %at, error = %e, "embedded store: a block was not deleted");
            }
        });
    }

    /// A writer of a new object `at`, which appears whole when finished.
    pub fn create(self: &Arc<Self>, at: Location) -> ObjectWriter {
        ObjectWriter {
            objects: Arc::clone(self),
            at,
            buffer: Vec::new(),
            upload: None,
        }
    }

    /// A reader of object `at`, `len` bytes long; range reads stop at the
    /// next of `bounds` (the column chunks' starts), so a read ahead never
    /// fetches another column's bytes.
    pub fn reader(self: &Arc<Self>, at: Location, len: u64, bounds: Arc<[u64]>) -> ObjectReader {
        ObjectReader {
            objects: Arc::clone(self),
            at,
            len,
            bounds,
            plan: Arc::from(Vec::new()),
            fetched: Arc::default(),
        }
    }
}

/// A new object, buffered and sent in parts.
pub struct ObjectWriter {
    objects: Arc<Objects>,
    at: Location,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
}

impl ObjectWriter {
    fn send_part(&mut self) -> std::io::Result<()> {
        let objects = Arc::clone(&self.objects);
        let part = PutPayload::from(std::mem::take(&mut self.buffer));
        objects.wait(async {
            if self.upload.is_none() {
                self.upload = Some(objects.store.put_multipart(&self.at).await?);
            }
            self.upload.as_mut().expect("started").put_part(part).await
        })?;
        Ok(())
    }

    /// Sends the rest; the object exists (durably) when this returns.
    pub fn finish(mut self) -> Result<(), StorageError> {
        match self.upload.take() {
            None => {
                let payload = PutPayload::from(std::mem::take(&mut self.buffer));
                self.objects
                    .wait(self.objects.store.put(&self.at, payload))
                    .map_err(err)?;
            }
            Some(mut upload) => {
                let part = PutPayload::from(std::mem::take(&mut self.buffer));
                self.objects
                    .wait(async {
                        if part.content_length() > 0 {
                            upload.put_part(part).await?;
                        }
                        upload.complete().await
                    })
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= PART_BYTES {
            self.send_part()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// An upload given up (an error while writing the block) is aborted.
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            self.objects.runtime.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}

/// One object read by byte ranges for one read. The read's plan lists,
/// per part (a row group), the ranges it will ask for there: the first
/// request in a part fetches all of them at once (one request, not one per
/// page), dropping the previous part's. A request outside the plan (the
/// footer) is fetched by itself, read ahead to the next bound.
#[derive(Clone)]
pub struct ObjectReader {
    objects: Arc<Objects>,
    at: Location,
    len: u64,
    bounds: Arc<[u64]>,
    plan: Arc<[Vec<Range<u64>>]>,
    fetched: Arc<Mutex<Fetched>>,
}

#[derive(Default)]
struct Fetched {
    /// Fetched ranges by their start, ascending.
    windows: Vec<(u64, Bytes)>,
    part: Option<usize>,
}

impl Fetched {
    fn find(&self, start: u64, end: u64) -> Option<Bytes> {
        let i = self.windows.partition_point(|(at, _)| *at <= start);
        let (at, bytes) = self.windows.get(i.checked_sub(1)?)?;
        let from = (start - at) as usize;
        (end <= at + bytes.len() as u64).then(|| bytes.slice(from..from + (end - start) as usize))
    }

    fn insert(&mut self, at: u64, bytes: Bytes) {
        if self.windows.len() >= MAX_WINDOWS {
            self.windows.clear();
        }
        let i = self.windows.partition_point(|(a, _)| *a < at);
        self.windows.insert(i, (at, bytes));
    }
}

impl ObjectReader {
    /// The same object for a new read, with its plan.
    pub fn planned(&self, bounds: Arc<[u64]>, plan: Vec<Vec<Range<u64>>>) -> ObjectReader {
        ObjectReader {
            bounds,
            plan: Arc::from(plan),
            fetched: Arc::default(),
            ..self.clone()
        }
    }

    pub async fn delete(&self) -> Result<(), StorageError> {
        self.objects.delete_async(&self.at).await
    }

    pub fn delete_later(&self) {
        self.objects.delete_later(self.at.clone());
    }

    /// The part of the plan with a range holding `start..end`.
    fn part_of(&self, start: u64, end: u64) -> Option<usize> {
        self.plan
            .iter()
            .position(|ranges| ranges.iter().any(|r| r.start <= start && end <= r.end))
    }

    fn bytes(&self, start: u64, len: usize) -> Result<Bytes, ParquetError> {
        let end = start + len as u64;
        if end > self.len {
            return Err(ParquetError::EOF(format!(
                "{}: {start}..{end} is past the end ({} bytes)",
                self.at, self.len
            )));
        }
        let mut fetched = self.fetched.lock().expect("fetched lock poisoned");
        if let Some(bytes) = fetched.find(start, end) {
            return Ok(bytes);
        }
        if let Some(part) = self.part_of(start, end)
            && fetched.part != Some(part)
        {
            let ranges = &self.plan[part];
            let all = self.objects.get_ranges(&self.at, ranges)?;
            *fetched = Fetched {
                windows: Vec::new(),
                part: Some(part),
            };
            for (r, bytes) in ranges.iter().zip(all) {
                fetched.insert(r.start, bytes);
            }
            if let Some(bytes) = fetched.find(start, end) {
                return Ok(bytes);
            }
        }
        let next = self.bounds.partition_point(|b| *b <= start);
        let stop = self.bounds.get(next).copied().unwrap_or(self.len);
        let fetch_end = end.max((start + WINDOW_BYTES).min(stop));
        let range = start..fetch_end;
        let bytes = self
            .objects
            .get_ranges(&self.at, std::slice::from_ref(&range))?
            .pop()
            .expect("one range asked, one answered");
        fetched.insert(start, bytes.clone());
        Ok(bytes.slice(..len))
    }
}

/// Sequential reads from one offset of an object.
pub struct RangeRead {
    reader: ObjectReader,
    at: u64,
}

impl std::io::Read for RangeRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.reader.len - self.at) as usize);
        if n == 0 {
            return Ok(0);
        }
        let bytes = self
            .reader
            .bytes(self.at, n)
            .map_err(std::io::Error::other)?;
        buf[..n].copy_from_slice(&bytes);
        self.at += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::Length for ObjectReader {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for ObjectReader {
    type T = RangeRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(RangeRead {
            reader: self.clone(),
            at: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.bytes(start, length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::ChunkReader;

    #[test]
    fn an_object_written_in_parts_reads_back_by_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        let at = Objects::location(7);
        let data: Vec<u8> = (0..PART_BYTES * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = objects.create(at.clone());
        for chunk in data.chunks(100_000) {
            w.write_all(chunk).unwrap();
        }
        // nothing shows before the upload completes
        assert!(objects.list().unwrap().is_empty());
        w.finish().unwrap();
        assert_eq!(
            objects.list().unwrap(),
            vec![(at.clone(), data.len() as u64)]
        );
        let r = objects.reader(at.clone(), data.len() as u64, Arc::from(vec![1000u64]));
        assert_eq!(r.get_bytes(10, 20).unwrap(), &data[10..30]);
        // a read ahead stops at the bound
        assert_eq!(r.fetched.lock().unwrap().windows[0].1.len(), 990);
        assert_eq!(r.get_bytes(999, 2).unwrap(), &data[999..1001]);
        let mut tail = Vec::new();
        std::io::Read::read_to_end(
            &mut r.get_read(data.len() as u64 - 5000).unwrap(),
            &mut tail,
        )
        .unwrap();
        assert_eq!(tail, &data[data.len() - 5000..]);
        assert!(r.get_bytes(data.len() as u64 - 1, 2).is_err());
        objects.delete(&at).unwrap();
        assert!(objects.list().unwrap().is_empty());
    }

    #[test]
    fn a_staging_file_left_by_a_crash_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0000000000000001.parquet#3"), b"half").unwrap();
        std::fs::write(dir.path().join("0000000000000002.parquet"), b"whole").unwrap();
        let objects = Objects::local(dir.path()).unwrap();
        assert_eq!(objects.list().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
