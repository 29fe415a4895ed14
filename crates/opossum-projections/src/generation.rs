//! The folder of one projection: its generations, the `current.json` pointer that names the
//! live one, and the rebuild journal.
//!
//! ```text
//! <root>/<projection name>/
//!     current.json            {"generation": 2}: the generation readers and the daemon use
//!     rebuild.json            the journal of a rebuild in progress (absent otherwise)
//!     gen-000002.jsonl        the live generation: instance records and commits (`packed.rs`)
//!     gen-000003.jsonl        the generation a rebuild or a compaction is writing
//! ```
//!
//! A rebuild (or a compaction) writes a new generation beside the live one and commits by
//! replacing `current.json` (temp file + rename): one atomic step, after which the old
//! generation is deleted. Nothing is ever deleted before its replacement is in place.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use opossum_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::files;
use crate::packed::{self, Pending, Table};
use opossum_core::Durability;

/// The pointer to the live generation.
pub(crate) const CURRENT_FILE: &str = "current.json";
/// The journal of a rebuild in progress.
pub(crate) const JOURNAL_FILE: &str = "rebuild.json";
const GENERATION_PREFIX: &str = "gen-";
const GENERATION_SUFFIX: &str = ".jsonl";
/// A replaced generation's file is renamed to a name starting with this before it is deleted,
/// so that the deletion cannot hit a file created later at the old path.
const TRASH_PREFIX: &str = ".trash-";
/// Reads of records closer than this are merged into one read.
const MAX_READ_GAP: u64 = 4 * 1024;
/// A merged read is at most this long.
const MAX_MERGED_READ: u64 = 1 << 20;
/// A compaction commits every this many bytes, so that its buffer stays small.
const COMPACTION_CHUNK: usize = 4 << 20;

/// `current.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrentPointer {
    generation: u64,
}

/// `rebuild.json`: a rebuild in progress, written at its start and at every flush point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Journal {
    /// The generation the rebuild writes.
    pub(crate) generation: u64,
    /// When the rebuild first started.
    pub(crate) started_at: Timestamp,
    /// The generation's checkpoint at the last flush point (0: none yet).
    pub(crate) flushed_position: u64,
    /// Events applied up to that flush point, over every run of this rebuild.
    pub(crate) events_applied: u64,
    /// How many times the rebuild was resumed after an interruption.
    pub(crate) resumed: u32,
}

/// One generation: one packed file and the table that indexes it.
#[derive(Debug)]
pub(crate) struct Generation {
    number: u64,
    path: PathBuf,
    file: File,
    table: RwLock<Table>,
    /// A follower's view: it reads what the maintainer appends, writes nothing, deletes nothing.
    observed: bool,
    /// Serializes a follower's refreshes (each reads the file's new commits).
    refreshing: Mutex<()>,
    /// A write failed part-way: the next commit first cuts the file back to the table's end.
    dirty_tail: AtomicBool,
    /// Set when another generation replaced this one: the file is deleted when the last
    /// handle (a reader's, perhaps) is dropped.
    retired: AtomicBool,
}

