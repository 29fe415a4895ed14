//! [`FileEventStore`]: opening a store folder, reading it, and the admin operations.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, Direction, EventStore, NewEvent, Position, Query, ReadOptions, SequencedEvent,
    validate_append,
};
use tokio::sync::oneshot;

use crate::head::{AnchorState, HeadFile};
use crate::index::Index;
use crate::lock::StoreLock;
use crate::recovery::{self, RecoveryReport, Repair};
use crate::segment::{self, Tail, Trust};
use crate::snapshot::{self, Unusable};
use crate::verify::{self, VerifyReport};
use crate::writer::{Request, Writer};
use crate::{Error, StoreOptions};

/// Save a fresh snapshot at open when at least this many events had to be scanned.
const SNAPSHOT_AFTER_SCANNING: u64 = 10_000;

/// Reads fetch events in runs of at most this many, releasing the index lock in between.
const READ_BATCH: usize = 1024;

/// Nearby lines are fetched with one read of at most this many bytes …
const MAX_COALESCED_READ: u64 = 1 << 20;
/// … when at most this many bytes of other lines lie between them.
const MAX_READ_GAP: u64 = 4 << 10;

/// State shared by the store handle, its readers and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) events_dir: PathBuf,
    pub(crate) options: StoreOptions,
    pub(crate) index: RwLock<Index>,
    pub(crate) head: HeadFile,
    /// Set when a failed write could not be undone; appends are refused from then on.
    pub(crate) poisoned: Mutex<Option<String>>,
    /// The head position of the last saved snapshot.
    pub(crate) snapshot_head: Mutex<u64>,
    /// Appends committed by this process's writer, and the group commits (syncs) they took.
    pub(crate) appends_committed: AtomicU64,
    pub(crate) group_commits: AtomicU64,
}

impl Shared {
    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // The index is only mutated by pushing complete entries; a panic mid-push (allocation
        // failure) is not recoverable anyway, so a poisoned lock still guards usable data.
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Catches up with commits made by other processes, as far as the anchor vouches for them.
    fn refresh(&self) -> Result<(), Error> {
        let AnchorState::Valid(anchor) = self.head.read()? else {
            return Ok(());
        };
        if anchor.position <= self.read_index().head() {
            return Ok(());
        }
        let mut index = self.write_index();
        if anchor.position <= index.head() {
            return Ok(());
        }
        match recovery::extend(
            &mut index,
            &self.events_dir,
            Trust::Committed,
            Some(anchor.position),
        )? {
            Tail::Clean => Ok(()),
            // Another process committed these events before writing the anchor, so they are in
            // the log; if they cannot be read, the log was damaged.
            Tail::Torn { offset, reason, .. } => Err(Error::corrupt(
                index
                    .segments
                    .last()
                    .map(|s| s.path.clone())
                    .unwrap_or_default(),
                offset,
                format!(
                    "committed event {} cannot be read ({reason})",
                    index.head() + 1
                ),
            )),
        }
    }

