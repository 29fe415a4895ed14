//! [`FileEventStore`]: opening a store folder, reading it, and the admin operations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, EventStore, NewEvent, Position, Query, ReadOptions, SequencedEvent,
    validate_append,
};
use tokio::sync::oneshot;

use crate::engine::Engine;
use crate::head::{HeadFile, HeadRead};
use crate::index::Index;
use crate::layout::Layout;
use crate::lock::StoreLock;
use crate::options::ChangeDetection;
use crate::recovery::{self, RecoveryReport, Repair};
use crate::snapshot::{self, Unusable};
use crate::verify::{self, VerifyReport};
use crate::vfs::{OsFs, Vfs};
use crate::writer::{Request, Writer};
use crate::{Error, StoreOptions};

/// Save a fresh snapshot at open when at least this many events had to be scanned.
const SNAPSHOT_AFTER_SCANNING: u64 = 10_000;

/// A DCB event store in a folder: durable, tamper-evident, safe for several processes at once.
///
/// Open it with [`FileEventStore::open`] (or [`open_with`](FileEventStore::open_with) and
/// [`StoreOptions`]), use it through the [`EventStore`] trait (or the blocking twins such as
/// [`FileEventStore::append_blocking`], which return the same errors), and let it drop or
/// [`close`](FileEventStore::close) it when done.
///
/// Appends from all tasks of a process go through one writer thread, which commits whatever has
/// queued up as one group: one lock acquisition and one sync for the lot, each append still
/// checked in order against everything before it.
///
/// Reads never wait for a lock held by an appender, and no appender waits for a read: the index
/// lock is released before any file is read. The blocking twins read on the calling thread; the
/// async [`EventStore::read`] and [`EventStore::read_last`] run on tokio's blocking pool when
/// called inside a tokio runtime, so a read (and the catch-up with commits of other processes
/// it may start with) never holds up a runtime worker. Outside a tokio runtime they read on the
/// calling thread. A read of many thousands of events is still best paged with
/// [`ReadOptions::limit`] and `after`.
///
/// Reads check that each line is a well-formed event at the expected position, but do not
/// recompute hashes: detecting an edit made to the files behind the store's back is the job of
/// [`FileEventStore::verify`], the audit.
#[derive(Debug)]
pub struct FileEventStore {
    shared: Arc<Engine>,
    sender: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    read_only: bool,
    /// How waiting subscribers learn of other processes' appends (resolved from the options).
    detection: ChangeDetection,
    /// The folder watcher, set up at the first wait when `detection` is `Watch`; `None` when it
    /// could not be.
    watcher: OnceLock<Option<notify::RecommendedWatcher>>,
}