impl Generation {
    /// Opens generation `number` of the projection folder `dir` for writing, creating its
    /// file when needed, and cuts off anything after the last complete commit that a crash
    /// left.
    pub(crate) fn open(
        dir: &Path,
        number: u64,
        durability: Durability,
    ) -> Result<Arc<Generation>, Error> {
        let path = generation_path(dir, number);
        files::create_dir_all(dir)?;
        let file = files::open_or_create(&path)?;
        let scanned = packed::scan(&file, &path, 0)?;
        if scanned.header.is_none() {
            // New, or its first write was cut short: start it (again) with its header.
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &path, e))?;
            packed::write_all_at(&file, &packed::header(&name, number), 0)
                .map_err(|e| Error::io("write", &path, e))?;
            if durability.is_immediate() {
                file.sync_all().map_err(|e| Error::io("sync", &path, e))?;
                files::sync_dir(dir)?;
            }
            return Generation::open(dir, number, Durability::Eventual);
        }
        if let Some(torn) = &scanned.torn {
            tracing::warn!(
                file = %path.display(),
                bytes = torn.len,
                reason = %torn.reason,
                "cutting off the end of a projection file that no complete commit covers (a write a crash cut short); the events it held are applied again"
            );
            file.set_len(scanned.delta.end)
                .map_err(|e| Error::io("truncate", &path, e))?;
            if durability.is_immediate() {
                file.sync_all().map_err(|e| Error::io("sync", &path, e))?;
            }
        }
        Ok(Generation::with(number, path, file, scanned, false))
    }

    /// A generation of `file`, indexed by what `scanned` found in it.
    fn with(
        number: u64,
        path: PathBuf,
        file: File,
        scanned: packed::Scanned,
        observed: bool,
    ) -> Arc<Generation> {
        let mut table = Table::default();
        table.apply(scanned.delta);
        Arc::new(Generation {
            number,
            path,
            file,
            table: RwLock::new(table),
            observed,
            refreshing: Mutex::new(()),
            dirty_tail: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        })
    }

    /// A read-only view of generation `number` of `dir`, which another process maintains:
    /// nothing is written, cut off or deleted, now or when the view is dropped.
    pub(crate) fn observe(dir: &Path, number: u64) -> Result<Arc<Generation>, Error> {
        let path = generation_path(dir, number);
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let scanned = packed::scan(&file, &path, 0)?;
        Ok(Generation::with(number, path, file, scanned, true))
    }

    /// In a view of a generation another process writes: reads the commits it appended since
    /// the last look.
    pub(crate) fn refresh(&self) -> Result<(), Error> {
        if !self.observed {
            return Ok(());
        }
        let _one_at_a_time = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io("read the length of", &self.path, e))?
            .len();
        let end = self.table().end();
        if len == end {
            return Ok(());
        }
        if len < end {
            // Cut back below what this view read: the maintainer lost commits it had not made
            // durable (a power cut on the machine holding the folder). Read it all again.
            tracing::warn!(file = %self.path.display(), "a projection file became shorter than what was read of it; reading it again");
            let scanned = packed::scan(&self.file, &self.path, 0)?;
            let mut table = Table::default();
            table.apply(scanned.delta);
            *self.table.write().unwrap_or_else(PoisonError::into_inner) = table;
            return Ok(());
        }
        // The scan reads without holding the table: readers go on meanwhile.
        let scanned = packed::scan(&self.file, &self.path, end)?;
        if scanned.delta.end > end {
            self.table
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(scanned.delta);
        }
        Ok(())
    }

    /// The table, for a read: held only to look up where records are, never across a read of
    /// the file.
    pub(crate) fn table(&self) -> RwLockReadGuard<'_, Table> {
        // The table is only changed by applying whole deltas; a panic in the middle of one
        // (allocation failure) is not recoverable anyway.
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The generation's file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint: `None` before the first commit, `Some(0)` for a commit before any event
    /// was applied.
    pub(crate) fn checkpoint(&self) -> Option<u64> {
        self.table().checkpoint()
    }

    /// The length of the file as written by this process (the end of its last commit).
    pub(crate) fn file_len(&self) -> u64 {
        self.table().end()
    }

    /// Appends `pending` and a commit line for `checkpoint` in one write, made durable with one
    /// `fdatasync` when `durability` says so, then shows it to readers.
    pub(crate) fn commit(
        &self,
        pending: Pending,
        checkpoint: u64,
        durability: Durability,
    ) -> Result<(), Error> {
        let at = self.table().end();
        if self.dirty_tail.load(Ordering::Acquire) {
            self.file
                .set_len(at)
                .map_err(|e| Error::io("truncate", &self.path, e))?;
            self.dirty_tail.store(false, Ordering::Release);
        }
        let (bytes, delta) = pending.seal(checkpoint, at);
        let written = packed::write_all_at(&self.file, &bytes, at).and_then(|()| {
            if durability.is_immediate() {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            self.dirty_tail.store(true, Ordering::Release);
            return Err(Error::io("write", &self.path, e));
        }
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(delta);
        Ok(())
    }

    /// Reads the record lines at `locations` (offset and length), in their order.
    pub(crate) fn read_lines(&self, locations: &[(u64, u32)]) -> Result<Vec<Vec<u8>>, Error> {
        let mut order: Vec<usize> = (0..locations.len()).collect();
        order.sort_by_key(|i| locations[*i].0);
        let mut lines: Vec<Vec<u8>> = vec![Vec::new(); locations.len()];
        let mut buf = Vec::new();
        let mut run: Vec<usize> = Vec::new();
        let mut flush = |run: &mut Vec<usize>, buf: &mut Vec<u8>| -> Result<(), Error> {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                return Ok(());
            };
            let start = locations[*first].0;
            let end = locations[*last].0 + u64::from(locations[*last].1);
            buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
            packed::read_exact_at(&self.file, buf, start)
                .map_err(|e| Error::io("read", &self.path, e))?;
            for i in run.drain(..) {
                let (offset, len) = locations[i];
                let from = usize::try_from(offset - start).unwrap_or(0);
                lines[i] = buf[from..from + len as usize].to_vec();
            }
            Ok(())
        };
        let mut run_end = 0;
        for i in order {
            let (offset, len) = locations[i];
            let end = offset + u64::from(len);
            let joins = run.first().is_some_and(|first| {
                offset <= run_end + MAX_READ_GAP
                    && end.max(run_end) - locations[*first].0 <= MAX_MERGED_READ
            });
            if !joins {
                flush(&mut run, &mut buf)?;
                run_end = 0;
            }
            run.push(i);
            run_end = run_end.max(end);
        }
        flush(&mut run, &mut buf)?;
        Ok(lines)
    }

    /// True when the dead records (replaced or deleted instances) take more room than the live
    /// ones and at least `min_garbage` bytes.
    pub(crate) fn wants_compaction(&self, min_garbage: u64) -> bool {
        let table = self.table();
        let garbage = table.end().saturating_sub(table.live_bytes());
        table.checkpoint().is_some() && garbage >= min_garbage.max(table.live_bytes())
    }

    /// Writes every live instance's newest record into the fresh generation `target`, with this
    /// generation's checkpoint. The caller holds the projection's writer lock, so nothing is
    /// committed here meanwhile.
    pub(crate) fn compact_into(
        &self,
        target: &Generation,
        durability: Durability,
    ) -> Result<(), Error> {
        let (entries, checkpoint) = {
            let table = self.table();
            let entries: Vec<(String, packed::Located)> = table
                .after(None)
                .map(|(k, l)| (k.clone(), l.clone()))
                .collect();
            (entries, table.checkpoint().unwrap_or(0))
        };
        let mut pending = Pending::default();
        for chunk in entries.chunks(4096) {
            let locations: Vec<(u64, u32)> = chunk.iter().map(|(_, l)| (l.offset, l.len)).collect();
            let lines = self.read_lines(&locations)?;
            for ((key, located), line) in chunk.iter().zip(&lines) {
                pending.copy(key, line, located);
            }
            if pending.len() >= COMPACTION_CHUNK {
                target.commit(
                    std::mem::take(&mut pending),
                    checkpoint,
                    Durability::Eventual,
                )?;
            }
        }
        // The last commit's sync makes every earlier one durable too.
        target.commit(pending, checkpoint, durability)
    }

    /// Marks the generation as replaced: its file goes when the last handle does.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Deletes the file of a replaced generation now, on this thread (nobody else holds it).
    pub(crate) fn delete_now(self) {
        self.retired.store(false, Ordering::Release);
        if let Err(e) = files::remove_file(&self.path) {
            tracing::warn!(error = %e, "could not delete a replaced projection generation; the next start deletes it");
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if self.observed || !self.retired.load(Ordering::Acquire) {
            return;
        }
        // The last reader of a replaced generation lets go. First, here, move the file out of
        // the way under a name of its own, so that the deletion, whenever it runs, cannot hit
        // a generation created at the same path in the meantime (a store deleted and created
        // again); then delete it off the reader's thread.
        let path = std::mem::take(&mut self.path);
        let trash = trash_path(&path);
        match std::fs::rename(&path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(error = %e, file = %path.display(), "could not move a replaced projection generation aside; the next start deletes it");
                return;
            }
        }
        let remove = move || {
            if let Err(e) = files::remove_file(&trash) {
                tracing::warn!(error = %e, "could not delete a replaced projection generation; the next start deletes it");
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("opossum-cleanup".to_owned())
            .spawn(remove)
        {
            tracing::warn!(error = %e, "could not start a thread to delete a replaced projection generation; the next start deletes it");
        }
    }
}

/// A name in the same folder as `path`, unique to this process and this call, for a replaced
/// generation on its way out.
fn trash_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        "{TRASH_PREFIX}{name}-{}-{unique}",
        std::process::id()
    ))
}

