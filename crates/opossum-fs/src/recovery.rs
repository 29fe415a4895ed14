//! Bringing the index level with the log, and repairing what a crash left behind.
//!
//! Two entry points share one set of rules:
//! - [`extend`] reads complete batches the index does not have yet (any process may call it,
//!   no lock needed, it changes nothing on disk);
//! - [`reconcile_locked`] runs under the cross-process lock (at open and before every group
//!   commit): it adopts complete batches that no anchor vouches for, cuts a torn tail after
//!   saving its bytes under `recovered/`, and rewrites the anchor.
//!
//! The rules: a batch is committed once its last line is complete and valid. Bytes after the last
//! committed batch are a torn write and are cut, unless a synced anchor says they were committed,
//! in which case the log was damaged after the fact and the store refuses to touch it.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use opossum_core::Position;

use crate::Error;
use crate::head::{Anchor, AnchorState, HeadFile};
use crate::index::Index;
use crate::record::{ChainHash, split_hash};
use crate::segment::{self, ScanStart, Segment, Tail, Trust};

/// The folder where bytes cut from the log are kept.
pub(crate) const RECOVERED_DIR: &str = "recovered";

/// What opening a store repaired or noticed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Each repair, in the order it was made.
    pub repairs: Vec<Repair>,
}

impl RecoveryReport {
    /// True when the store opened without repairing anything.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.repairs.is_empty()
    }
}

/// One repair made (or declined) while opening a store or before an append.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repair {
    /// The index snapshot was missing, stale or damaged, so the index was rebuilt from the log.
    IndexRebuilt {
        /// Why the snapshot could not be used.
        reason: String,
        /// How many events were read from the log to rebuild it.
        events_scanned: u64,
    },
    /// Bytes after the last committed batch (a write interrupted by a crash) were cut from the
    /// log. They were never acknowledged. A copy was saved first.
    TornTailCut {
        /// The segment file that was cut.
        file: PathBuf,
        /// Where the cut was made.
        offset: u64,
        /// How many bytes were cut.
        bytes: u64,
        /// Where the cut bytes were saved.
        saved_to: PathBuf,
        /// What made them incomplete.
        reason: String,
    },
    /// Complete batches were found after the last anchored commit (a writer stopped between
    /// writing them and updating `head.json`) and were adopted as committed.
    CommitsAdopted {
        /// The first adopted position.
        from: Position,
        /// The last adopted position.
        to: Position,
    },
    /// The last event of the log was whole but had lost its line break, which was added back.
    NewlineRestored {
        /// The segment file.
        file: PathBuf,
        /// Where the newline was written.
        offset: u64,
    },
    /// `head.json` was missing or unreadable and was re-derived from the log.
    AnchorRestored {
        /// What was wrong with it.
        reason: String,
    },
    /// `head.json` recorded unsynced commits (written with `flush_events_immediately = false`)
    /// that the log no longer holds, as after a power loss. The store continues from the log.
    UnsyncedCommitsLost {
        /// The position the anchor recorded.
        anchored: u64,
        /// The last position in the log.
        found: u64,
    },
    /// A repair was needed but not made, because the store is read-only or another process held
    /// the lock; the incomplete data is simply not read.
    Deferred {
        /// Why the repair was not made.
        reason: String,
    },
}

