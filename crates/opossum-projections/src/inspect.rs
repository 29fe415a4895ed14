//! [`inspect`]: the projection folders of a store as they are on disk, read without the
//! projections' definitions and without changing anything.

use std::path::Path;

use opossum_core::{Position, Timestamp};

use crate::generation::{self, Generation};
use crate::{Error, files};

/// One projection folder as [`inspect`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectionFolder {
    /// The projection's name (its folder's name).
    pub name: String,
    /// The live generation's number, from `current.json` (`None`: never built).
    pub generation: Option<u64>,
    /// Every event up to this position is applied in the live generation (`None`: nothing yet).
    pub checkpoint: Option<Position>,
    /// How many instances the live generation holds.
    pub instances: usize,
    /// Bytes of the live generation's newest records.
    pub live_bytes: u64,
    /// Bytes of every file in the folder.
    pub size_on_disk: u64,
    /// How many files the folder holds.
    pub files: usize,
    /// A rebuild in progress or interrupted (its journal, `rebuild.json`, is present).
    pub rebuild: Option<RebuildJournal>,
}

/// A rebuild that a projection folder's journal records: running, or interrupted and to be
/// resumed by the next process that maintains the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildJournal {
    /// The generation the rebuild writes.
    pub generation: u64,
    /// When it first started.
    pub started_at: Timestamp,
    /// The events applied up to its last flush point.
    pub flushed_position: Option<Position>,
    /// How many times it was resumed after an interruption.
    pub resumed: u32,
}

/// The projection folders under `root` (a store's `projections/` folder), in name order: each
/// one's live generation, checkpoint, size and rebuild journal. Reads only — no lock is taken,
/// nothing is written, cut off or deleted — so it works on a read-only copy and while another
/// process maintains the projections (what it reports is then a moment of their progress). A
/// `root` that does not exist holds no projections.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let folder = tempfile::tempdir()?;
/// let found = opossum_projections::inspect(&folder.path().join("projections"))?;
/// assert!(found.is_empty());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Io`] when a folder or file cannot be read, [`Error::Corrupt`] when `current.json`,
/// `rebuild.json` or the live generation cannot be decoded.
pub fn inspect(root: &Path) -> Result<Vec<ProjectionFolder>, Error> {
    let mut names = files::list_names(root)?;
    names.sort();
    let mut found = Vec::new();
    for name in names {
        let dir = root.join(&name);
        if !dir.is_dir() {
            continue;
        }
        let number = generation::read_current(&dir)?;
        let journal = generation::read_journal(&dir)?;
        if number.is_none() && journal.is_none() {
            // Not a projection folder (or one whose first build never started).
            continue;
        }
        let live = number.map(|n| Generation::observe(&dir, n)).transpose()?;
        let (instances, live_bytes, checkpoint) = live.as_ref().map_or((0, 0, None), |g| {
            let table = g.table();
            (table.len(), table.live_bytes(), g.checkpoint())
        });
        let (files, size_on_disk) = files::folder_size(&dir)?;
        found.push(ProjectionFolder {
            name,
            generation: number,
            checkpoint: checkpoint.and_then(|p| Position::new(p).ok()),
            instances,
            live_bytes,
            size_on_disk,
            files,
            rebuild: journal.map(|j| RebuildJournal {
                generation: j.generation,
                started_at: j.started_at,
                flushed_position: Position::new(j.flushed_position).ok(),
                resumed: j.resumed,
            }),
        });
    }
    Ok(found)
}