/// The file of generation `number` of the projection folder `dir`.
pub(crate) fn generation_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{GENERATION_PREFIX}{number:06}{GENERATION_SUFFIX}"))
}

/// What a projection folder holds after [`recover`] tidied it.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The live generation's number, if there is one.
    pub(crate) current: Option<u64>,
    /// A rebuild that was interrupted and should be resumed.
    pub(crate) journal: Option<Journal>,
    /// The highest generation number seen, to number new ones after it.
    pub(crate) highest: u64,
}

/// Reads the pointer and the journal of the projection folder `dir` and removes what a crash
/// left behind: a journal whose rebuild was committed, and generations that are neither live
/// nor being rebuilt. A folder in the layout of earlier versions (a folder per generation, a
/// file per instance) is cleared, so that the projection is rebuilt in this one.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, Error> {
    files::create_dir_all(dir)?;
    files::remove_file(&dir.join(format!("{CURRENT_FILE}.tmp")))?;
    files::remove_file(&dir.join(format!("{JOURNAL_FILE}.tmp")))?;
    let names = files::list_names(dir)?;
    let legacy: Vec<&String> = names
        .iter()
        .filter(|n| parse_number(n, "").is_some() && dir.join(n).is_dir())
        .collect();
    let mut highest = 0;
    if !legacy.is_empty() {
        tracing::info!(
            folder = %dir.display(),
            "this projection is in the one-file-per-instance layout of earlier versions; it is cleared and rebuilt from the event log into the packed layout"
        );
        files::remove_file(&dir.join(CURRENT_FILE))?;
        files::remove_file(&dir.join(JOURNAL_FILE))?;
        for name in legacy {
            highest = highest.max(parse_number(name, "").unwrap_or(0));
            let trash = trash_path(&dir.join(name));
            files::rename(&dir.join(name), &trash)?;
            files::remove_dir_all(&trash)?;
        }
    }
    let current = read_current(dir)?;
    let mut journal = read_journal(dir)?;
    if let (Some(j), Some(c)) = (&journal, current) {
        if j.generation == c {
            // The rebuild was committed; only removing its journal was left to do.
            files::remove_file(&dir.join(JOURNAL_FILE))?;
            journal = None;
        }
    }
    highest = highest.max(current.unwrap_or(0));
    for name in files::list_names(dir)? {
        let path = dir.join(&name);
        if name.starts_with(TRASH_PREFIX) {
            // A replaced generation whose deletion a crash interrupted (or is under way, in a
            // process that just let go of the folder): best effort.
            let removed = if path.is_dir() {
                files::remove_dir_all(&path)
            } else {
                files::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::debug!(error = %e, file = %name, "could not delete a replaced generation yet");
            }
            continue;
        }
        let Some(number) = parse_number(&name, GENERATION_SUFFIX) else {
            continue;
        };
        highest = highest.max(number);
        let keep =
            Some(number) == current || journal.as_ref().is_some_and(|j| j.generation == number);
        if !keep {
            tracing::info!(file = %path.display(), "deleting a projection generation left by an earlier run");
            files::remove_file(&path)?;
        }
    }
    if let Some(j) = &journal {
        highest = highest.max(j.generation);
    }
    Ok(Recovered {
        current,
        journal,
        highest,
    })
}

