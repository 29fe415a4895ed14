//! What the lock did not prevent: a writer that the file system let in beside this one.
//!
//! [`Intruder`] wraps the simulated file system as a share whose locks and leases do not keep
//! another client out: once armed, right after the store syncs a segment, "another writer"
//! appends a line to it, or overwrites the bytes just written. The store must notice before
//! it acknowledges, refuse with [`Error::LockNotHonoured`], and make sure its refused append is
//! never adopted later.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::tests::support::{STORE, event, options, read_all};
use crate::vfs::sim::SimFs;
use crate::vfs::{DirEntry, Meta, OpenMode, Vfs, VfsFile, VfsLock};
use crate::{Error, FileEventStore, Repair};

const OFF: u8 = 0;
/// Append a foreign line after the bytes just synced.
const APPEND: u8 = 1;
/// Overwrite the bytes just synced with foreign ones.
const OVERWRITE: u8 = 2;

#[derive(Debug, Clone)]
struct Intruder {
    inner: SimFs,
    mode: Arc<AtomicU8>,
}

#[derive(Debug)]
struct IntrudedFile {
    inner: Arc<dyn VfsFile>,
    segment: bool,
    mode: Arc<AtomicU8>,
    /// Where the last write started and how long it was.
    last_write: std::sync::Mutex<(u64, usize)>,
}

impl VfsFile for IntrudedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        *self
            .last_write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (offset, buf.len());
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()?;
        if !self.segment {
            return Ok(());
        }
        let (offset, len) = *self
            .last_write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.mode.swap(OFF, Ordering::SeqCst) {
            APPEND => {
                let end = self.inner.len()?;
                self.inner.write_all_at(b"{\"another\":\"writer\"}\n", end)
            }
            OVERWRITE => self.inner.write_all_at(&vec![b'x'; len], offset),
            _ => Ok(()),
        }
    }
    fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all()
    }
    fn refresh(&self) -> io::Result<()> {
        self.inner.refresh()
    }
}

impl Vfs for Intruder {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let inner = self.inner.open(path, mode)?;
        let segment = path.extension().is_some_and(|e| e == "jsonl");
        Ok(Arc::new(IntrudedFile {
            inner,
            segment,
            mode: Arc::clone(&self.mode),
            last_write: std::sync::Mutex::new((0, 0)),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.list(dir)
    }
    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        self.inner.metadata(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        self.inner.lock_file(path)
    }
    fn coherent(&self, _dir: &Path) -> bool {
        false
    }
}

fn intruded() -> (Intruder, FileEventStore) {
    let fs = Intruder {
        inner: SimFs::new(11),
        mode: Arc::new(AtomicU8::new(OFF)),
    };
    let store = FileEventStore::open_on(
        Arc::new(fs.clone()) as Arc<dyn Vfs>,
        Path::new(STORE),
        options(),
    )
    .unwrap_or_else(|e| panic!("open: {e}"));
    (fs, store)
}

fn refused_then_reopened(mode: u8) -> Vec<Repair> {
    let (fs, store) = intruded();
    for n in 1..=3 {
        store.append_blocking(vec![event(n, 30)], None).unwrap();
    }
    fs.mode.store(mode, Ordering::SeqCst);
    let error = Error::from(store.append_blocking(vec![event(4, 30)], None).unwrap_err());
    let Error::LockNotHonoured { path, detail } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*path, PathBuf::from("/sim/store"));
    assert!(!detail.is_empty());
    assert!(error.to_string().contains("locking"), "{error}");
    // Nothing refused is shown, now or after a reopen.
    assert_eq!(read_all(&store).unwrap().len(), 3);
    drop(store);
    let store = FileEventStore::open_on(
        Arc::new(fs.clone()) as Arc<dyn Vfs>,
        Path::new(STORE),
        options(),
    )
    .unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(read_all(&store).unwrap().len(), 3);
    let repairs = store.recovery().repairs.clone();
    assert_eq!(
        store
            .append_blocking(vec![event(5, 30)], None)
            .unwrap()
            .get(),
        4
    );
    assert!(store.verify().unwrap().is_intact());
    repairs
}

#[test]
fn another_writer_appending_during_the_commit_is_refused_never_acknowledged() {
    let repairs = refused_then_reopened(APPEND);
    assert!(
        repairs.iter().any(
            |r| matches!(r, Repair::FailedAppendRemoved { position, .. } if position.get() == 4)
        ),
        "{repairs:?}"
    );
}

#[test]
fn another_writer_overwriting_the_commit_is_refused_never_acknowledged() {
    let repairs = refused_then_reopened(OVERWRITE);
    // The overwritten bytes are not an event: cut as a torn tail, or removed as the void.
    assert!(
        repairs.iter().any(|r| matches!(
            r,
            Repair::TornTailCut { .. } | Repair::FailedAppendRemoved { .. }
        )),
        "{repairs:?}"
    );
}