impl FileEventStore {
    /// Opens the store in the folder `path`, with the default [`StoreOptions`], creating the
    /// folder when it does not exist. See [`FileEventStore::open_with`].
    ///
    /// ```
    /// use opossum_fs::FileEventStore;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let folder = tempfile::tempdir()?;
    /// let store = FileEventStore::open(folder.path().join("records"))?;
    /// assert!(store.path().ends_with("records"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`FileEventStore::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<FileEventStore, Error> {
        Self::open_with(path, StoreOptions::new())
    }

    /// Opens the store in the folder `path` with `options`, creating the folder when it does
    /// not exist. A relative `path` is taken from the current folder; its last component is
    /// the store's name and must be a portable folder name (no `/ \ : * ? " < > |`, no control
    /// characters, not a Windows device name such as `CON`, not ending in a dot or a space, at
    /// most 200 bytes).
    ///
    /// Opening repairs what a crash left: a torn tail is cut (and its bytes kept under
    /// `recovered/`), complete but unanchored commits are adopted, and a missing or stale index
    /// is rebuilt from the log. Each repair is logged and listed in
    /// [`FileEventStore::recovery`]. A read-only folder opens for reading only.
    ///
    /// # Errors
    /// [`Error::InvalidPath`], [`Error::InvalidOptions`]; [`Error::CorruptLog`] or
    /// [`Error::AnchorMismatch`] when committed history is damaged (nothing is changed on disk
    /// then); [`Error::ReadOnly`] when a new store cannot be created; [`Error::Io`] for other
    /// file-system failures.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<FileEventStore, Error> {
        Self::open_on(OsFs::shared(), path.as_ref(), options)
    }

    /// [`FileEventStore::open_with`] on the file system `vfs`.
    pub(crate) fn open_on(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        options: StoreOptions,
    ) -> Result<FileEventStore, Error> {
        let folder = crate::options::resolve_store_folder(path);
        let checked = options.validate();
        let folder = match (folder, checked) {
            (Ok(folder), Ok(())) => folder,
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        };
        let started = Instant::now();
        let layout = Layout::new(folder);
        let span = tracing::info_span!("open", store = %layout.dir().display());
        let _enter = span.enter();
        let writable = if options.get_read_only() {
            if !vfs.metadata(&layout.events_dir()).is_ok_and(|m| m.is_dir) {
                return Err(Error::NotAStore {
                    path: layout.dir().to_path_buf(),
                });
            }
            false
        } else {
            create_folders(&*vfs, &layout)?
        };
        let mut lock = if writable {
            match StoreLock::open(
                &vfs,
                &layout.lock(),
                layout.lease(),
                options.get_stale_lock_after(),
            ) {
                Ok(lock) => Some(lock),
                Err(Error::ReadOnly { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let lock_existed = crate::vfs::exists(&*vfs, &layout.lock());
        if lock.is_some() && !lock_existed {
            // The lock file is a new entry of the store folder (the anchor syncs its own).
            sync_dir(&*vfs, layout.dir())?;
        }
        let revalidate = !vfs.coherent(layout.dir());
        let head = HeadFile::open(&vfs, layout.head(), lock.is_some(), revalidate)?;

        let mut repairs = Vec::new();
        let (mut index, snapshot_problem) = match snapshot::load(&*vfs, &layout)? {
            Ok(index) => (index, None),
            Err(Unusable::Missing) => (
                Index::default(),
                Some((false, "no index snapshot".to_owned())),
            ),
            Err(Unusable::Rejected(r)) => (
                Index::default(),
                Some((true, format!("index snapshot rejected: {r}"))),
            ),
        };
        let from_snapshot = snapshot_problem.is_none();
        let indexed_at_start = index.head();

        let sync = options.syncs();
        let timeout = options.get_lock_timeout();
        // Read what the anchor vouches for before taking the lock, so the lock is held only
        // for what is new (a long scan under the lock would hold up every other writer).
        recovery::read_ahead(&mut index, &*vfs, &layout, &head)?;
        match lock.as_mut() {
            Some(lock) => {
                let reconciled = lock.with(timeout, || {
                    recovery::reconcile_locked(&mut index, &*vfs, &layout, &head, sync, true)
                });
                match reconciled {
                    Ok(result) => repairs.extend(result?.repairs),
                    Err(Error::LockTimeout { .. }) => {
                        // Another process is appending and will repair its own tail; read what
                        // is committed.
                        recovery::read_unlocked(&mut index, &*vfs, &layout, &head)?;
                        repairs.push(Repair::Deferred {
                            reason:
                                "another process held the lock; its uncommitted data is not read"
                                    .to_owned(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                if recovery::read_unlocked(&mut index, &*vfs, &layout, &head)? {
                    repairs.push(Repair::Deferred {
                        reason: "the store is read-only; uncommitted data at the end of the log is not read".to_owned(),
                    });
                }
            }
        }

        let scanned = index.head() - indexed_at_start;
        if let Some((rejected, reason)) = snapshot_problem {
            if rejected || scanned > 0 {
                tracing::warn!(%reason, events = scanned, "rebuilt the index from the log");
                repairs.insert(
                    0,
                    Repair::IndexRebuilt {
                        reason,
                        events_scanned: scanned,
                    },
                );
            }
        }
        let indexed_head = index.head();
        let detection = match options.get_change_detection() {
            ChangeDetection::Auto if revalidate => ChangeDetection::Poll,
            ChangeDetection::Auto => ChangeDetection::Watch,
            other => other,
        };
        let shared = Arc::new(Engine {
            vfs,
            layout,
            options,
            revalidate,
            index: RwLock::new(index),
            head,
            poisoned: Mutex::new(None),
            snapshot_head: Mutex::new(if from_snapshot {
                indexed_at_start
            } else {
                u64::MAX
            }),
            appends_committed: AtomicU64::new(0),
            group_commits: AtomicU64::new(0),
            appended: Arc::new(tokio::sync::watch::Sender::new(indexed_head)),
        });
        let read_only = lock.is_none();
        if !read_only && (scanned >= SNAPSHOT_AFTER_SCANNING || !from_snapshot) {
            if let Err(e) = shared.save_snapshot() {
                tracing::warn!(error = %e, "could not save the index snapshot; the next open will rescan");
            }
        }
        let (sender, writer) = match lock {
            Some(lock) => {
                let (tx, rx) = mpsc::channel();
                let writer = Writer::new(Arc::clone(&shared), lock);
                let handle = std::thread::Builder::new()
                    .name("opossum-writer".to_owned())
                    .spawn(move || writer.run(rx))
                    .map_err(|e| {
                        Error::io("start the writer thread for", shared.layout.dir(), e)
                    })?;
                (Some(tx), Some(handle))
            }
            None => (None, None),
        };
        let report = RecoveryReport { repairs };
        tracing::info!(
            events = shared.read_index().head(),
            repairs = report.repairs.len(),
            read_only,
            millis = started.elapsed().as_millis() as u64,
            "opened store"
        );
        Ok(FileEventStore {
            shared,
            sender,
            writer,
            recovery: report,
            read_only,
            detection,
            watcher: OnceLock::new(),
        })
    }

    /// How subscribers of this handle learn of other processes' appends:
    /// [`ChangeDetection::Watch`] (file-change notifications, with polling as a safety net) or
    /// [`ChangeDetection::Poll`] — what [`StoreOptions::change_detection`] resolved to for this
    /// folder, and `Poll` when notifications cannot be set up (this sets them up, as the first
    /// subscriber's wait would, to find out).
    #[must_use]
    pub fn change_detection(&self) -> ChangeDetection {
        self.watch_folder();
        match self.watcher.get() {
            Some(None) => ChangeDetection::Poll,
            _ => self.detection,
        }
    }

    /// Sets up the folder watcher at the first wait, when the store watches.
    fn watch_folder(&self) {
        if self.detection != ChangeDetection::Watch {
            return;
        }
        self.watcher.get_or_init(|| {
            let appended = Arc::clone(&self.shared.appended);
            let anchor = std::ffi::OsString::from(crate::layout::HEAD_FILE);
            let poke = move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else {
                    return;
                };
                // Every commit rewrites the anchor; opening or reading a file changes nothing.
                let changed = !matches!(event.kind, notify::EventKind::Access(_))
                    && (event.paths.is_empty()
                        || event
                            .paths
                            .iter()
                            .any(|p| p.file_name() == Some(anchor.as_os_str())));
                if changed {
                    // Wakes every waiting subscriber; each reads the anchor to see what changed.
                    appended.send_modify(|_| {});
                }
            };
            let dir = self.shared.layout.dir();
            let watched = notify::recommended_watcher(poke).and_then(|mut watcher| {
                notify::Watcher::watch(&mut watcher, dir, notify::RecursiveMode::NonRecursive)
                    .map(|()| watcher)
            });
            match watched {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    tracing::warn!(error = %e, folder = %dir.display(), "cannot watch the store folder for other processes' appends; subscribers poll instead");
                    None
                }
            }
        });
    }

    /// Every event type in the store and how many events it has, in the order the types first
    /// appeared in the log; from the index, without reading the log.
    ///
    /// # Errors
    /// [`Error::Io`] when new events cannot be read into the index, [`Error::StoreDeleted`].
    pub fn event_types(&self) -> Result<Vec<(String, u64)>, Error> {
        self.shared.refresh()?;
        Ok(self.shared.read_index().type_counts())
    }

    /// The store's identity, as `head.json` records it: 32 hex digits chosen when its anchor
    /// was first written, kept for its whole life, and new in a backup (which is a store of its
    /// own). `None` while no anchor records one (a store whose anchor predates identities).
    ///
    /// # Errors
    /// [`Error::StoreDeleted`], [`Error::Io`] when `head.json` cannot be read.
    pub fn identity(&self) -> Result<Option<String>, Error> {
        Ok(self
            .shared
            .head
            .read_fresh()?
            .store
            .map(|id| format!("{:032x}", id.0)))
    }

    /// The store folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.shared.layout.dir()
    }

    /// The options the store was opened with.
    #[must_use]
    pub fn options(&self) -> &StoreOptions {
        &self.shared.options
    }

    /// What opening the store repaired.
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// True when the folder could not be opened for writing: reads work, appends fail with
    /// [`Error::ReadOnly`].
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn submit(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<oneshot::Receiver<Result<Position, Error>>, Error> {
        validate_append(&events)?;
        self.shared.options.get_required_metadata().check(&events)?;
        let Some(sender) = &self.sender else {
            return Err(if self.read_only {
                Error::ReadOnly {
                    path: self.shared.layout.dir().to_path_buf(),
                }
            } else {
                Error::Closed
            });
        };
        let (reply, receiver) = oneshot::channel();
        sender
            .send(Request {
                events,
                condition,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        Ok(receiver)
    }

    /// [`EventStore::append`] for callers without an async runtime. Blocks until the events are
    /// committed (and, with [`Durability::Immediate`](opossum_core::Durability::Immediate), on
    /// stable storage).
    ///
    /// # Errors
    /// As [`EventStore::append`]: [`opossum_core::Error::ConditionFailed`] when the condition
    /// failed, and this crate's [`Error`] inside [`opossum_core::Error::Storage`] — with its
    /// [`kind`](opossum_core::Error::kind) — when the store failed.
    ///
    /// # Panics
    /// When called from inside an async runtime's worker thread, where blocking is not allowed
    /// (use the async [`EventStore::append`] there).
    pub fn append_blocking(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        Ok(self
            .submit(events, condition)?
            .blocking_recv()
            .map_err(|_| Error::Closed)??)
    }

    /// [`EventStore::read`] for callers without an async runtime.
    ///
    /// # Errors
    /// As [`EventStore::read`]: of kind [`Corrupt`](opossum_core::ErrorKind::Corrupt) when a
    /// committed event cannot be read back, [`Closed`](opossum_core::ErrorKind::Closed) when
    /// the store was deleted, [`Io`](opossum_core::ErrorKind::Io).
    pub fn read_blocking(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        let span = tracing::debug_span!("read");
        let _enter = span.enter();
        Ok(self.shared.read(query, options)?)
    }

    /// [`EventStore::read_last`] for callers without an async runtime.
    ///
    /// # Errors
    /// As [`FileEventStore::read_blocking`].
    pub fn read_last_blocking(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        let span = tracing::debug_span!("read_last");
        let _enter = span.enter();
        Ok(self.shared.read_last(query)?)
    }

    /// The events `query` and `options` select, as [`read`](opossum_core::EventStore::read)
    /// would return them, each with its line exactly as the log stores it, its chain hash,
    /// the chain hash of the event before it, and where the line is: what an export or an
    /// auditor's view shows, and what [`chain_hash`](crate::chain_hash) checks without the store.
    ///
    /// ```
    /// use opossum_core::{NewEvent, Payload, Query, ReadOptions};
    /// use opossum_fs::FileEventStore;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let folder = tempfile::tempdir()?;
    /// let store = FileEventStore::open(folder.path().join("records"))?;
    /// let checked = NewEvent::builder("Checked", Payload::from_json("{}")?).build()?;
    /// store.append_blocking(vec![checked.clone(), checked], None)?;
    ///
    /// let stored = store.read_stored(&Query::all(), ReadOptions::new())?;
    /// assert_eq!(stored.len(), 2);
    /// assert_eq!(stored[1].previous_hash, stored[0].hash);
    /// let recomputed = opossum_fs::chain_hash(&stored[1].previous_hash, &stored[1].line);
    /// assert_eq!(recomputed.as_deref(), Some(stored[1].hash.as_str()));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::CorruptLog`] when a line cannot be decoded, [`Error::Io`] when a segment cannot
    /// be read, [`Error::StoreDeleted`].
    pub fn read_stored(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<StoredEvent>, Error> {
        let span = tracing::debug_span!("read_stored");
        let _enter = span.enter();
        self.shared.read_stored(query, options)
    }

    /// Walks the whole log and checks the hash chain, the positions and the anchor.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read. Damage is not an error: it is the
    /// [`VerifyReport::problem`].
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        verify::verify_with(&self.shared.vfs, self.shared.layout.dir())
    }

    /// Copies the store into the new folder `dest` while appends go on, through this handle or
    /// any other: a consistent copy of everything committed when the backup starts, which opens
    /// as a store of its own (with a new identity) without any repair and verifies intact.
    /// Segment files are copied up to their committed end, `recovered/` is copied as it is,
    /// and a new `head.json` names the last event copied; every file is synced. No lock is
    /// taken, so appends are not held up.
    ///
    /// ```
    /// use opossum_core::{NewEvent, Payload};
    /// use opossum_fs::FileEventStore;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let folder = tempfile::tempdir()?;
    /// let store = FileEventStore::open(folder.path().join("records"))?;
    /// let event = NewEvent::builder("Checked", Payload::from_json("{}")?).build()?;
    /// store.append_blocking(vec![event], None)?;
    ///
    /// let report = store.backup(&folder.path().join("records-backup"))?;
    /// assert_eq!(report.events, 1);
    /// let copy = FileEventStore::open(folder.path().join("records-backup"))?;
    /// assert!(copy.recovery().is_clean());
    /// assert!(copy.verify()?.is_intact());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::BackupDestination`] when `dest` is relative, a file, or a folder that is not
    /// empty; [`Error::StoreDeleted`]; [`Error::Io`] (and [`Error::DiskFull`]) when a file cannot
    /// be read or written.
    pub fn backup(&self, dest: &Path) -> Result<crate::BackupReport, Error> {
        crate::backup::backup(&self.shared, dest)
    }

    /// Event count, head position and size on disk.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be listed.
    pub fn stats(&self) -> Result<StoreStats, Error> {
        self.shared.refresh()?;
        let (head, segments, index_memory_bytes) = {
            let index = self.shared.read_index();
            let segments = index.segments.iter().filter(|s| s.end > 0).count();
            (index.head(), segments, index.heap_bytes())
        };
        // The folder is walked without the index lock: the writer never waits for a walk.
        Ok(StoreStats {
            event_count: head,
            head: Position::new(head).ok(),
            size_on_disk: folder_size(&*self.shared.vfs, self.shared.layout.dir())?,
            segments,
            index_memory_bytes,
            appends_committed: self.shared.appends_committed.load(Ordering::Relaxed),
            group_commits: self.shared.group_commits.load(Ordering::Relaxed),
        })
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        self.sender = None;
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                return Err(Error::Poisoned {
                    reason: "the writer thread panicked".to_owned(),
                });
            }
            self.shared.save_snapshot()?;
        }
        Ok(())
    }

    /// Stops the writer after the appends already queued, and saves the index snapshot so the
    /// next open is fast. Dropping the store does the same, ignoring errors.
    ///
    /// # Errors
    /// [`Error::Io`] when the snapshot cannot be saved (the store is still intact: the next open
    /// rebuilds the index).
    pub fn close(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    /// Deletes the store folder and everything in it, under the cross-process lock so no other
    /// process is half-way through an append. Every other handle of the store, in this process
    /// or another, gets [`Error::StoreDeleted`] from its next append or read on (never an
    /// acknowledgement): `head.json` is first marked deleted, synced, then removed.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::LockTimeout`], [`Error::StoreDeleted`] when another handle
    /// deleted it first, [`Error::Io`].
    pub fn delete(mut self) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.shared.layout.dir().to_path_buf(),
            });
        }
        self.sender = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
        let vfs = Arc::clone(&self.shared.vfs);
        let layout = &self.shared.layout;
        let dir = layout.dir().to_path_buf();
        let mut lock = StoreLock::open(
            &vfs,
            &layout.lock(),
            layout.lease(),
            self.shared.options.get_stale_lock_after(),
        )?;
        let timeout = self.shared.options.get_lock_timeout();
        let head = &self.shared.head;
        lock.with(timeout, || -> Result<(), Error> {
            // First end the store's identity where every other handle looks: in head.json,
            // which they re-read before each append and each read. A handle that still has the
            // old file open finds the mark; one that opens by path finds no file.
            match head.read_fresh() {
                Ok(seen) => head.write_tombstone(&seen)?,
                // head.json's name is gone (removed by hand): mark the file still open.
                Err(Error::StoreDeleted { .. }) => head.write_tombstone(&HeadRead::missing())?,
                Err(e) => return Err(e),
            }
            for entry in vfs.list(&dir).map_err(|e| Error::io("list", &dir, e))? {
                let path = dir.join(&entry.name);
                if entry.name == crate::layout::LOCK_FILE || entry.name == crate::layout::LEASE_FILE
                {
                    continue;
                }
                let removed = if entry.is_dir {
                    vfs.remove_dir_all(&path)
                } else {
                    vfs.remove_file(&path)
                };
                removed.map_err(|e| Error::io("delete", &path, e))?;
            }
            Ok(())
        })??;
        drop(lock);
        // Another handle may take the lock in the moment after it is let go, write its lease,
        // find the tombstone and let go again: its lease can appear while the folder is being
        // removed. Try again a few times; it does not stay.
        let mut attempt = 1;
        loop {
            match vfs.remove_dir_all(&dir) {
                Ok(()) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
                        && attempt < DELETE_ATTEMPTS =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Error::io("delete", &dir, e)),
            }
        }
        tracing::info!(store = %dir.display(), "deleted store");
        Ok(())
    }
}

impl Drop for FileEventStore {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "closing the store failed");
        }
    }
}