/// The number of a generation entry named `gen-NNNNNN` + `suffix`.
fn parse_number(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(GENERATION_PREFIX)?.strip_suffix(suffix)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The number of the live generation of the projection folder `dir`, from `current.json`.
pub(crate) fn read_current(dir: &Path) -> Result<Option<u64>, Error> {
    let pointer: Option<CurrentPointer> = files::read_json(&dir.join(CURRENT_FILE))?;
    Ok(pointer.map(|p| p.generation))
}

/// Makes generation `number` the live one: one atomic rename.
pub(crate) fn write_current(dir: &Path, number: u64, durability: Durability) -> Result<(), Error> {
    files::write_json_atomic(
        &dir.join(CURRENT_FILE),
        &dir.join(format!("{CURRENT_FILE}.tmp")),
        &CurrentPointer { generation: number },
        durability,
    )
}

/// Reads the journal of the projection folder `dir`.
pub(crate) fn read_journal(dir: &Path) -> Result<Option<Journal>, Error> {
    files::read_json(&dir.join(JOURNAL_FILE))
}

/// Writes the journal of the projection folder `dir` atomically.
pub(crate) fn write_journal(
    dir: &Path,
    journal: &Journal,
    durability: Durability,
) -> Result<(), Error> {
    files::write_json_atomic(
        &dir.join(JOURNAL_FILE),
        &dir.join(format!("{JOURNAL_FILE}.tmp")),
        journal,
        durability,
    )
}

/// Removes the journal of the projection folder `dir`.
pub(crate) fn remove_journal(dir: &Path) -> Result<(), Error> {
    files::remove_file(&dir.join(JOURNAL_FILE))
}

/// Deletes generation `number` of the projection folder `dir` (an abandoned rebuild's).
pub(crate) fn remove_generation(dir: &Path, number: u64) -> Result<(), Error> {
    files::remove_file(&generation_path(dir, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut left = files::list_names(dir).unwrap();
        left.sort();
        left
    }

    #[test]
    fn recovery_keeps_the_live_and_the_journaled_generation_only() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let dir = tmp.path().join("P");
        for n in [1, 2, 3, 4] {
            Generation::open(&dir, n, Durability::Eventual)?;
        }
        write_current(&dir, 2, Durability::Eventual)?;
        let journal = Journal {
            generation: 3,
            started_at: Timestamp::now(),
            flushed_position: 10,
            events_applied: 10,
            resumed: 0,
        };
        write_journal(&dir, &journal, Durability::Eventual)?;
        // A replaced generation whose deletion a crash interrupted.
        files::write_file(&trash_path(&generation_path(&dir, 1)), b"x")?;
        let recovered = recover(&dir)?;
        assert_eq!(recovered.current, Some(2));
        assert_eq!(recovered.journal, Some(journal));
        assert_eq!(recovered.highest, 4, "numbers are never reused");
        assert_eq!(
            names(&dir),
            [
                "current.json",
                "gen-000002.jsonl",
                "gen-000003.jsonl",
                "rebuild.json"
            ]
        );

        // A journal naming the live generation belongs to a committed rebuild.
        write_current(&dir, 3, Durability::Eventual)?;
        let recovered = recover(&dir)?;
        assert_eq!((recovered.current, recovered.journal), (Some(3), None));
        assert_eq!(names(&dir), ["current.json", "gen-000003.jsonl"]);
        Ok(())
    }

    #[test]
    fn the_layout_of_earlier_versions_is_cleared_for_a_rebuild() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let dir = tmp.path().join("P");
        files::create_dir_all(&dir.join("gen-000007/state"))?;
        files::write_file(&dir.join("gen-000007/state/a.json"), b"{}")?;
        files::write_file(&dir.join("gen-000007/checkpoint.json"), b"{}")?;
        write_current(&dir, 7, Durability::Eventual)?;
        let recovered = recover(&dir)?;
        assert_eq!((recovered.current, recovered.journal), (None, None));
        assert_eq!(recovered.highest, 7, "the new layout numbers after the old");
        assert!(names(&dir).is_empty());
        Ok(())
    }

    #[test]
    fn a_retired_generation_is_deleted_with_its_last_handle() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let generation = Generation::open(tmp.path(), 7, Durability::Eventual)?;
        let reader = Arc::clone(&generation);
        generation.retire();
        drop(generation);
        let path = reader.path().to_path_buf();
        assert!(path.exists());
        drop(reader);
        // Moved aside at once, then deleted by a background thread.
        assert!(!path.exists(), "still at its path after its last handle");
        // A generation created at the same path meanwhile (as in a store deleted and created
        // again) is not touched by that deletion.
        let again = Generation::open(tmp.path(), 7, Durability::Eventual)?;
        let trash_left = || -> Result<bool, Error> {
            Ok(files::list_names(tmp.path())?
                .iter()
                .any(|n| n.starts_with(TRASH_PREFIX)))
        };
        // Wait for the background deletion (the deadline is a hang guard).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while trash_left()? {
            assert!(std::time::Instant::now() < deadline, "never deleted");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(again.path().exists());

        let replaced = Generation::open(tmp.path(), 8, Durability::Eventual)?;
        replaced.retire();
        let path = replaced.path().to_path_buf();
        Arc::try_unwrap(replaced)
            .map_err(|_| Error::corrupt(&path, "still shared"))?
            .delete_now();
        assert!(!path.exists(), "deleted at once");
        Ok(())
    }

    #[test]
    fn a_failed_write_publishes_nothing_and_the_next_commit_cuts_its_leftovers() -> Result<(), Error>
    {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let dir = tmp.path().join("P");
        let writer = Generation::open(&dir, 1, Durability::Eventual)?;
        let mut pending = Pending::default();
        pending.record("a", 1, &[], Some(&1_u32), writer.path())?;
        writer.commit(pending, 1, Durability::Eventual)?;
        let end = writer.file_len();

        // A handle that cannot write (a view) fails the write: the table does not move.
        let view = Generation::observe(&dir, 1)?;
        let mut pending = Pending::default();
        pending.record("b", 2, &[], Some(&2_u32), view.path())?;
        assert!(matches!(
            view.commit(pending, 2, Durability::Eventual),
            Err(Error::Io { .. })
        ));
        assert_eq!((view.checkpoint(), view.table().len()), (Some(1), 1));
        assert!(view.dirty_tail.load(Ordering::Acquire));

        // Bytes a failed write left after the end are cut before the next commit is written.
        packed::write_all_at(&writer.file, b"{\"key\":\"half-writ", end)
            .map_err(|e| Error::io("write", writer.path(), e))?;
        writer.dirty_tail.store(true, Ordering::Release);
        let mut pending = Pending::default();
        pending.record("c", 3, &[], Some(&3_u32), writer.path())?;
        writer.commit(pending, 3, Durability::Eventual)?;
        drop(writer);
        let reopened = Generation::observe(&dir, 1)?;
        let keys: Vec<String> = reopened
            .table()
            .after(None)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(reopened.checkpoint(), Some(3));
        Ok(())
    }

    #[test]
    fn commits_are_seen_by_a_follower_and_survive_a_reopen() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let dir = tmp.path().join("P");
        files::create_dir_all(&dir)?;
        let writer = Generation::open(&dir, 1, Durability::Eventual)?;
        let view = Generation::observe(&dir, 1)?;
        assert_eq!(view.checkpoint(), None);
        let mut pending = Pending::default();
        pending.record("a", 5, &[], Some(&1_u32), writer.path())?;
        writer.commit(pending, 5, Durability::Eventual)?;
        view.refresh()?;
        assert_eq!(view.checkpoint(), Some(5));
        assert_eq!(view.table().len(), 1);
        // A torn write after the commit is cut off when the file is opened again.
        let end = writer.file_len();
        packed::write_all_at(&writer.file, b"{\"key\":\"b\",\"posi", end)
            .map_err(|e| Error::io("write", writer.path(), e))?;
        drop(writer);
        let reopened = Generation::open(&dir, 1, Durability::Eventual)?;
        assert_eq!(reopened.file_len(), end);
        assert_eq!(
            std::fs::metadata(reopened.path()).map(|m| m.len()).ok(),
            Some(end)
        );
        assert_eq!(reopened.checkpoint(), Some(5));
        Ok(())
    }
}