/// Reads complete batches after the index's head into the index, in Committed or Verify trust,
/// stopping after position `stop_after` (if given). Returns what followed the last complete
/// batch of the last segment read.
pub(crate) fn extend(
    index: &mut Index,
    events_dir: &Path,
    trust: Trust,
    stop_after: Option<u64>,
) -> Result<Tail, Error> {
    let reached = |index: &Index| stop_after.is_some_and(|s| index.head() >= s);
    loop {
        if reached(index) {
            return Ok(Tail::Clean);
        }
        // Read the rest of the last segment.
        if let Some(last) = index.segments.last() {
            let file = std::sync::Arc::clone(&last.file);
            let path = last.path.clone();
            let start = ScanStart {
                offset: last.end,
                next_position: index.head() + 1,
                prev_hash: index.head_hash,
            };
            let scanned = segment::scan(&file, &path, start, trust, stop_after, |entry| {
                index.push(entry);
            })?;
            if let Some(last) = index.segments.last_mut() {
                last.end = scanned.end;
            }
            index.tail_unchecked |= scanned.unterminated;
            if let Tail::Torn { .. } = scanned.tail {
                return Ok(scanned.tail);
            }
            if reached(index) {
                return Ok(Tail::Clean);
            }
        }
        // The last segment is read to its end. An empty one is where the log ends; after one
        // with events, the log may continue in the next file.
        let head = index.head();
        if index.segments.last().is_some_and(|s| s.first > head) {
            return Ok(Tail::Clean);
        }
        let path = events_dir.join(segment::file_name(head + 1));
        match fs::File::open(&path) {
            Ok(file) => index.segments.push(Segment {
                first: head + 1,
                end: 0,
                path,
                file: std::sync::Arc::new(file),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tail::Clean),
            Err(e) => return Err(Error::io("open", path, e)),
        }
    }
}

/// Reconciles index, log and anchor while holding the cross-process lock. `sync` is the store's
/// `flush_events_immediately`.
pub(crate) fn reconcile_locked(
    index: &mut Index,
    dir: &Path,
    head: &HeadFile,
    sync: bool,
) -> Result<Vec<Repair>, Error> {
    let events_dir = dir.join(segment::EVENTS_DIR);
    let mut repairs = Vec::new();
    let state = head.read()?;
    let anchor = match state {
        AnchorState::Valid(a) => Some(a),
        AnchorState::Missing | AnchorState::Unreadable => None,
    };

    // Fast path, taken by nearly every append: nothing happened since our last commit.
    if anchor.is_some_and(|a| a.position == index.head() && a.hash == index.head_hash)
        && last_segment_len(index)? == index.segments.last().map_or(0, |s| s.end)
        && next_segment_absent(index, &events_dir)
        && !index.tail_unchecked
    {
        return Ok(repairs);
    }

    let span = tracing::info_span!("recovery", store = %dir.display(), indexed = index.head());
    let _enter = span.enter();
    // What the anchor vouches for is read on trust; anything beyond it is checked link by link.
    if let Some(a) = anchor {
        if let Tail::Torn { offset, reason, .. } =
            extend(index, &events_dir, Trust::Committed, Some(a.position))?
        {
            if a.synced {
                return Err(damaged_commit(index, offset, &reason));
            }
        }
    }
    let anchored_head = index.head();
    match extend(index, &events_dir, Trust::Verify, None)? {
        Tail::Clean => {}
        Tail::Torn {
            offset,
            len,
            reason,
        } => {
            if anchor.is_some_and(|a| a.synced && a.position > index.head()) {
                return Err(damaged_commit(index, offset, &reason));
            }
            repairs.push(cut_torn_tail(index, dir, offset, len, reason)?);
        }
    }
    if index.tail_unchecked {
        if !ends_with_newline(index)? {
            repairs.push(restore_newline(index)?);
        }
        index.tail_unchecked = false;
    }
    if index.head() > anchored_head {
        if let (Some(from), Some(to)) = (
            Position::new(anchored_head + 1).ok(),
            Position::new(index.head()).ok(),
        ) {
            tracing::warn!(from = %from, to = %to, "adopting complete commits found after the anchor");
            repairs.push(Repair::CommitsAdopted { from, to });
        }
        // They may never have been synced by the writer that stopped: make them durable before
        // the anchor vouches for them.
        if let Some(last) = index.segments.last() {
            last.file
                .sync_data()
                .map_err(|e| Error::io("sync", &last.path, e))?;
        }
    }
    match (state, anchor) {
        (_, Some(a)) if a.position > index.head() => {
            if a.synced {
                return Err(anchor_ahead(head.path(), a, index.head()));
            }
            tracing::warn!(
                anchored = a.position,
                found = index.head(),
                "unsynced commits recorded in head.json are not in the log; continuing from the log"
            );
            repairs.push(Repair::UnsyncedCommitsLost {
                anchored: a.position,
                found: index.head(),
            });
        }
        (_, Some(a)) => check_anchor_hash(index, head.path(), a)?,
        (AnchorState::Unreadable, None) => {
            tracing::warn!(path = %head.path().display(), "head.json is unreadable; restoring it from the log");
            repairs.push(Repair::AnchorRestored {
                reason: "head.json did not hold a valid anchor".to_owned(),
            });
        }
        (_, None) if index.head() > 0 => {
            tracing::warn!(path = %head.path().display(), "head.json is missing; restoring it from the log");
            repairs.push(Repair::AnchorRestored {
                reason: "head.json was missing".to_owned(),
            });
        }
        _ => {}
    }
    let fresh = current_anchor(index, sync);
    if anchor != Some(fresh) {
        if sync {
            if let Some(last) = index.segments.last() {
                last.file
                    .sync_data()
                    .map_err(|e| Error::io("sync", &last.path, e))?;
            }
        }
        head.write(fresh, false)?;
    }
    Ok(repairs)
}

/// The anchor describing the index's head.
pub(crate) fn current_anchor(index: &Index, synced: bool) -> Anchor {
    Anchor {
        position: index.head(),
        hash: index.head_hash,
        synced,
    }
}

fn last_segment_len(index: &Index) -> Result<u64, Error> {
    match index.segments.last() {
        None => Ok(0),
        Some(s) => s
            .file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("inspect", &s.path, e)),
    }
}

fn next_segment_absent(index: &Index, events_dir: &Path) -> bool {
    // Another process starts a new segment only after the current one reached its target size.
    let needs_next = index
        .segments
        .last()
        .is_none_or(|s| s.first <= index.head() && s.end >= crate::writer::SEGMENT_TARGET_BYTES);
    !needs_next
        || !events_dir
            .join(segment::file_name(index.head() + 1))
            .exists()
}