/// How many times `delete` tries to remove the emptied folder while other handles let go.
const DELETE_ATTEMPTS: u32 = 100;

/// One event as the log stores it, from [`FileEventStore::read_stored`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEvent {
    /// The event, decoded.
    pub event: SequencedEvent,
    /// Its line, byte for byte as stored, without the newline.
    pub line: String,
    /// Its chain hash (64 lowercase hex digits), as the line records it.
    pub hash: String,
    /// The chain hash of the event before it (64 zeros before position 1).
    pub previous_hash: String,
    /// The segment file that holds it.
    pub file: PathBuf,
    /// The byte offset of its line in that file.
    pub offset: u64,
}

/// The chain hash a stored event line must hold, given the hash of the event before it (64 hex
/// digits; 64 zeros before position 1): SHA-256 over the previous hash's 32 bytes and the line
/// up to its hash field, in lowercase hex (see `docs/format.md`). Compare it with the hash the
/// line holds, [`StoredEvent::hash`]. `None` when `previous_hash` is not 64 hex digits or the
/// line does not end in a hash field.
///
/// ```
/// let line = r#"{"position":1,"type":"T","tags":[],"payload":{},"metadata":{"timestamp":"2026-01-01T00:00:00Z"},"batch_last":1,"synced_to":0,"hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
/// let genesis = "0".repeat(64);
/// let hash = opossum_fs::chain_hash(&genesis, line).unwrap();
/// assert_eq!(hash.len(), 64);
/// assert_ne!(hash, genesis); // this line's stored hash is wrong
/// assert_eq!(opossum_fs::chain_hash("not hex", line), None);
/// ```
#[must_use]
pub fn chain_hash(previous_hash: &str, line: &str) -> Option<String> {
    let previous = crate::record::ChainHash::from_hex(previous_hash.as_bytes())?;
    let line = line.strip_suffix('\n').unwrap_or(line);
    let (hashed, _) = crate::record::split_hash(line.as_bytes()).ok()?;
    Some(crate::record::ChainHash::chain(previous, hashed).to_hex())
}

