//! Bringing the index level with the log, and repairing what a crash left behind. Every rule
//! about what the log, the anchor and the files around them mean lives here.
//!
//! Entry points, all sharing one set of rules:
//! - [`catch_up`] reads what the anchor vouches for into a reader's index (no lock, no change on
//!   disk);
//! - [`read_unlocked`] reads a store that cannot be repaired now (read-only, or locked by another
//!   process): what the anchor vouches for, plus complete batches after it, repairing nothing;
//! - [`reconcile_locked`] runs under the cross-process lock (at open and before every group
//!   commit): it adopts complete batches that no anchor vouches for, removes an append the
//!   anchor declares void, cuts a torn tail after saving its bytes under `recovered/`, refuses
//!   damage to durable events, and rewrites the anchor.
//!
//! # The rules
//! - A batch (one append) is committed once its last line is whole: terminated, parseable, and
//!   hash-valid after its predecessor.
//! - Whatever follows the last complete batch is either a **torn write** of appends that were
//!   never acknowledged, which is cut, or **damage** to events that were durable, which is
//!   refused with a typed error that changes nothing. It is damage when something durable says
//!   the first missing position was durable: a synced anchor at or past it, or a readable event
//!   line after the damage whose `synced_to` reaches it (a line of format 1, which records no
//!   `synced_to`, counts as such proof, as it did in format 1). The writer writes a group only
//!   after everything before it was synced, so the pages of a torn group — any subset of them,
//!   in any order, complete lines included — only ever claim positions before the group.
//! - An anchor's void names an append that failed and could not be undone: it is cut, never
//!   adopted.
//! - A synced anchor past the end of the log, or with another hash at its position, means
//!   committed history was removed or rewritten: refused.

use std::io;
use std::path::{Path, PathBuf};

use opossum_core::Position;

use crate::Error;
use crate::head::{Anchor, AnchorState, HeadFile, HeadRead};
use crate::index::Index;
use crate::layout::Layout;
use crate::record::{ChainHash, decode_header, split_hash};
use crate::segment::{self, Evidence, ScanStart, Segment, Tail, Trust};
use crate::vfs::{OpenMode, Vfs};

/// How many bytes of a later segment are read for evidence about damage before it.
const LATER_SEGMENT_PROBE: u64 = 64 << 10;

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
    /// An append failed after some of its bytes reached the log, and they could not be cut back
    /// then; `head.json` recorded it as void, and its bytes were now cut (and saved) instead of
    /// being adopted. Its caller was told that it failed.
    FailedAppendRemoved {
        /// The first position the failed append had taken.
        position: Position,
        /// The segment file that was cut.
        file: PathBuf,
        /// Where the cut was made.
        offset: u64,
        /// Where the cut bytes were saved.
        saved_to: PathBuf,
    },
    /// A segment file named after the end of the log held nothing (a new segment whose first
    /// append was torn away) and was removed.
    EmptySegmentRemoved {
        /// The removed file.
        file: PathBuf,
    },
    /// `head.json` was missing, unreadable, or of format 1 and not matching the log, and was
    /// re-derived from the log.
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
    /// `head.json` recorded commits, as durable, that the log does not hold: the folder is a
    /// copy taken while appends ran (`head.json` copied after the events), or events were
    /// removed. The store continues from the log. The old `head.json` was kept under
    /// `recovered/`, and [`verify`](crate::FileEventStore::verify) reports the missing events as
    /// [`Truncated`](crate::BreakKind::Truncated) from then on.
    AnchorAheadOfLog {
        /// The position the anchor recorded.
        anchored: u64,
        /// The last position in the log.
        found: u64,
        /// Where the old `head.json` was saved.
        saved_to: PathBuf,
    },
    /// A repair was needed but not made, because the store is read-only or another process held
    /// the lock; the incomplete data is simply not read.
    Deferred {
        /// Why the repair was not made.
        reason: String,
    },
}