fn damaged_commit(index: &Index, offset: u64, reason: &str) -> Error {
    let file = index
        .segments
        .last()
        .map(|s| s.path.clone())
        .unwrap_or_default();
    Error::corrupt(
        file,
        offset,
        format!(
            "committed event {} is damaged or incomplete ({reason})",
            index.head() + 1
        ),
    )
}

fn anchor_ahead(path: &Path, anchor: Anchor, found: u64) -> Error {
    Error::AnchorMismatch {
        path: path.to_path_buf(),
        anchored: anchor.position,
        detail: format!(
            "the log ends at position {found}, so committed events are missing: a segment file \
             was truncated, deleted or restored from an older copy"
        ),
    }
}

/// The anchor's hash must be the hash of the event at its position.
fn check_anchor_hash(index: &Index, path: &Path, anchor: Anchor) -> Result<(), Error> {
    if anchor.position == 0 {
        return Ok(());
    }
    let hash = if anchor.position == index.head() {
        index.head_hash
    } else {
        stored_hash(index, anchor.position)?
    };
    if hash == anchor.hash {
        return Ok(());
    }
    Err(Error::AnchorMismatch {
        path: path.to_path_buf(),
        anchored: anchor.position,
        detail: format!(
            "the event at position {} in the log has a different hash: history was rewritten",
            anchor.position
        ),
    })
}

/// The hash stored on the line of `position`.
pub(crate) fn stored_hash(index: &Index, position: u64) -> Result<ChainHash, Error> {
    let (seg, start, end) = index.locate(position).ok_or_else(|| {
        Error::corrupt(
            PathBuf::new(),
            0,
            format!("position {position} is not indexed"),
        )
    })?;
    let segment = &index.segments[seg];
    let mut line = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
    segment::read_exact_at(&segment.file, &mut line, start)
        .map_err(|e| Error::io("read", &segment.path, e))?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    split_hash(line)
        .map(|(_, h)| h)
        .map_err(|reason| Error::corrupt(&segment.path, start, reason))
}

/// True when the log's committed bytes end with a newline (or there are none).
fn ends_with_newline(index: &Index) -> Result<bool, Error> {
    let Some(segment) = index.segments.last().filter(|s| s.end > 0) else {
        return Ok(true);
    };
    let mut last = [0u8; 1];
    segment::read_exact_at(&segment.file, &mut last, segment.end - 1)
        .map_err(|e| Error::io("read", &segment.path, e))?;
    Ok(last[0] == b'\n')
}

/// Writes the newline that the last line of the log lost (its bytes and hash are intact), so
/// the next append starts a new line.
fn restore_newline(index: &mut Index) -> Result<Repair, Error> {
    let Some(segment) = index.segments.last_mut() else {
        return Err(Error::corrupt(PathBuf::new(), 0, "no segment to repair"));
    };
    let offset = segment.end;
    let writer = OpenOptions::new()
        .write(true)
        .open(&segment.path)
        .map_err(|e| Error::io("open", &segment.path, e))?;
    segment::write_all_at(&writer, b"\n", offset)
        .and_then(|()| writer.sync_data())
        .map_err(|e| Error::io("repair", &segment.path, e))?;
    segment.end = offset + 1;
    tracing::warn!(file = %segment.path.display(), offset, "restored the missing newline after the last event");
    Ok(Repair::NewlineRestored {
        file: segment.path.clone(),
        offset,
    })
}

/// Saves the bytes from `offset` to the end of the last segment under `recovered/`, then cuts
/// them from the segment.
fn cut_torn_tail(
    index: &Index,
    dir: &Path,
    offset: u64,
    len: u64,
    reason: String,
) -> Result<Repair, Error> {
    let Some(segment) = index.segments.last() else {
        return Err(Error::corrupt(
            PathBuf::new(),
            offset,
            "torn tail without a segment",
        ));
    };
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    segment::read_exact_at(&segment.file, &mut bytes, offset)
        .map_err(|e| Error::io("read", &segment.path, e))?;
    let folder = dir.join(RECOVERED_DIR);
    fs::create_dir_all(&folder).map_err(|e| Error::io("create", &folder, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stem = segment
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("segment");
    let saved_to = folder.join(format!("{stem}-at-{offset}-{stamp}.torn"));
    fs::write(&saved_to, &bytes).map_err(|e| Error::io("write", &saved_to, e))?;
    fs::File::open(&saved_to)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("sync", &saved_to, e))?;
    segment::sync_dir(&folder)?;

    let writer = OpenOptions::new()
        .write(true)
        .open(&segment.path)
        .map_err(|e| Error::io("open", &segment.path, e))?;
    writer
        .set_len(offset)
        .and_then(|()| writer.sync_all())
        .map_err(|e| Error::io("truncate", &segment.path, e))?;
    tracing::warn!(
        file = %segment.path.display(),
        offset,
        bytes = len,
        saved_to = %saved_to.display(),
        %reason,
        "cut an uncommitted torn tail from the log"
    );
    Ok(Repair::TornTailCut {
        file: segment.path.clone(),
        offset,
        bytes: len,
        saved_to,
        reason,
    })
}
