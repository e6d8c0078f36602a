//! The write-ahead log: numbered segment files of framed records, appended
//! by one thread that commits in groups. Every batch that arrives while a
//! sync is running is written with the next one and covered by one
//! `fdatasync`; each caller is answered after the sync that covers its
//! record, so concurrent writers wait for one sync, not a queue of them.
//!
//! A record is `len: u32 LE, crc32(payload): u32 LE, payload`. A crash can
//! leave a torn record only at the tail of the newest segment; replay stops
//! there and the segment is truncated to its last whole record.
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

const HEADER: usize = 8;
/// A record longer than this is refused at append and treated as torn at replay.
pub const MAX_RECORD: usize = 256 << 20;
/// A group stops taking more records past this many bytes.
const MAX_GROUP_BYTES: usize = 16 << 20;

enum Request {
    Append(Vec<u8>, oneshot::Sender<io::Result<()>>),
    /// Seals the current segment and starts the next; answers the sealed number.
    Rotate(oneshot::Sender<io::Result<u64>>),
}

pub struct Wal {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.wal"))
}

/// The segment numbers in `dir`, ascending.
pub fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".wal").and_then(|n| n.parse().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Reads every whole record of the segments in `dir`, oldest first, handing
/// each payload to `visit`. A torn tail of the newest segment is cut off;
/// damage anywhere else is an error (records after it would be lost).
pub fn replay(dir: &Path, mut visit: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
    let numbers = segments(dir)?;
    let mut records = 0;
    for (i, &number) in numbers.iter().enumerate() {
        let path = segment_path(dir, number);
        let mut bytes = Vec::new();
        File::open(&path)?.read_to_end(&mut bytes)?;
        let mut at = 0;
        while let Some(payload) = record_at(&bytes, at) {
            visit(payload)?;
            records += 1;
            at += HEADER + payload.len();
        }
        if at < bytes.len() {
            if i + 1 < numbers.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: damaged record at byte {at} of a sealed segment",
                        path.display()
                    ),
                ));
            }
            tracing::warn!(segment = %path.display(), kept = at, cut = bytes.len() - at, "write-ahead log: torn tail cut off");
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(at as u64)?;
            file.sync_all()?;
        }
    }
    Ok(records)
}

fn record_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Deletes the segments numbered `sealed` and below: their records are kept
/// elsewhere now.
pub fn delete_through(dir: &Path, sealed: u64) -> io::Result<()> {
    for number in segments(dir)?.into_iter().filter(|n| *n <= sealed) {
        std::fs::remove_file(segment_path(dir, number))?;
    }
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens the log in `dir` for appending: a new segment after the newest
    /// one there (replay those first).
    pub fn open(dir: &Path) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        let next = segments(dir)?.last().map_or(1, |n| n + 1);
        let mut segment = Segment::create(dir, next)?;
        let (tx, rx) = mpsc::channel::<Request>();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("spoor-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    let mut bytes = 0;
                    while bytes < MAX_GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(r) => {
                                if let Request::Append(b, _) = &r {
                                    bytes += b.len();
                                }
                                group.push(r);
                            }
                            Err(_) => break,
                        }
                    }
                    segment = commit(&dir, segment, group);
                }
            })?;
        Ok(Wal {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, request: Request) -> io::Result<()> {
        self.requests
            .as_ref()
            .and_then(|r| r.send(request).ok())
            .ok_or_else(|| io::Error::other("write-ahead log is closed"))
    }

    /// Appends one record; returns once it is on disk.
    pub async fn append(&self, payload: Vec<u8>) -> io::Result<()> {
        if payload.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record of {} bytes over the {MAX_RECORD}-byte limit",
                    payload.len()
                ),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.send(Request::Append(payload, tx))?;
        rx.await
            .map_err(|_| io::Error::other("write-ahead log thread ended"))?
    }

    /// Seals the current segment (every record appended before this call is
    /// in it or an older one) and starts a new one; returns the sealed number.
    pub async fn rotate(&self) -> io::Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Rotate(tx))?;
        rx.await
            .map_err(|_| io::Error::other("write-ahead log thread ended"))?
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Segment {
    number: u64,
    out: BufWriter<File>,
}

impl Segment {
    fn create(dir: &Path, number: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(dir, number))?;
        sync_dir(dir)?;
        Ok(Segment {
            number,
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        self.out.write_all(&(payload.len() as u32).to_le_bytes())?;
        self.out
            .write_all(&crc32fast::hash(payload).to_le_bytes())?;
        self.out.write_all(payload)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Writes a group, syncs once, answers every caller; rotations in the group
/// take effect after the records before them. Returns the segment to go on with.
fn commit(dir: &Path, mut segment: Segment, group: Vec<Request>) -> Segment {
    let mut waiting: Vec<(oneshot::Sender<io::Result<()>>, io::Result<()>)> = Vec::new();
    let mut rotations = Vec::new();
    for request in group {
        match request {
            Request::Append(payload, done) => {
                let written = segment.write(&payload);
                waiting.push((done, written));
            }
            Request::Rotate(done) => rotations.push(done),
        }
    }
    let synced = segment.sync();
    for (done, written) in waiting {
        let result = match (&written, &synced) {
            (Err(e), _) | (Ok(()), Err(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            (Ok(()), Ok(())) => Ok(()),
        };
        let _ = done.send(result);
    }
    if rotations.is_empty() {
        return segment;
    }
    let sealed = segment.number;
    let next = match Segment::create(dir, sealed + 1) {
        Ok(next) => next,
        Err(e) => {
            for done in rotations {
                let _ = done.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            return segment;
        }
    };
    for done in rotations {
        let _ = done.send(Ok(sealed));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(dir: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        replay(dir, |p| {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        out
    }

    #[tokio::test]
    async fn concurrent_appends_share_syncs_and_replay_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let wal = std::sync::Arc::new(Wal::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..64u32)
            .map(|i| {
                let wal = std::sync::Arc::clone(&wal);
                tokio::spawn(async move { wal.append(i.to_le_bytes().repeat(100)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        drop(wal);
        let mut got: Vec<u32> = all(dir.path())
            .iter()
            .map(|p| u32::from_le_bytes(p[..4].try_into().unwrap()))
            .collect();
        got.sort();
        assert_eq!(got, (0..64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn rotation_seals_what_came_before_and_old_segments_can_go() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        wal.append(b"one".to_vec()).await.unwrap();
        let sealed = wal.rotate().await.unwrap();
        wal.append(b"two".to_vec()).await.unwrap();
        drop(wal);
        assert_eq!(all(dir.path()), vec![b"one".to_vec(), b"two".to_vec()]);
        delete_through(dir.path(), sealed).unwrap();
        assert_eq!(all(dir.path()), vec![b"two".to_vec()]);
        // a reopened log appends to a new segment after the newest
        let wal = Wal::open(dir.path()).unwrap();
        wal.append(b"three".to_vec()).await.unwrap();
        drop(wal);
        assert_eq!(all(dir.path()), vec![b"two".to_vec(), b"three".to_vec()]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_damage_before_it_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        wal.append(b"whole".to_vec()).await.unwrap();
        wal.append(b"torn record".to_vec()).await.unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 1);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        assert_eq!(all(dir.path()), vec![b"whole".to_vec()]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), (HEADER + 5) as u64);

        // the same damage in a sealed segment loses what follows: refuse
        let wal = Wal::open(dir.path()).unwrap();
        wal.append(b"later".to_vec()).await.unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = replay(dir.path(), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