/// Store figures for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// How many events the store holds.
    pub event_count: u64,
    /// The last position, or `None` for an empty store.
    pub head: Option<Position>,
    /// Bytes of every file in the store folder.
    pub size_on_disk: u64,
    /// How many segment files hold events.
    pub segments: usize,
    /// Approximate heap bytes of this process's index of the store.
    pub index_memory_bytes: usize,
    /// Appends committed through this handle since it was opened.
    pub appends_committed: u64,
    /// Group commits those appends took (one lock acquisition and one sync each): concurrent
    /// appends share them, so this is at most `appends_committed`.
    pub group_commits: u64,
}

/// Creates the store folder and its `events/` folder where missing, and makes each new entry
/// durable (a new folder survives a power cut only once its parent is synced). Returns false
/// when the folder exists but cannot be written.
fn create_folders(vfs: &dyn Vfs, layout: &Layout) -> Result<bool, Error> {
    let events_dir = layout.events_dir();
    if vfs.metadata(&events_dir).is_ok_and(|m| m.is_dir) {
        // Existing: writable unless creating a file in it fails, which the lock file tells.
        return Ok(true);
    }
    // The folders about to be created, outermost first.
    let mut missing: Vec<PathBuf> = events_dir
        .ancestors()
        .take_while(|p| !crate::vfs::exists(vfs, p))
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    match vfs.create_dir_all(&events_dir) {
        Ok(()) => {}
        Err(e) if crate::error::is_read_only(&e) => {
            return Err(Error::ReadOnly {
                path: layout.dir().to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io("create", &events_dir, e)),
    }
    for created in &missing {
        if let Some(parent) = created.parent() {
            sync_dir(vfs, parent)?;
        }
    }
    Ok(true)
}

fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<(), Error> {
    vfs.sync_dir(dir).map_err(|e| Error::io("sync", dir, e))
}

/// The bytes of every file under the store folder `dir`. Other writers share the folder (the
/// projections' temporary files, other processes), so a file or folder that disappears during
/// the walk counts as gone rather than failing the walk.
fn folder_size(vfs: &dyn Vfs, dir: &Path) -> Result<u64, Error> {
    tree_size(vfs, dir)?.ok_or_else(|| {
        Error::io(
            "list",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// The bytes under `dir`; `None` when `dir` itself is gone.
fn tree_size(vfs: &dyn Vfs, dir: &Path) -> Result<Option<u64>, Error> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let entries = match vfs.list(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut total = 0;
    for entry in entries {
        let path = dir.join(&entry.name);
        let meta = match vfs.metadata(&path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(Error::io("inspect", path, e)),
        };
        total += if meta.is_dir {
            tree_size(vfs, &path)?.unwrap_or(0)
        } else {
            meta.len
        };
    }
    Ok(Some(total))
}

#[async_trait]
impl EventStore for FileEventStore {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        let receiver = self.submit(events, condition)?;
        Ok(receiver.await.map_err(|_| Error::Closed)??)
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        let shared = Arc::clone(&self.shared);
        let query = query.clone();
        off_the_runtime(move || {
            let span = tracing::debug_span!("read");
            let _enter = span.enter();
            shared.read(&query, options)
        })
        .await
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        let shared = Arc::clone(&self.shared);
        let query = query.clone();
        off_the_runtime(move || {
            let span = tracing::debug_span!("read_last");
            let _enter = span.enter();
            shared.read_last(&query)
        })
        .await
    }

    async fn head(&self) -> Result<Option<Position>, opossum_core::Error> {
        let shared = Arc::clone(&self.shared);
        off_the_runtime(move || {
            shared.refresh()?;
            Ok(Position::new(shared.read_index().head()).ok())
        })
        .await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), opossum_core::Error> {
        let mut changes = self.shared.appended.subscribe();
        self.watch_folder();
        let poll = self.shared.options.get_change_poll_interval();
        loop {
            changes.borrow_and_update();
            if self.head().await? > beyond {
                return Ok(());
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Runs a read on tokio's blocking pool when called inside a tokio runtime, so that file I/O
/// (and the catch-up with other processes' commits) never holds up a runtime worker; on the
/// calling thread otherwise (another executor, or none).
async fn off_the_runtime<T, F>(read: F) -> Result<T, opossum_core::Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Ok(read()?);
    };
    let span = tracing::Span::current();
    match runtime.spawn_blocking(move || span.in_scope(read)).await {
        Ok(result) => Ok(result?),
        // The read panicked (a bug): hand the panic on to the caller, as the inline read would.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down and dropped the task before it ran.
        Err(_) => Err(Error::Closed.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn folder_size_adds_up_files_and_counts_a_vanished_folder_as_empty()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("a"), [0_u8; 10])?;
        fs::create_dir_all(dir.path().join("sub").join("deeper"))?;
        fs::write(dir.path().join("sub").join("b"), [0_u8; 5])?;
        fs::write(dir.path().join("sub").join("deeper").join("c"), [0_u8; 1])?;
        let vfs = OsFs;
        assert_eq!(folder_size(&vfs, dir.path())?, 16);
        // A folder removed by another writer while the walk reaches it.
        assert_eq!(
            tree_size(&vfs, &dir.path().join("removed meanwhile"))?,
            None
        );
        // The store folder itself gone is an error.
        assert!(folder_size(&vfs, &dir.path().join("no store")).is_err());
        Ok(())
    }
}

#[cfg(test)]
mod runtime_tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use opossum_core::{EventStore, NewEvent, Payload, Query, ReadOptions};

    use super::FileEventStore;

    /// An async read that has to wait (here for the index lock, as it would for a slow disk)
    /// waits on the blocking pool: the runtime's only worker goes on running other tasks.
    #[test]
    fn an_async_read_that_waits_does_not_hold_up_the_runtime_worker()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = std::sync::Arc::new(FileEventStore::open(dir.path().join("s"))?);
        let event = NewEvent::builder("Checked", Payload::from_json("{}")?).build()?;
        store.append_blocking(vec![event], None)?;

        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let (other_ran, other_ran_rx) = std_mpsc::channel();
        let (read_done, read_done_rx) = std_mpsc::channel();
        let guard = store.shared.write_index();
        std::thread::scope(|scope| {
            let store = std::sync::Arc::clone(&store);
            scope.spawn(move || {
                runtime.block_on(async move {
                    let read = tokio::spawn(async move {
                        let events = store.read(&Query::all(), ReadOptions::default()).await;
                        let _ = read_done.send(events.map(|e| e.len()).map_err(|e| e.to_string()));
                    });
                    // Runs only if the read does not occupy the single worker.
                    tokio::spawn(async move {
                        let _ = other_ran.send(());
                    });
                    let _ = read.await;
                });
            });
            let ran = other_ran_rx.recv_timeout(Duration::from_secs(30));
            assert!(
                read_done_rx.try_recv().is_err(),
                "the read finished while the index was locked"
            );
            drop(guard);
            assert!(
                ran.is_ok(),
                "the other task never ran while the read waited"
            );
            let read = read_done_rx.recv_timeout(Duration::from_secs(30));
            assert_eq!(read, Ok(Ok(1)));
        });
        Ok(())
    }
}