    /// Reads the events at `positions` (all indexed, in one direction), keeping those `query`
    /// matches.
    fn fetch(
        &self,
        index: &Index,
        positions: &[u64],
        query: &Query,
        out: &mut Vec<SequencedEvent>,
    ) -> Result<(), Error> {
        let mut runs: Vec<Run> = Vec::new();
        for p in positions {
            let Some((seg, start, end)) = index.locate(*p) else {
                return Err(Error::corrupt(
                    self.events_dir.clone(),
                    0,
                    format!("position {p} is not in the index"),
                ));
            };
            let extend = runs.last_mut().filter(|r| {
                // Lines close together are fetched with one read, skipping the lines between:
                // a few kilobytes more to copy cost less than another system call.
                r.segment == seg
                    && start.saturating_sub(r.end).max(r.start.saturating_sub(end)) <= MAX_READ_GAP
                    && r.end.max(end) - r.start.min(start) <= MAX_COALESCED_READ
            });
            match extend {
                Some(run) => {
                    run.start = run.start.min(start);
                    run.end = run.end.max(end);
                    run.lines.push((*p, start, end));
                }
                None => runs.push(Run {
                    segment: seg,
                    start,
                    end,
                    lines: vec![(*p, start, end)],
                }),
            }
        }
        let mut buf = Vec::new();
        for run in runs {
            let segment = &index.segments[run.segment];
            buf.resize(usize::try_from(run.end - run.start).unwrap_or(0), 0);
            segment::read_exact_at(&segment.file, &mut buf, run.start)
                .map_err(|e| Error::io("read", &segment.path, e))?;
            for (position, start, end) in run.lines {
                let from = (start - run.start) as usize;
                let to = (end - run.start) as usize;
                let line = buf[from..to].strip_suffix(b"\n").unwrap_or(&buf[from..to]);
                let event = crate::record::decode_event(line)
                    .map_err(|reason| Error::corrupt(&segment.path, start, reason))?;
                if event.position.get() != position {
                    return Err(Error::corrupt(
                        &segment.path,
                        start,
                        format!("expected position {position}, found {}", event.position),
                    ));
                }
                if query.matches(&event.event) {
                    out.push(event);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        let started = Instant::now();
        self.refresh()?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let index = self.read_index();
        let head = index.head();
        let mut after = options.after.map_or(0, Position::get);
        let mut before = head + 1;
        // Read in runs so a huge read does not hold the index lock for its whole duration.
        drop(index);
        loop {
            let index = self.read_index();
            let wanted = (limit - out.len()).min(READ_BATCH);
            let positions: Vec<u64> = index
                .candidates(query, after, before, options.direction)
                .take(wanted)
                .collect();
            let Some(last) = positions.last().copied() else {
                break;
            };
            self.fetch(&index, &positions, query, &mut out)?;
            drop(index);
            if out.len() >= limit || positions.len() < wanted {
                break;
            }
            match options.direction {
                Direction::Ascending => after = last,
                Direction::Descending => before = last,
            }
        }
        out.truncate(limit);
        tracing::debug!(
            events = out.len(),
            micros = started.elapsed().as_micros() as u64,
            "read"
        );
        Ok(out)
    }

    pub(crate) fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.refresh()?;
        let index = self.read_index();
        let mut before = index.head() + 1;
        loop {
            let Some(p) = index
                .candidates(query, 0, before, Direction::Descending)
                .next()
            else {
                return Ok(None);
            };
            let mut found = Vec::with_capacity(1);
            self.fetch(&index, &[p], query, &mut found)?;
            if let Some(event) = found.pop() {
                return Ok(Some(event));
            }
            before = p;
        }
    }

    /// True when an event matching `condition` exists after its `after`, among indexed events.
    pub(crate) fn violates(
        &self,
        index: &Index,
        condition: &AppendCondition,
    ) -> Result<bool, Error> {
        let query = &condition.fail_if_events_match;
        let after = condition.after.map_or(0, Position::get);
        let exact = query
            .items()
            .is_none_or(|items| items.iter().all(|i| i.tags().is_empty()));
        let mut candidates = index.candidates(query, after, index.head() + 1, Direction::Ascending);
        if exact {
            return Ok(candidates.next().is_some());
        }
        for p in candidates {
            let mut found = Vec::with_capacity(1);
            self.fetch(index, &[p], query, &mut found)?;
            if !found.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn poison(&self, reason: String) {
        tracing::error!(%reason, "store refuses further appends until reopened");
        *self
            .poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    pub(crate) fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Saves the index snapshot if it moved on since the last one.
    pub(crate) fn save_snapshot(&self) -> Result<(), Error> {
        let index = self.read_index();
        let mut saved = self
            .snapshot_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if index.head() == *saved {
            return Ok(());
        }
        snapshot::save(&self.dir, &index)?;
        *saved = index.head();
        Ok(())
    }
}

struct Run {
    segment: usize,
    start: u64,
    end: u64,
    lines: Vec<(u64, u64, u64)>,
}

/// A DCB event store in a folder: durable, tamper-evident, safe for several processes at once.
///
/// Open it with [`FileEventStore::open`], use it through the [`EventStore`] trait (or the
/// blocking twins such as [`FileEventStore::append_blocking`]), and let it drop or
/// [`close`](FileEventStore::close) it when done.
///
/// Appends from all tasks of a process go through one writer thread, which commits whatever has
/// queued up as one group: one lock acquisition and one sync for the lot, each append still
/// checked in order against everything before it.
///
/// Reads run on the calling thread, also through the async trait: they never wait for a lock
/// held by an appender, and they touch only the in-memory index and the operating system's page
/// cache (microseconds for a query that returns a few events). A read of many thousands of events
/// in async code is best paged with [`ReadOptions::limit`] and `after`, or moved to
/// `tokio::task::spawn_blocking`.
///
/// Reads check that each line is a well-formed event at the expected position, but do not
/// recompute hashes: detecting an edit made to the files behind the store's back is the job of
/// [`FileEventStore::verify`], the audit.
#[derive(Debug)]
pub struct FileEventStore {
    shared: Arc<Shared>,
    sender: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    read_only: bool,
}

impl FileEventStore {
    /// Opens the store folder `root/name`, creating it when it does not exist.
    ///
    /// Opening repairs what a crash left: a torn tail is cut (and its bytes kept under
    /// `recovered/`), complete but unanchored commits are adopted, and a missing or stale index
    /// is rebuilt from the log. Each repair is logged and listed in
    /// [`FileEventStore::recovery`]. A read-only folder opens for reading only.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`]; [`Error::CorruptLog`] or [`Error::AnchorMismatch`] when
    /// committed history is damaged (nothing is changed on disk then); [`Error::ReadOnly`] when
    /// a new store cannot be created; [`Error::Io`] for other file-system failures.
    pub fn open(options: StoreOptions) -> Result<FileEventStore, Error> {
        options.validate()?;
        let started = Instant::now();
        let dir = options.store_path();
        let span = tracing::info_span!("open", store = %dir.display());
        let _enter = span.enter();
        let events_dir = dir.join(segment::EVENTS_DIR);
        let writable = match fs::create_dir_all(&events_dir) {
            Ok(()) => true,
            Err(e) if crate::error::is_read_only(&e) && events_dir.is_dir() => false,
            Err(e) => return Err(Error::io("create", &events_dir, e)),
        };
        let mut lock = if writable {
            match StoreLock::open(&dir) {
                Ok(lock) => Some(lock),
                Err(Error::ReadOnly { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let head = HeadFile::open(&dir, lock.is_some())?;

        let mut repairs = Vec::new();
        let (mut index, snapshot_problem) = match snapshot::load(&dir)? {
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

        let sync = options.flushes_events_immediately();
        let timeout = options.lock_timeout();
        match lock.as_mut() {
            Some(lock) => {
                let reconciled = lock.with(timeout, || {
                    recovery::reconcile_locked(&mut index, &dir, &head, sync)
                });
                match reconciled {
                    Ok(result) => repairs.extend(result?),
                    Err(Error::LockTimeout { .. }) => {
                        // Another process is appending and will repair its own tail; read what
                        // is committed.
                        read_committed(&mut index, &events_dir, &head)?;
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
                if read_committed(&mut index, &events_dir, &head)? {
                    repairs.push(Repair::Deferred {
                        reason: "the store is read-only; uncommitted data at the end of the log is not read".to_owned(),
                    });
                }
            }
        }
        check_stray_segments(&index, &events_dir)?;

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
        let shared = Arc::new(Shared {
            dir,
            events_dir,
            options,
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
                    .map_err(|e| Error::io("start the writer thread for", &shared.dir, e))?;
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
        })
    }

    /// The store folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.dir
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
        let Some(sender) = &self.sender else {
            return Err(if self.read_only {
                Error::ReadOnly {
                    path: self.shared.dir.clone(),
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
    /// committed (and, with `flush_events_immediately`, on stable storage).
    ///
    /// # Errors
    /// As [`EventStore::append`], in this crate's error type: a failed condition is
    /// [`Error::Core`] holding [`opossum_core::Error::ConditionFailed`]
    /// (see [`Error::is_condition_failed`]).
    ///
    /// # Panics
    /// When called from inside an async runtime's worker thread, where blocking is not allowed
    /// (use the async [`EventStore::append`] there).
    pub fn append_blocking(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.submit(events, condition)?
            .blocking_recv()
            .map_err(|_| Error::Closed)?
    }

    /// [`EventStore::read`] for callers without an async runtime.
    ///
    /// # Errors
    /// [`Error::CorruptLog`] when a committed event cannot be read back, [`Error::Io`].
    pub fn read_blocking(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        let span = tracing::debug_span!("read");
        let _enter = span.enter();
        self.shared.read(query, options)
    }

    /// [`EventStore::read_last`] for callers without an async runtime.
    ///
    /// # Errors
    /// As [`FileEventStore::read_blocking`].
    pub fn read_last_blocking(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        let span = tracing::debug_span!("read_last");
        let _enter = span.enter();
        self.shared.read_last(query)
    }

    /// Walks the whole log and checks the hash chain, the positions and the anchor.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read. Damage is not an error: it is the
    /// [`VerifyReport::problem`].
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        verify::verify_folder(&self.shared.dir)
    }

    /// Event count, head position and size on disk.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be listed.
    pub fn stats(&self) -> Result<StoreStats, Error> {
        self.shared.refresh()?;
        let index = self.shared.read_index();
        Ok(StoreStats {
            event_count: index.head(),
            head: Position::new(index.head()).ok(),
            size_on_disk: folder_size(&self.shared.dir)?,
            segments: index.segments.iter().filter(|s| s.end > 0).count(),
            index_memory_bytes: index.heap_bytes(),
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
    /// process is half-way through an append. Other processes that still have the store open
    /// get errors from then on.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::LockTimeout`], [`Error::Io`].
    pub fn delete(mut self) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.shared.dir.clone(),
            });
        }
        self.sender = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
        let dir = self.shared.dir.clone();
        let mut lock = StoreLock::open(&dir)?;
        let timeout = self.shared.options.lock_timeout();
        lock.with(timeout, || -> Result<(), Error> {
            for entry in fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
                let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
                let path = entry.path();
                if entry.file_name() == crate::lock::LOCK_FILE {
                    continue;
                }
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| Error::io("delete", &path, e))?;
            }
            Ok(())
        })??;
        drop(lock);
        fs::remove_dir_all(&dir).map_err(|e| Error::io("delete", &dir, e))?;
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

/// Reads what the anchor vouches for, without the lock and without repairing anything. Returns
/// true when data beyond it was left unread.
fn read_committed(index: &mut Index, events_dir: &Path, head: &HeadFile) -> Result<bool, Error> {
    let tail = match head.read()? {
        AnchorState::Valid(a) => {
            let tail = recovery::extend(index, events_dir, Trust::Committed, Some(a.position))?;
            if index.head() < a.position && a.synced {
                return Err(Error::AnchorMismatch {
                    path: head.path().to_path_buf(),
                    anchored: a.position,
                    detail: format!(
                        "the log ends at position {}, so committed events are missing",
                        index.head()
                    ),
                });
            }
            match tail {
                Tail::Clean => recovery::extend(index, events_dir, Trust::Verify, None)?,
                torn => torn,
            }
        }
        AnchorState::Missing | AnchorState::Unreadable => {
            recovery::extend(index, events_dir, Trust::Verify, None)?
        }
    };
    Ok(matches!(tail, Tail::Torn { .. }))
}

/// A segment file that does not continue the indexed log means files were added, renamed or
/// removed by hand: refuse rather than silently ignore part of the history.
fn check_stray_segments(index: &Index, events_dir: &Path) -> Result<(), Error> {
    for (first, path) in segment::list(events_dir)? {
        let known = index.segments.iter().any(|s| s.first == first);
        let empty_next =
            first == index.head() + 1 && fs::metadata(&path).map(|m| m.len() == 0).unwrap_or(false);
        if !known && !empty_next {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "this segment does not continue the log, which ends at position {}",
                    index.head()
                ),
            ));
        }
    }
    Ok(())
}

/// The bytes of every file under the store folder `dir`. Other writers share the folder (the
/// projections' temporary files, other processes), so a file or folder that disappears during
/// the walk counts as gone rather than failing the walk.
fn folder_size(dir: &Path) -> Result<u64, Error> {
    tree_size(dir)?.ok_or_else(|| {
        Error::io(
            "list",
            dir,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// The bytes under `dir`; `None` when `dir` itself is gone.
fn tree_size(dir: &Path) -> Result<Option<u64>, Error> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(Error::io("inspect", entry.path(), e)),
        };
        total += if meta.is_dir() {
            tree_size(&entry.path())?.unwrap_or(0)
        } else {
            meta.len()
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
        Ok(self.read_blocking(query, options)?)
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        Ok(self.read_last_blocking(query)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_size_adds_up_files_and_counts_a_vanished_folder_as_empty()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("a"), [0_u8; 10])?;
        fs::create_dir_all(dir.path().join("sub").join("deeper"))?;
        fs::write(dir.path().join("sub").join("b"), [0_u8; 5])?;
        fs::write(dir.path().join("sub").join("deeper").join("c"), [0_u8; 1])?;
        assert_eq!(folder_size(dir.path())?, 16);
        // A folder removed by another writer while the walk reaches it.
        assert_eq!(tree_size(&dir.path().join("removed meanwhile"))?, None);
        // The store folder itself gone is an error.
        assert!(folder_size(&dir.path().join("no store")).is_err());
        Ok(())
    }
}
