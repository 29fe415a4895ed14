//! The folder of one projection: its generations, the `current.json` pointer that names the
//! live one, the checkpoint of each generation, and the rebuild journal.
//!
//! ```text
//! <root>/<projection name>/
//!     current.json            {"generation": 2}: the generation readers and the daemon use
//!     rebuild.json            the journal of a rebuild in progress (absent otherwise)
//!     gen-000002/
//!         checkpoint.json     {"position": 1234, …}: every event up to here is applied
//!         state/<key>.json    one instance (see `instance.rs`)
//!         tags/<tag key>/<folded value>/<key>   empty marker files: the tag index
//!         tmp/                files being written; emptied whenever the generation is opened
//!     gen-000003/             the generation a rebuild is writing
//! ```
//!
//! A rebuild writes a new generation beside the live one and commits by replacing
//! `current.json` (temp file + rename): one atomic step, after which the old generation is
//! deleted. Nothing is ever deleted before its replacement is in place.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opossum_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;
use opossum_core::Durability;

use crate::files::{self, Staged};

/// The pointer to the live generation.
pub(crate) const CURRENT_FILE: &str = "current.json";
/// The journal of a rebuild in progress.
pub(crate) const JOURNAL_FILE: &str = "rebuild.json";
const CHECKPOINT_FILE: &str = "checkpoint.json";
const GENERATION_PREFIX: &str = "gen-";
/// A replaced generation's folder is renamed to a name starting with this before it is deleted
/// in the background, so that the deletion cannot hit a folder created later at the old path.
const TRASH_PREFIX: &str = ".trash-";

/// `current.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrentPointer {
    generation: u64,
}

/// `checkpoint.json`: every event at or below `position` is applied (0: none yet).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    position: u64,
    updated_at: Timestamp,
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

/// One generation folder: the states, tag index and checkpoint of one build of a projection.
#[derive(Debug)]
pub(crate) struct Generation {
    number: u64,
    dir: PathBuf,
    /// The checkpoint as last written or read: `None` when the file does not exist.
    checkpoint: Mutex<Option<u64>>,
    /// Set when another generation replaced this one: the folder is deleted when the last
    /// handle (a reader's, perhaps) is dropped.
    retired: AtomicBool,
    /// Tombstones written by the last commit: removable once its checkpoint is durable, which
    /// the next commit's first barrier ensures.
    tombstones: Mutex<Vec<String>>,
}

impl Generation {
    /// A handle on generation `number` of `dir`, touching nothing on disk.
    fn handle(dir: &Path, number: u64) -> Generation {
        Generation {
            number,
            dir: dir.join(generation_name(number)),
            checkpoint: Mutex::new(None),
            retired: AtomicBool::new(false),
            tombstones: Mutex::new(Vec::new()),
        }
    }

    /// Opens (creating when needed) generation `number` of the projection folder `dir`, and
    /// empties its `tmp/` folder of anything a crash left.
    pub(crate) fn open(dir: &Path, number: u64) -> Result<Arc<Generation>, Error> {
        let generation = Generation::handle(dir, number);
        files::remove_dir_all(&generation.tmp_dir())?;
        for folder in [
            generation.state_dir(),
            generation.tags_dir(),
            generation.tmp_dir(),
        ] {
            files::create_dir_all(&folder)?;
        }
        generation.reload_checkpoint()?;
        Ok(Arc::new(generation))
    }

    /// A read-only view of generation `number` of `dir`, which another process maintains:
    /// nothing is created, emptied or deleted, now or when the view is dropped.
    pub(crate) fn observe(dir: &Path, number: u64) -> Result<Arc<Generation>, Error> {
        let generation = Generation::handle(dir, number);
        generation.reload_checkpoint()?;
        Ok(Arc::new(generation))
    }

    /// Reads the checkpoint file again (a view of a generation another process writes).
    pub(crate) fn reload_checkpoint(&self) -> Result<(), Error> {
        let checkpoint: Option<CheckpointFile> = files::read_json(&self.checkpoint_path())?;
        *self.lock_checkpoint() = checkpoint.map(|c| c.position);
        Ok(())
    }

    /// The generation's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The generation folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of instance files.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The folder of the tag index.
    pub(crate) fn tags_dir(&self) -> PathBuf {
        self.dir.join("tags")
    }

    /// The folder of files being written.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    fn lock_checkpoint(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        // A plain value: a panic elsewhere cannot leave it half-written.
        self.checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The checkpoint: `None` when none was ever written, `Some(0)` when written before any
    /// event was applied.
    pub(crate) fn checkpoint(&self) -> Option<u64> {
        *self.lock_checkpoint()
    }

    /// Writes the checkpoint file to its temporary name, to be installed after the barrier
    /// that makes the states it covers durable (see `runner::commit`).
    pub(crate) fn stage_checkpoint(&self, position: u64) -> Result<Staged, Error> {
        let file = CheckpointFile {
            position,
            updated_at: Timestamp::now(),
        };
        files::stage_json(
            &self.checkpoint_path(),
            &self.tmp_dir().join(CHECKPOINT_FILE),
            &file,
        )
    }

    /// Records the checkpoint just installed.
    pub(crate) fn set_checkpoint(&self, position: u64) {
        *self.lock_checkpoint() = Some(position);
    }