/// Reads complete batches after the index's head into the index, in Committed or Verify trust,
/// stopping after position `stop_after` (if given); with `fresh`, through a newly opened handle
/// of the last segment. Returns what followed the last complete
/// batch of the last segment read.
pub(crate) fn extend(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    trust: Trust,
    stop_after: Option<u64>,
    fresh: bool,
) -> Result<Tail, Error> {
    let reached = |index: &Index| stop_after.is_some_and(|s| index.head() >= s);
    if fresh {
        // A handle opened long ago may be served from this client's cache (a network share or
        // FUSE mount keeps the last page it read): open the last segment again.
        if let Some(last) = index.segments.last_mut() {
            last.file = segment::open_read(vfs, &last.path)?;
        }
    }
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
            let scanned = segment::scan(&*file, &path, start, trust, stop_after, |entry| {
                index.push(entry);
            })?;
            if let Some(last) = index.segments.last_mut() {
                last.end = scanned.end;
            }
            index.tail_unchecked |= scanned.unterminated;
            if let Tail::Incomplete { .. } = scanned.tail {
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
        let path = layout.segment(head + 1);
        match vfs.open(&path, OpenMode::Read) {
            Ok(file) => index.segments.push(Segment {
                first: head + 1,
                end: 0,
                path,
                file,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tail::Clean),
            Err(e) => return Err(Error::io("open", path, e)),
        }
    }
}

/// Catches a reader's index up with what the anchor `anchor` vouches for. The writer wrote
/// those events before the anchor, so they are in the log; if they cannot be read, the log was
/// damaged.
///
/// With `revalidate` (a file system whose clients may cache), the log may look shorter than
/// the anchor for a moment, because this client still holds an older length: the reader then
/// reads what it sees and picks up the rest at a later read.
pub(crate) fn catch_up(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    anchor: Anchor,
    revalidate: bool,
) -> Result<(), Error> {
    if anchor.position <= index.head() {
        return Ok(());
    }
    let tail = extend(
        index,
        vfs,
        layout,
        Trust::Committed,
        Some(anchor.position),
        revalidate,
    )?;
    match tail {
        _ if revalidate => {
            if index.head() < anchor.position {
                tracing::debug!(
                    anchored = anchor.position,
                    visible = index.head(),
                    "the file system does not show the whole log yet"
                );
            }
            Ok(())
        }
        Tail::Clean => Ok(()),
        Tail::Incomplete { offset, reason, .. } => Err(damaged_commit(index, offset, &reason)),
    }
}

/// Reads what the anchor vouches for before the lock is taken, so that the lock is held only
/// for what is new. Judges nothing: whatever it cannot read, the locked reconcile reads again.
pub(crate) fn read_ahead(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    head: &HeadFile,
) -> Result<(), Error> {
    if let Some(anchor) = head.read()?.anchor() {
        extend(
            index,
            vfs,
            layout,
            Trust::Committed,
            Some(anchor.position),
            false,
        )?;
    }
    Ok(())
}

/// Reads a store that cannot be repaired now: what the anchor vouches for, then the complete
/// batches after it, repairing nothing. Returns true when data after the last complete batch was
/// left unread (a repair the next writer makes).
pub(crate) fn read_unlocked(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    head: &HeadFile,
) -> Result<bool, Error> {
    let read = head.read()?;
    if let Some(a) = read.anchor() {
        // Short of the anchor is judged below, like any other end of the log: a copy taken
        // while appends ran looks like that, and is read as far as it is whole.
        extend(
            index,
            vfs,
            layout,
            Trust::Committed,
            Some(a.position),
            false,
        )?;
    }
    let tail = extend(index, vfs, layout, Trust::Verify, None, false)?;
    let unread = match tail {
        Tail::Clean => false,
        Tail::Incomplete {
            offset,
            position,
            reason,
            evidence,
            ..
        } => {
            let evidence = with_later_segments(index, vfs, layout, evidence)?;
            if let Some(why) = judge(position, &evidence, None) {
                return Err(refused(index, offset, position, &reason, &why));
            }
            true
        }
    };
    let unread = unread || read.anchor().is_some_and(|a| a.position > index.head());
    check_stray_segments(index, vfs, layout)?;
    Ok(unread)
}

/// What reconciling found and did.
#[derive(Debug)]
pub(crate) struct Reconciled {
    pub(crate) repairs: Vec<Repair>,
    /// The anchor as it now stands, for the next anchor write.
    pub(crate) head: HeadRead,
}

/// Reconciles index, log and anchor while holding the cross-process lock. `sync` is the store's
/// `flush_events_immediately`. Afterwards the index ends where the log's committed part ends,
/// the anchor says so, and `index.durable` is the highest position known to be on stable
/// storage (the whole index, when `sync`).
pub(crate) fn reconcile_locked(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    head: &HeadFile,
    sync: bool,
    at_open: bool,
) -> Result<Reconciled, Error> {
    // Under the lock nothing read before is trusted where clients may cache: the anchor is
    // read through a new handle, and the last segment's length is asked of the file system.
    let revalidate = head.revalidates();
    let read = if revalidate {
        head.read_fresh()?
    } else {
        head.read()?
    };
    if revalidate {
        refresh_last_segment(index, vfs)?;
    }
    let anchor = read.anchor();

    // Fast path, taken by nearly every append: nothing happened since our last commit. Never
    // at open: the index was read up to the anchor without the lock, and what follows it (in
    // this segment or a next one) has not been looked at.
    if let Some(a) = anchor.filter(|_| !at_open) {
        if a.position == index.head()
            && a.hash == index.head_hash
            && a.void.is_none()
            && (a.synced || !sync)
            && !read.legacy
            && !index.tail_unchecked
            && nothing_after_end(index)?
            && next_segment_absent(index, vfs, layout)
        {
            if a.synced {
                index.durable = index.head();
            }
            return Ok(Reconciled {
                repairs: Vec::new(),
                head: read,
            });
        }
    }

    let span =
        tracing::info_span!("recovery", store = %layout.dir().display(), indexed = index.head());
    let _enter = span.enter();
    let mut repairs = Vec::new();
    // What the anchor vouches for is read on trust; anything beyond it is checked link by link.
    if let Some(a) = anchor {
        if let Tail::Incomplete { offset, reason, .. } = extend(
            index,
            vfs,
            layout,
            Trust::Committed,
            Some(a.position),
            false,
        )? {
            // At open, a log that ends before the anchor may be a copy taken while appends
            // ran: judged below like any other end of the log.
            if a.synced && !at_open {
                return Err(damaged_commit(index, offset, &reason));
            }
        }
    }
    let anchored_head = index.head();
    let mut void_removed = false;
    if let Some(void) = anchor.and_then(|a| a.void) {
        if let Some(repair) = remove_void(index, vfs, layout, void)? {
            repairs.push(repair);
            void_removed = true;
        }
    }
    // Past the anchored end, only what a crashed process may have left. It starts right at the
    // end (a process's write reaches the page cache in order), so when nothing but reserved
    // zeros is there, the rest need not be read. At open everything is read: a power cut may
    // have kept a later page of a write and lost an earlier one.
    let quiet = !at_open
        && nothing_after_end(index)?
        && !crate::vfs::exists(vfs, &layout.segment(index.head() + 1));
    let beyond = if quiet {
        Tail::Clean
    } else {
        extend(index, vfs, layout, Trust::Verify, None, false)?
    };
    match beyond {
        Tail::Clean => {}
        Tail::Incomplete {
            offset,
            len,
            position,
            reason,
            evidence,
        } => {
            let evidence = with_later_segments(index, vfs, layout, evidence)?;
            // At open the anchor alone proves nothing about the tail: a copy's head.json may
            // have been copied after its events (see `Repair::AnchorAheadOfLog`).
            let proof = if at_open { None } else { anchor };
            if let Some(why) = judge(position, &evidence, proof) {
                return Err(refused(index, offset, position, &reason, &why));
            }
            repairs.push(cut_torn_tail(index, vfs, layout, offset, len, reason)?);
        }
    }
    if index.tail_unchecked {
        if !ends_with_newline(index)? {
            repairs.push(restore_newline(index, vfs)?);
        }
        index.tail_unchecked = false;
    }
    if at_open {
        give_back_reserved(index, vfs);
    }
    if index.head() > anchored_head {
        if let (Some(from), Some(to)) = (
            Position::new(anchored_head + 1).ok(),
            Position::new(index.head()).ok(),
        ) {
            tracing::warn!(from = %from, to = %to, "adopting complete commits found after the anchor");
            repairs.push(Repair::CommitsAdopted { from, to });
        }
    }
    let hash_ok = match anchor {
        Some(a) if a.position <= index.head() => anchor_hash_matches(index, a)?,
        _ => true,
    };
    match (read.state, anchor) {
        (_, Some(a)) if a.position > index.head() && a.synced && at_open => {
            let saved_to = save_anchor(vfs, layout, head.path(), index.head())?;
            tracing::warn!(
                anchored = a.position,
                found = index.head(),
                saved_to = %saved_to.display(),
                "head.json records commits the log does not hold (a copy taken while appends ran, or removed events); continuing from the log"
            );
            repairs.push(Repair::AnchorAheadOfLog {
                anchored: a.position,
                found: index.head(),
                saved_to,
            });
        }
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
        // A format-1 anchor has no checksum, so a torn write of it can splice a new position
        // with an old hash: a mismatch is no proof of rewritten history.
        (_, Some(_)) if read.legacy && !hash_ok => {
            tracing::warn!(path = %head.path().display(), "the format-1 head.json does not match the log; restoring it from the log");
            repairs.push(Repair::AnchorRestored {
                reason: "the format-1 head.json did not match the log (a torn write of that format has no checksum)".to_owned(),
            });
        }
        (_, Some(a)) if !hash_ok => {
            return Err(Error::AnchorMismatch {
                path: head.path().to_path_buf(),
                anchored: a.position,
                detail: format!(
                    "the event at position {} in the log has a different hash: history was rewritten",
                    a.position
                ),
            });
        }
        (_, Some(_)) => {}
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
    repairs.extend(remove_empty_segment_past_end(index, vfs, layout)?);
    check_stray_segments(index, vfs, layout)?;

    let fresh = current_anchor(index, sync);
    let mut now = read;
    if anchor != Some(fresh) || read.legacy {
        if sync {
            // Adopted commits may never have been synced by the writer that stopped, and an
            // unsynced anchor vouches for nothing durable: make the log durable before the
            // anchor says it is.
            sync_last_segment(index)?;
        }
        // After removing a void, sync the clean anchor: otherwise a power cut could bring the
        // void back over an append that reused its position.
        now = head.write(fresh, &read, void_removed)?;
    }
    if sync {
        index.durable = index.head();
    } else if let Some(a) = anchor.filter(|a| a.synced) {
        index.durable = index.durable.max(a.position.min(index.head()));
    }
    Ok(Reconciled { repairs, head: now })
}

/// Whether damage at `position` (the first position not in a complete batch), with `evidence`
/// from the lines after it, is damage to durable events: `Some(why)` to refuse, `None` when it
/// is a torn, never-acknowledged write that may be cut.
pub(crate) fn judge(position: u64, evidence: &Evidence, anchor: Option<Anchor>) -> Option<String> {
    if let Some(a) = anchor.filter(|a| a.synced && a.position >= position) {
        return Some(format!(
            "head.json records position {} as durable",
            a.position
        ));
    }
    if evidence.legacy_line {
        return Some("intact events of format 1 follow it".to_owned());
    }
    if evidence.proves_durable(position) {
        return Some(format!(
            "a later event records that position {} was already durable when it was written",
            evidence.synced_to
        ));
    }
    None
}

/// Adds what the first non-empty segment file after the index's last segment says.
fn with_later_segments(
    index: &Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    mut evidence: Evidence,
) -> Result<Evidence, Error> {
    let after = index.segments.last().map_or(0, |s| s.first);
    for (first, path) in segment::list(vfs, &layout.events_dir())? {
        if first <= after {
            continue;
        }
        let file = segment::open_read(vfs, &path)?;
        let len = segment::data_len(&*file, &path)?;
        if len == 0 {
            continue;
        }
        let mut bytes = vec![0u8; usize::try_from(len.min(LATER_SEGMENT_PROBE)).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        for line in bytes.split(|b| *b == b'\n') {
            evidence.observe(line);
        }
        break;
    }
    Ok(evidence)
}

/// The anchor describing the index's head.
pub(crate) fn current_anchor(index: &Index, synced: bool) -> Anchor {
    Anchor {
        position: index.head(),
        hash: index.head_hash,
        synced,
        void: None,
    }
}

/// Opens the last segment again, read-write, and has the file system report its attributes
/// afresh (see [`crate::vfs::VfsFile::refresh`]), so its length is the server's, not a cached
/// one.
fn refresh_last_segment(index: &mut Index, vfs: &dyn Vfs) -> Result<(), Error> {
    let Some(last) = index.segments.last_mut() else {
        return Ok(());
    };
    let file = vfs
        .open(&last.path, OpenMode::ReadWriteExisting)
        .map_err(|e| Error::io("open", &last.path, e))?;
    file.refresh()
        .map_err(|e| Error::io("inspect", &last.path, e))?;
    last.file = file;
    Ok(())
}

/// An anchor that recovery set aside because the log did not reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedAnchor {
    /// The file under `recovered/`.
    pub(crate) file: PathBuf,
    pub(crate) anchor: Anchor,
    /// Where the log ended when it was set aside.
    pub(crate) found: u64,
}

const SAVED_ANCHOR_PREFIX: &str = "head-at-";
const SAVED_ANCHOR_SUFFIX: &str = ".json";

/// Copies `head.json` into `recovered/head-at-<found>-<stamp>.json`.
fn save_anchor(vfs: &dyn Vfs, layout: &Layout, path: &Path, found: u64) -> Result<PathBuf, Error> {
    let bytes = crate::vfs::read_all(vfs, path).map_err(|e| Error::io("read", path, e))?;
    save_recovered(
        vfs,
        layout,
        &format!(
            "{SAVED_ANCHOR_PREFIX}{found}-{}{SAVED_ANCHOR_SUFFIX}",
            stamp()
        ),
        &bytes,
    )
}

/// The anchors set aside under `recovered/`, oldest name first.
pub(crate) fn saved_anchors(vfs: &dyn Vfs, layout: &Layout) -> Result<Vec<SavedAnchor>, Error> {
    let dir = layout.recovered_dir();
    let entries = match vfs.list(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut names: Vec<String> = entries
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| e.name.into_string().ok())
        .filter(|n| n.starts_with(SAVED_ANCHOR_PREFIX) && n.ends_with(SAVED_ANCHOR_SUFFIX))
        .collect();
    names.sort();
    let mut saved = Vec::new();
    for name in names {
        let file = dir.join(&name);
        let bytes = crate::vfs::read_all(vfs, &file).map_err(|e| Error::io("read", &file, e))?;
        let Some(anchor) = crate::head::decode(&bytes).anchor() else {
            continue;
        };
        let found = name[SAVED_ANCHOR_PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        saved.push(SavedAnchor {
            file,
            anchor,
            found,
        });
    }
    Ok(saved)
}

/// At open: cuts the zeros that a writer (of any process, perhaps one that crashed) reserved
/// after the end of the log, so that the files hold event lines only until the next append
/// reserves space again. Not a repair (the zeros are free space, not damage); best effort.
fn give_back_reserved(index: &Index, vfs: &dyn Vfs) {
    let Some(last) = index.segments.last() else {
        return;
    };
    let cut = vfs
        .open(&last.path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", &last.path, e))
        .and_then(|file| segment::give_back(&*file, &last.path, last.end));
    if let Err(e) = cut {
        tracing::debug!(file = %last.path.display(), error = %e, "the space reserved after the log stays");
    }
}

/// True when the last segment holds nothing after the indexed end: it ends there, or only the
/// zeros a writer reserved follow (see [`segment::zeros_after`]).
fn nothing_after_end(index: &Index) -> Result<bool, Error> {
    match index.segments.last() {
        None => Ok(true),
        Some(s) => segment::zeros_after(&*s.file, &s.path, s.end),
    }
}

fn sync_last_segment(index: &Index) -> Result<(), Error> {
    match index.segments.last() {
        None => Ok(()),
        Some(s) => s
            .file
            .sync_data()
            .map_err(|e| Error::io("sync", &s.path, e)),
    }
}

fn next_segment_absent(index: &Index, vfs: &dyn Vfs, layout: &Layout) -> bool {
    // Another process starts a new segment only after the current one reached its target size
    // (any other process's commit also changes the anchor, which sends reconcile off the fast
    // path anyway).
    let needs_next = index
        .segments
        .last()
        .is_none_or(|s| s.first <= index.head() && s.end >= crate::options::SEGMENT_TARGET_BYTES);
    !needs_next || !crate::vfs::exists(vfs, &layout.segment(index.head() + 1))
}

/// The last segment's path, where damage found by a scan lies.
fn last_segment_path(index: &Index) -> PathBuf {
    index
        .segments
        .last()
        .map(|s| s.path.clone())
        .unwrap_or_default()
}

fn damaged_commit(index: &Index, offset: u64, reason: &str) -> Error {
    Error::corrupt(
        last_segment_path(index),
        offset,
        format!(
            "committed event {} is damaged or incomplete ({reason})",
            index.head() + 1
        ),
    )
}

fn refused(index: &Index, offset: u64, position: u64, reason: &str, why: &str) -> Error {
    Error::corrupt(
        last_segment_path(index),
        offset,
        format!("event {position} is damaged ({reason}), and it was durable: {why}"),
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

/// True when the event at the anchor's position has the anchor's hash.
fn anchor_hash_matches(index: &Index, anchor: Anchor) -> Result<bool, Error> {
    if anchor.position == 0 {
        return Ok(true);
    }
    let hash = if anchor.position == index.head() {
        index.head_hash
    } else {
        stored_hash(index, anchor.position)?
    };
    Ok(hash == anchor.hash)
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
    segment
        .file
        .read_exact_at(&mut line, start)
        .map_err(|e| Error::io("read", &segment.path, e))?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    split_hash(line)
        .map(|(_, h)| h)
        .map_err(|reason| Error::corrupt(&segment.path, start, reason))
}

/// A segment file that does not continue the indexed log means files were added, renamed or
/// removed by hand: refuse rather than silently ignore part of the history.
pub(crate) fn check_stray_segments(
    index: &Index,
    vfs: &dyn Vfs,
    layout: &Layout,
) -> Result<(), Error> {
    for (first, path) in segment::list(vfs, &layout.events_dir())? {
        let known = index.segments.iter().any(|s| s.first == first);
        let empty_next = first == index.head() + 1 && vfs.metadata(&path).is_ok_and(|m| m.len == 0);
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

/// After a cut, a new segment whose whole first append was torn away may remain, empty, named
/// after a position the log no longer reaches; it holds nothing and is removed.
fn remove_empty_segment_past_end(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
) -> Result<Vec<Repair>, Error> {
    let mut repairs = Vec::new();
    let head = index.head();
    for (first, path) in segment::list(vfs, &layout.events_dir())? {
        if first <= head + 1 || !vfs.metadata(&path).is_ok_and(|m| m.len == 0) {
            continue;
        }
        vfs.remove_file(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        vfs.sync_dir(&layout.events_dir())
            .map_err(|e| Error::io("sync", layout.events_dir(), e))?;
        index.segments.retain(|s| s.first != first);
        tracing::warn!(file = %path.display(), "removed an empty segment past the end of the log");
        repairs.push(Repair::EmptySegmentRemoved { file: path });
    }
    Ok(repairs)
}

/// True when the log's committed bytes end with a newline (or there are none).
fn ends_with_newline(index: &Index) -> Result<bool, Error> {
    let Some(segment) = index.segments.last().filter(|s| s.end > 0) else {
        return Ok(true);
    };
    let mut last = [0u8; 1];
    segment
        .file
        .read_exact_at(&mut last, segment.end - 1)
        .map_err(|e| Error::io("read", &segment.path, e))?;
    Ok(last[0] == b'\n')
}

/// Writes the newline that the last line of the log lost (its bytes and hash are intact), so
/// the next append starts a new line.
fn restore_newline(index: &mut Index, vfs: &dyn Vfs) -> Result<Repair, Error> {
    let Some(segment) = index.segments.last_mut() else {
        return Err(Error::corrupt(PathBuf::new(), 0, "no segment to repair"));
    };
    let offset = segment.end;
    let writer = vfs
        .open(&segment.path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", &segment.path, e))?;
    writer
        .write_all_at(b"\n", offset)
        .and_then(|()| writer.sync_data())
        .map_err(|e| Error::io("repair", &segment.path, e))?;
    segment.end = offset + 1;
    tracing::warn!(file = %segment.path.display(), offset, "restored the missing newline after the last event");
    Ok(Repair::NewlineRestored {
        file: segment.path.clone(),
        offset,
    })
}

/// Cuts the append the anchor declares void, if the line right after the index's head is that
/// append's first line (same position, same hash).
fn remove_void(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
    void: crate::head::Void,
) -> Result<Option<Repair>, Error> {
    if void.position != index.head() + 1 {
        return Ok(None);
    }
    // The failed append is the first line after the committed end: in the last segment, or
    // (when it started a new one, or the store was empty) in the segment named after it.
    let mut in_last = None;
    if let Some(segment) = index.segments.last() {
        let len = segment::data_len(&*segment.file, &segment.path)?;
        if segment.end < len {
            in_last = Some((
                segment.path.clone(),
                std::sync::Arc::clone(&segment.file),
                segment.end,
            ));
        }
    }
    let (path, file, offset) = match in_last {
        Some(found) => found,
        None => {
            let path = layout.segment(void.position);
            match vfs.open(&path, OpenMode::Read) {
                Ok(file) => (path, file, 0),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("open", path, e)),
            }
        }
    };
    let file_len = segment::data_len(&*file, &path)?;
    let probe = (file_len - offset.min(file_len)).min(1 << 20);
    let mut bytes = vec![0u8; usize::try_from(probe).unwrap_or(0)];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| Error::io("read", &path, e))?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let matches = split_hash(line).is_ok_and(|(_, h)| h == void.hash)
        && decode_header(line).is_ok_and(|h| h.position == void.position);
    if !matches {
        return Ok(None);
    }
    let saved_to = save_and_cut(vfs, layout, &path, &*file, offset, file_len - offset)?;
    tracing::warn!(position = void.position, file = %path.display(), offset, "removed an append that failed and was recorded as void");
    Ok(Some(Repair::FailedAppendRemoved {
        position: Position::new(void.position)
            .map_err(|_| Error::corrupt(&path, offset, "void at position 0"))?,
        file: path,
        offset,
        saved_to,
    }))
}

/// Saves the bytes from `offset` to the end of the last segment under `recovered/`, then cuts
/// them off the segment.
fn cut_torn_tail(
    index: &mut Index,
    vfs: &dyn Vfs,
    layout: &Layout,
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
    let saved_to = save_and_cut(vfs, layout, &segment.path, &*segment.file, offset, len)?;
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

/// Copies `len` bytes of `path` from `offset` into a new file under `recovered/` (synced, its
/// entry synced), then truncates `path` to `offset` (synced). Returns the copy's path.
fn save_and_cut(
    vfs: &dyn Vfs,
    layout: &Layout,
    path: &Path,
    file: &dyn crate::vfs::VfsFile,
    offset: u64,
    len: u64,
) -> Result<PathBuf, Error> {
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|e| Error::io("read", path, e))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("segment");
    let saved_to = save_recovered(
        vfs,
        layout,
        &format!("{stem}-at-{offset}-{}.torn", stamp()),
        &bytes,
    )?;
    let writer = vfs
        .open(path, OpenMode::ReadWrite)
        .map_err(|e| Error::io("open", path, e))?;
    writer
        .set_len(offset)
        .and_then(|()| writer.sync_all())
        .map_err(|e| Error::io("truncate", path, e))?;
    Ok(saved_to)
}

/// A time stamp that keeps names under `recovered/` unique and in order.
fn stamp() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Writes `bytes` into the new file `recovered/<name>` (synced, its entry synced, the folder
/// created and its own entry synced when missing). Returns its path.
fn save_recovered(
    vfs: &dyn Vfs,
    layout: &Layout,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, Error> {
    let folder = layout.recovered_dir();
    let created = !crate::vfs::exists(vfs, &folder);
    vfs.create_dir_all(&folder)
        .map_err(|e| Error::io("create", &folder, e))?;
    if created {
        vfs.sync_dir(layout.dir())
            .map_err(|e| Error::io("sync", layout.dir(), e))?;
    }
    let saved_to = folder.join(name);
    let copy = vfs
        .open(&saved_to, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &saved_to, e))?;
    copy.write_all_at(bytes, 0)
        .and_then(|()| copy.sync_all())
        .map_err(|e| Error::io("write", &saved_to, e))?;
    vfs.sync_dir(&folder)
        .map_err(|e| Error::io("sync", &folder, e))?;
    Ok(saved_to)
}
