//! The engine state behind a [`FileEventStore`](crate::FileEventStore) handle: the index, the
//! anchor and the file system, shared by the handle's readers and its writer thread.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use opossum_core::{AppendCondition, Direction, Position, Query, ReadOptions, SequencedEvent};

use crate::head::{Anchor, HeadFile};
use crate::index::Index;
use crate::layout::Layout;
use crate::recovery;
use crate::snapshot;
use crate::vfs::{Vfs, VfsFile};
use crate::{Error, StoreOptions, StoredEvent};

/// Reads fetch events in runs of at most this many, releasing the index lock in between.
const READ_BATCH: usize = 1024;

/// Nearby lines are fetched with one read of at most this many bytes …
const MAX_COALESCED_READ: u64 = 1 << 20;
/// … when at most this many bytes of other lines lie between them.
const MAX_READ_GAP: u64 = 4 << 10;

/// Why appends are refused: a failed append could be neither undone nor recorded as void.
#[derive(Clone, Debug)]
pub(crate) struct Poison {
    pub(crate) reason: String,
    /// The void anchor still to be made durable; each later append tries again, and once it
    /// is written the store accepts appends again.
    pub(crate) fence: Option<Anchor>,
}

/// State shared by the store handle, its readers and its writer thread.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) layout: Layout,
    pub(crate) options: StoreOptions,
    /// The folder's file system may serve cached views to its clients (a network share or a
    /// FUSE mount, or a kind that cannot be told): files are re-opened and re-checked under the
    /// lock, and every append is read back before it is acknowledged.
    pub(crate) revalidate: bool,
    pub(crate) index: RwLock<Index>,
    pub(crate) head: HeadFile,
    /// Set when a failed write could be neither undone nor recorded as void; appends are
    /// refused until that record is made.
    pub(crate) poisoned: Mutex<Option<Poison>>,
    /// The head position of the last saved snapshot.
    pub(crate) snapshot_head: Mutex<u64>,
    /// Appends committed by this process's writer, and the group commits (syncs) they took.
    pub(crate) appends_committed: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    /// The head as this process last indexed it, announced to waiting subscribers; a folder
    /// watcher also pokes it when other processes write.
    pub(crate) appended: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Engine {
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
    pub(crate) fn refresh(&self) -> Result<(), Error> {
        let Some(anchor) = self.head.read()?.anchor() else {
            return Ok(());
        };
        if anchor.position <= self.read_index().head() {
            return Ok(());
        }
        let mut index = self.write_index();
        recovery::catch_up(
            &mut index,
            &*self.vfs,
            &self.layout,
            anchor,
            self.revalidate,
        )?;
        drop(index);
        self.announce();
        Ok(())
    }

    /// Tells waiting subscribers the head this process has indexed, when it moved.
    pub(crate) fn announce(&self) {
        let head = self.read_index().head();
        self.appended.send_if_modified(|seen| {
            let moved = *seen < head;
            *seen = head.max(*seen);
            moved
        });
    }

    /// Reads the events at `positions` (all indexed, in one direction), keeping those `query`
    /// matches. The caller holds the index lock throughout: only the writer, which owns it.
    fn fetch(
        &self,
        index: &Index,
        positions: &[u64],
        query: &Query,
        out: &mut Vec<SequencedEvent>,
    ) -> Result<(), Error> {
        let runs = self.plan(index, positions)?;
        read_runs(runs, query, out)
    }

    /// Where the lines of `positions` are, grouped into reads. What it returns holds its own
    /// handles on the segment files, so the reads happen after the index lock is released: a
    /// reader never holds the lock across file I/O that the writer (and, through it, every
    /// other process's appender) would wait for.
    fn plan(&self, index: &Index, positions: &[u64]) -> Result<Vec<Run>, Error> {
        let mut runs: Vec<Run> = Vec::new();
        for p in positions {
            let Some((seg, start, end)) = index.locate(*p) else {
                return Err(Error::corrupt(
                    self.layout.events_dir(),
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
                None => {
                    let segment = &index.segments[seg];
                    runs.push(Run {
                        segment: seg,
                        file: Arc::clone(&segment.file),
                        path: segment.path.clone(),
                        start,
                        end,
                        lines: vec![(*p, start, end)],
                    });
                }
            }
        }
        Ok(runs)
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
        let mut before = options.until.map_or(head, Position::get).min(head) + 1;
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
            let runs = self.plan(&index, &positions)?;
            drop(index);
            read_runs(runs, query, &mut out)?;
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

    /// The events `query` and `options` select, each with its line as stored and the chain
    /// hash of the line before it.
    pub(crate) fn read_stored(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<StoredEvent>, Error> {
        self.refresh()?;
        let limit = options.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let head = self.read_index().head();
        let mut after = options.after.map_or(0, Position::get);
        let mut before = options.until.map_or(head, Position::get).min(head) + 1;
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
            // Each event's predecessor too, for its hash: one sorted list of lines to read.
            let mut lines: Vec<u64> = positions
                .iter()
                .flat_map(|p| [p - 1, *p])
                .filter(|p| *p > 0)
                .collect();
            lines.sort_unstable();
            lines.dedup();
            let runs = self.plan(&index, &lines)?;
            drop(index);
            let mut found = std::collections::HashMap::with_capacity(lines.len());
            for_each_line(runs, |position, path, offset, line| {
                found.insert(position, (path.to_path_buf(), offset, line.to_vec()));
                Ok(())
            })?;
            for p in &positions {
                // A line stays in the map: it may be the next event's predecessor.
                let Some((file, offset, bytes)) = found.get(p).cloned() else {
                    continue;
                };
                let previous = if *p == 1 {
                    Some(crate::record::ChainHash::GENESIS)
                } else {
                    found
                        .get(&(p - 1))
                        .and_then(|(_, _, prev)| crate::record::split_hash(prev).ok())
                        .map(|(_, hash)| hash)
                };
                let corrupt = |reason: String| Error::corrupt(&file, offset, reason);
                let previous = previous.ok_or_else(|| {
                    corrupt(format!("the line before position {p} holds no hash"))
                })?;
                let (_, hash) =
                    crate::record::split_hash(&bytes).map_err(|r| corrupt(r.to_owned()))?;
                let event = crate::record::decode_event(&bytes).map_err(corrupt)?;
                if !query.matches(&event.event) {
                    continue;
                }
                let line = String::from_utf8(bytes)
                    .map_err(|_| corrupt("the line is not UTF-8".to_owned()))?;
                out.push(StoredEvent {
                    event,
                    line,
                    hash: hash.to_hex(),
                    previous_hash: previous.to_hex(),
                    file,
                    offset,
                });
            }
            if out.len() >= limit || positions.len() < wanted {
                break;
            }
            match options.direction {
                Direction::Ascending => after = last,
                Direction::Descending => before = last,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    pub(crate) fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.refresh()?;
        let mut before = self.read_index().head() + 1;
        loop {
            let index = self.read_index();
            let Some(p) = index
                .candidates(query, 0, before, Direction::Descending)
                .next()
            else {
                return Ok(None);
            };
            let runs = self.plan(&index, &[p])?;
            drop(index);
            let mut found = Vec::with_capacity(1);
            read_runs(runs, query, &mut found)?;
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

    /// Refuses appends until `poison.fence` (if any) is made durable.
    pub(crate) fn poison(&self, poison: Poison) {
        tracing::error!(reason = %poison.reason, "store refuses further appends");
        *self
            .poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(poison);
    }

    pub(crate) fn poisoned(&self) -> Option<Poison> {
        self.poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn cure(&self) {
        *self
            .poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Saves the index snapshot if it moved on since the last one.
    pub(crate) fn save_snapshot(&self) -> Result<(), Error> {
        // Never into a store that was deleted (or replaced by another) since it was opened:
        // that would re-create its folder, or overwrite the new store's snapshot.
        if let Err(Error::StoreDeleted { .. }) = self.head.read_fresh() {
            tracing::debug!("the store was deleted; its index snapshot is not saved");
            return Ok(());
        }
        // Held through the write, so that two saves of this process never interleave.
        let mut saved = self
            .snapshot_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Encoded under the index lock, written without it: the writer never waits for the
        // snapshot's file I/O.
        let (head, bytes) = {
            let index = self.read_index();
            if index.head() == *saved {
                return Ok(());
            }
            (index.head(), snapshot::encode(&index))
        };
        snapshot::save_encoded(&*self.vfs, &self.layout, &bytes, false)?;
        *saved = head;
        Ok(())
    }
}

/// One read of a segment file, and the lines it holds as (position, start, end).
struct Run {
    segment: usize,
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    start: u64,
    end: u64,
    lines: Vec<(u64, u64, u64)>,
}

/// Reads `runs` and decodes their lines, keeping the events `query` matches.
fn read_runs(runs: Vec<Run>, query: &Query, out: &mut Vec<SequencedEvent>) -> Result<(), Error> {
    for_each_line(runs, |position, path, start, line| {
        let event = crate::record::decode_event(line)
            .map_err(|reason| Error::corrupt(path, start, reason))?;
        if event.position.get() != position {
            return Err(Error::corrupt(
                path,
                start,
                format!("expected position {position}, found {}", event.position),
            ));
        }
        if query.matches(&event.event) {
            out.push(event);
        }
        Ok(())
    })
}

/// Reads `runs` and hands each line (without its newline) to `visit`, with its position, its
/// file and its offset there.
fn for_each_line(
    runs: Vec<Run>,
    mut visit: impl FnMut(u64, &std::path::Path, u64, &[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    for run in runs {
        buf.resize(usize::try_from(run.end - run.start).unwrap_or(0), 0);
        run.file
            .read_exact_at(&mut buf, run.start)
            .map_err(|e| Error::io("read", &run.path, e))?;
        for (position, start, end) in run.lines {
            let from = (start - run.start) as usize;
            let to = (end - run.start) as usize;
            let line = buf[from..to].strip_suffix(b"\n").unwrap_or(&buf[from..to]);
            visit(position, &run.path, start, line)?;
        }
    }
    Ok(())
}