    /// Takes the tombstones of the previous commit.
    pub(crate) fn take_tombstones(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .tombstones
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Records the tombstones of this commit.
    pub(crate) fn add_tombstones(&self, stems: Vec<String>) {
        self.tombstones
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(stems);
    }

    /// Marks the generation as replaced: its folder goes when the last handle does.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

impl Generation {
    /// Deletes the folder of a replaced generation now, on this thread (nobody else holds it).
    pub(crate) fn delete_now(self) {
        self.retired.store(false, Ordering::Release);
        if let Err(e) = files::remove_dir_all(&self.dir) {
            tracing::warn!(error = %e, "could not delete a replaced projection generation; the next start deletes it");
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.retired.load(Ordering::Acquire) {
            return;
        }
        // The last reader of a replaced generation lets go: delete it, but not on the reader's
        // thread (it may hold thousands of files). First, here, move it out of the way under a
        // name of its own, so that the deletion, whenever it runs, cannot hit a generation
        // folder created at the same path in the meantime (a store deleted and created again).
        let dir = std::mem::take(&mut self.dir);
        let trash = trash_path(&dir);
        let doomed = match std::fs::rename(&dir, &trash) {
            Ok(()) => trash,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(error = %e, folder = %dir.display(), "could not move a replaced projection generation aside; the next start deletes it");
                return;
            }
        };
        let remove = move || {
            if let Err(e) = files::remove_dir_all(&doomed) {
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

/// A name in the same folder as `dir`, unique to this process and this call, for a replaced
/// generation on its way out.
fn trash_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.with_file_name(format!(
        "{TRASH_PREFIX}{name}-{}-{unique}",
        std::process::id()
    ))
}

/// The folder name of generation `number`.
fn generation_name(number: u64) -> String {
    format!("{GENERATION_PREFIX}{number:06}")
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
/// left behind: a journal whose rebuild was committed, and generation folders that are neither
/// live nor being rebuilt.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, Error> {
    files::create_dir_all(dir)?;
    files::remove_file(&dir.join(format!("{CURRENT_FILE}.tmp")))?;
    files::remove_file(&dir.join(format!("{JOURNAL_FILE}.tmp")))?;
    let current = read_current(dir)?;
    let mut journal = read_journal(dir)?;
    if let (Some(j), Some(c)) = (&journal, current) {
        if j.generation == c {
            // The rebuild was committed; only removing its journal was left to do.
            files::remove_file(&dir.join(JOURNAL_FILE))?;
            journal = None;
        }
    }
    let mut highest = current.unwrap_or(0);
    for name in files::list_names(dir)? {
        if name.starts_with(TRASH_PREFIX) {
            // A replaced generation whose deletion a crash interrupted (or is under way, in a
            // process that just let go of the folder): best effort.
            if let Err(e) = files::remove_dir_all(&dir.join(&name)) {
                tracing::debug!(error = %e, folder = %name, "could not delete a replaced generation yet");
            }
            continue;
        }
        let Some(number) = name
            .strip_prefix(GENERATION_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        highest = highest.max(number);
        let keep =
            Some(number) == current || journal.as_ref().is_some_and(|j| j.generation == number);
        if !keep {
            tracing::info!(folder = %dir.join(&name).display(), "deleting a projection generation left by an earlier run");
            files::remove_dir_all(&dir.join(&name))?;
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

/// Writes the journal of the projection folder `dir` to its temporary name, to be installed
/// after the barrier of a flush point.
pub(crate) fn stage_journal(dir: &Path, journal: &Journal) -> Result<Staged, Error> {
    files::stage_json(
        &dir.join(JOURNAL_FILE),
        &dir.join(format!("{JOURNAL_FILE}.tmp")),
        journal,
    )
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
    files::remove_dir_all(&dir.join(generation_name(number)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_keeps_the_live_and_the_journaled_generation_only() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let dir = tmp.path().join("P");
        for n in [1, 2, 3, 4] {
            Generation::open(&dir, n)?;
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
        files::create_dir_all(&trash_path(&dir.join("gen-000001")).join("state"))?;
        let recovered = recover(&dir)?;
        assert_eq!(recovered.current, Some(2));
        assert_eq!(recovered.journal, Some(journal));
        assert_eq!(recovered.highest, 4, "numbers are never reused");
        let mut left = files::list_names(&dir)?;
        left.sort();
        assert_eq!(
            left,
            ["current.json", "gen-000002", "gen-000003", "rebuild.json"]
        );

        // A journal naming the live generation belongs to a committed rebuild.
        write_current(&dir, 3, Durability::Eventual)?;
        let recovered = recover(&dir)?;
        assert_eq!((recovered.current, recovered.journal), (Some(3), None));
        let mut left = files::list_names(&dir)?;
        left.sort();
        assert_eq!(left, ["current.json", "gen-000003"]);
        Ok(())
    }

    #[test]
    fn a_retired_generation_is_deleted_with_its_last_handle() -> Result<(), Error> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let generation = Generation::open(tmp.path(), 7)?;
        let reader = Arc::clone(&generation);
        generation.retire();
        drop(generation);
        assert!(reader.dir().exists());
        let dir = reader.dir().to_path_buf();
        drop(reader);
        // Moved aside at once, then deleted by a background thread.
        assert!(!dir.exists(), "still at its path after its last handle");
        // A generation created at the same path meanwhile (as in a store deleted and created
        // again) is not touched by that deletion.
        let again = Generation::open(tmp.path(), 7)?;
        files::write_file(&again.state_dir().join("x.json"), b"{}")?;
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
        assert!(again.state_dir().join("x.json").exists());

        let replaced = Generation::open(tmp.path(), 8)?;
        replaced.retire();
        let dir = replaced.dir().to_path_buf();
        Arc::try_unwrap(replaced)
            .map_err(|_| Error::corrupt(&dir, "still shared"))?
            .delete_now();
        assert!(!dir.exists(), "deleted at once");
        Ok(())
    }
}
