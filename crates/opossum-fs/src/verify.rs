//! `verify`: walks the log and checks every hash link, every position and the anchor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opossum_core::Position;

use crate::Error;
use crate::head::{Anchor, HeadFile};
use crate::layout::Layout;
use crate::record::{ChainHash, Header, decode_header, split_hash};
use crate::recovery::{self, SavedAnchor};
use crate::segment::{self, Evidence};
use crate::vfs::{OsFs, Vfs};

/// How far ahead `verify` looks for a missing position before calling it deleted rather than
/// moved.
const REORDER_LOOKAHEAD: usize = 64;

/// What [`verify_folder`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many events were checked and found intact (up to the first problem).
    pub events_checked: u64,
    /// The last intact position.
    pub head: Option<Position>,
    /// The chain hash of that event, in hex: record it somewhere else (a printed report, an
    /// e-mail) and a later rewrite of the whole history can be detected too.
    pub head_hash: Option<String>,
    /// Bytes at the end of the log that belong to no committed event (an append in progress, or
    /// one interrupted by a crash that the next open will cut).
    pub uncommitted_bytes: u64,
    /// The first problem found, or `None` when the log is intact.
    pub problem: Option<ChainBreak>,
}

impl VerifyReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first place where the log stops being the history the store wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first position that is not intact.
    pub position: u64,
    /// The file where the break was found.
    pub file: PathBuf,
    /// The byte offset in that file.
    pub offset: u64,
    /// What kind of break it is.
    pub kind: BreakKind,
    /// A sentence describing it.
    pub detail: String,
}

/// The kinds of damage [`verify_folder`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakKind {
    /// The event is in place but its content (or a predecessor's) changed: its hash does not
    /// follow from its bytes and the previous hash.
    Edited,
    /// The event is gone: the log jumps over its position.
    Missing,
    /// Events appear out of position order.
    Reordered,
    /// The log ends before the last commit recorded in `head.json`.
    Truncated,
    /// The bytes at this place are not an event line at all.
    Unreadable,
}

struct Walk {
    expected: u64,
    prev: ChainHash,
    anchor_hash_seen: Option<ChainHash>,
    anchor_position: u64,
    anchor: Option<Anchor>,
    /// Anchors that recovery set aside because the log no longer reached them, and the hash
    /// the walk found at each one's position.
    saved: Vec<(SavedAnchor, Option<ChainHash>)>,
}

/// Verifies the store folder `dir` without opening it: works on read-only copies and while other
/// processes append (events committed after the walk starts may or may not be included).
///
/// # Errors
/// [`Error::Io`] when a file cannot be read. Damage is reported in [`VerifyReport::problem`].
pub fn verify_folder(dir: &Path) -> Result<VerifyReport, Error> {
    verify_with(&OsFs::shared(), dir)
}

/// [`verify_folder`] on the file system `vfs`.
pub(crate) fn verify_with(vfs: &Arc<dyn Vfs>, dir: &Path) -> Result<VerifyReport, Error> {
    let span = tracing::info_span!("verify", store = %dir.display());
    let _enter = span.enter();
    let layout = Layout::new(dir.to_path_buf());
    let read = HeadFile::open(vfs, layout.head(), false, true)?.read()?;
    // A format-1 anchor's hash is not checksummed; only its position is evidence.
    let anchor = read.anchor();
    let mut walk = Walk {
        expected: 1,
        prev: ChainHash::GENESIS,
        anchor_hash_seen: None,
        anchor_position: anchor.map_or(0, |a| a.position),
        anchor,
        saved: recovery::saved_anchors(&**vfs, &layout)?
            .into_iter()
            .map(|s| (s, None))
            .collect(),
    };
    let mut report = VerifyReport {
        events_checked: 0,
        head: None,
        head_hash: None,
        uncommitted_bytes: 0,
        problem: None,
    };
    let events_dir = layout.events_dir();
    let segments = segment::list(&**vfs, &events_dir)?;
    let mut last_file = events_dir.clone();
    let mut last_len = 0;
    for (i, (first, path)) in segments.iter().enumerate() {
        let all = crate::vfs::read_all(&**vfs, path).map_err(|e| Error::io("read", path, e))?;
        // Zeros at the end are space a writer reserved, not data.
        let bytes = segment::without_zero_tail(&all);
        last_file.clone_from(path);
        last_len = bytes.len() as u64;
        if bytes.is_empty() && *first == walk.expected && i + 1 == segments.len() {
            continue;
        }
        if *first != walk.expected {
            let kind = if *first > walk.expected {
                BreakKind::Missing
            } else {
                BreakKind::Reordered
            };
            report.problem = Some(ChainBreak {
                position: walk.expected,
                file: path.clone(),
                offset: 0,
                kind,
                detail: format!(
                    "segment file starts at position {first}, but position {} comes next",
                    walk.expected
                ),
            });
            break;
        }
        let last_segment = i + 1 == segments.len();
        // Read only when damage is found: the next segment's claims judge it. A failure to
        // read it fails the whole verify (below), never a judgement on less evidence.
        let failed = std::cell::RefCell::new(None);
        let later = || {
            later_evidence(&**vfs, &segments[i + 1..]).unwrap_or_else(|e| {
                *failed.borrow_mut() = Some(e);
                Evidence::default()
            })
        };
        let found = walk_segment(&mut walk, &mut report, path, bytes, last_segment, &later);
        if let Some(e) = failed.take() {
            return Err(e);
        }
        if let Some(problem) = found {
            report.problem = Some(problem);
            break;
        }
    }
    if report.problem.is_none() && !read.legacy {
        report.problem = check_anchor(
            &walk,
            &report,
            anchor.map(|a| a.hash),
            last_file.clone(),
            last_len,
        );
    }
    if report.problem.is_none() {
        report.problem = check_saved_anchors(&walk, &report, &last_file, last_len);
    }
    match &report.problem {
        None => tracing::info!(events = report.events_checked, "log verified intact"),
        Some(p) => {
            tracing::warn!(position = p.position, kind = ?p.kind, detail = %p.detail, "log is damaged")
        }
    }
    Ok(report)
}

fn check_anchor(
    walk: &Walk,
    report: &VerifyReport,
    anchor_hash: Option<ChainHash>,
    file: PathBuf,
    offset: u64,
) -> Option<ChainBreak> {
    let anchor_hash = anchor_hash?;
    let head = report.events_checked;
    if walk.anchor_position > head {
        return Some(ChainBreak {
            position: head + 1,
            file,
            offset,
            kind: BreakKind::Truncated,
            detail: format!(
                "head.json records position {} as committed, but the log ends at {head}",
                walk.anchor_position
            ),
        });
    }
    match walk.anchor_hash_seen {
        Some(h) if h != anchor_hash => Some(ChainBreak {
            position: walk.anchor_position,
            file,
            offset,
            kind: BreakKind::Edited,
            detail: format!(
                "head.json records another hash for position {}: history up to it was rewritten",
                walk.anchor_position
            ),
        }),
        _ => None,
    }
}

/// A break for the first anchor set aside by recovery (a copy of the folder taken while appends
/// ran, or history removed) that the log does not bear out: its position is past the log's end,
/// or the event there has another hash.
fn check_saved_anchors(
    walk: &Walk,
    report: &VerifyReport,
    file: &Path,
    offset: u64,
) -> Option<ChainBreak> {
    let head = report.events_checked;
    for (saved, seen) in &walk.saved {
        let name = saved.file.display();
        let p = saved.anchor.position;
        if p > head {
            return Some(ChainBreak {
                position: head + 1,
                file: file.to_path_buf(),
                offset,
                kind: BreakKind::Truncated,
                detail: format!(
                    "{name} records position {p} as committed, but the log ends at {head}: \
                     the folder was copied while appends ran, or events were removed"
                ),
            });
        }
        if seen.is_some_and(|h| h != saved.anchor.hash) {
            return Some(ChainBreak {
                position: p,
                file: file.to_path_buf(),
                offset,
                kind: BreakKind::Truncated,
                detail: format!(
                    "{name} records another hash for position {p}: events after position {} \
                     were cut (a copy taken while appends ran, or events removed) and other \
                     events appended since",
                    saved.found
                ),
            });
        }
    }
    None
}

/// What the first non-empty segment of `later` claims, for judging damage before it.
fn later_evidence(vfs: &dyn Vfs, later: &[(u64, PathBuf)]) -> Result<Evidence, Error> {
    let mut evidence = Evidence::default();
    for (_, path) in later {
        let all = crate::vfs::read_all(vfs, path).map_err(|e| Error::io("read", path, e))?;
        let bytes = segment::without_zero_tail(&all);
        if bytes.is_empty() {
            continue;
        }
        for line in bytes.split(|b| *b == b'\n') {
            evidence.observe(line);
        }
        break;
    }
    Ok(evidence)
}

/// Checks one segment's lines; returns the first problem. Bytes after the last complete batch
/// are uncommitted (the next writer cuts them) exactly when recovery would judge them a torn
/// write; otherwise they are a break.
fn walk_segment(
    walk: &mut Walk,
    report: &mut VerifyReport,
    path: &Path,
    bytes: &[u8],
    last_segment: bool,
    later: &dyn Fn() -> Evidence,
) -> Option<ChainBreak> {
    let lines = split_lines(bytes);
    let checked = check_lines(&lines);
    let mut batch_last = 0u64;
    let mut batch_start_offset = 0u64;
    let mut batch_start_checked = report.events_checked;
    // Offset just past the last complete batch.
    let mut committed_end = 0u64;
    for (n, (offset, line)) in lines.iter().enumerate() {
        let offset = *offset;
        let break_at = |kind, detail: String| ChainBreak {
            position: walk.expected,
            file: path.to_path_buf(),
            offset,
            kind,
            detail,
        };
        let (hash, header, links) = match &checked[n] {
            Ok(v) => (v.hash, &v.header, v.links),
            Err(reason) => {
                let mut evidence = later();
                for (_, l) in &lines[n + 1..] {
                    evidence.observe(l);
                }
                let first_uncommitted = if batch_last == 0 {
                    walk.expected
                } else {
                    batch_start_checked + 1
                };
                if recovery::judge(first_uncommitted, &evidence, walk.anchor).is_none() {
                    // Uncommitted bytes at the very end: an append in progress, or one
                    // interrupted by a crash, which the next writer cuts.
                    break;
                }
                let cut_short = n + 1 == lines.len() && !bytes.ends_with(b"\n");
                if last_segment && cut_short {
                    return Some(break_at(
                        BreakKind::Truncated,
                        format!(
                            "the log ends in the middle of committed event {}",
                            walk.expected
                        ),
                    ));
                }
                return Some(break_at(
                    BreakKind::Unreadable,
                    format!("not an event line: {reason}"),
                ));
            }
        };
        if header.position != walk.expected {
            let found = header.position;
            let moved = lines[n + 1..]
                .iter()
                .take(REORDER_LOOKAHEAD)
                .filter_map(|(_, l)| decode_header(l).ok())
                .any(|h| h.position == walk.expected);
            let kind = if found < walk.expected || moved {
                BreakKind::Reordered
            } else {
                BreakKind::Missing
            };
            return Some(break_at(
                kind,
                format!("found position {found} where {} belongs", walk.expected),
            ));
        }
        // Past the first line, `walk.prev` is the previous line's stored hash (the walk got
        // here only by accepting it), which is what `links` was computed from.
        let linked = match (n, links) {
            (0, _) | (_, None) => split_hash(line)
                .is_ok_and(|(hashed, _)| ChainHash::chain(walk.prev, hashed) == hash),
            (_, Some(links)) => links,
        };
        if !linked {
            return Some(break_at(
                BreakKind::Edited,
                format!(
                    "the hash of position {} does not match its content and its predecessor's hash",
                    walk.expected
                ),
            ));
        }
        if batch_last == 0 {
            batch_last = header.batch_last;
            batch_start_offset = offset;
            batch_start_checked = report.events_checked;
        } else if header.batch_last != batch_last {
            return Some(break_at(
                BreakKind::Edited,
                format!(
                    "position {} breaks its batch, which ends at {batch_last}",
                    walk.expected
                ),
            ));
        }
        for (saved, seen) in &mut walk.saved {
            if saved.anchor.position == walk.expected {
                *seen = Some(hash);
            }
        }
        if walk.expected == walk.anchor_position {
            walk.anchor_hash_seen = Some(hash);
        }
        walk.prev = hash;
        walk.expected += 1;
        report.events_checked += 1;
        if header.position == batch_last {
            batch_last = 0;
            committed_end = (offset + line.len() as u64 + 1).min(bytes.len() as u64);
            report.head = Position::new(header.position).ok();
            report.head_hash = Some(hash.to_hex());
        }
    }
    if batch_last != 0 {
        // A batch without its last event: not committed, unless the anchor says otherwise.
        report.events_checked = batch_start_checked;
        walk.expected = batch_start_checked + 1;
        if walk.anchor_position >= walk.expected {
            return Some(ChainBreak {
                position: walk.expected,
                file: path.to_path_buf(),
                offset: batch_start_offset,
                kind: BreakKind::Truncated,
                detail: "a committed batch is missing its last events".to_owned(),
            });
        }
    }
    if last_segment {
        report.uncommitted_bytes = bytes.len() as u64 - committed_end;
    }
    None
}

/// What [`check_lines`] found in one line.
struct CheckedLine<'a> {
    /// The hash the line records.
    hash: ChainHash,
    header: Header<'a>,
    /// Whether the hash follows from the line and the *previous line's* recorded hash (`None`
    /// for the first line, or after a line that could not be parsed).
    links: Option<bool>,
}

/// Lines below which checking them on one thread is faster than starting others.
const PARALLEL_LINES: usize = 4096;

/// Parses every line and checks its hash against the one the line before it records, on every
/// core: each check needs only the two lines, so the chain is checked link by link in
/// parallel, and the walk then reads the results in order.
fn check_lines<'a>(lines: &[(u64, &'a [u8])]) -> Vec<Result<CheckedLine<'a>, String>> {
    let check = |i: usize| -> Result<CheckedLine<'a>, String> {
        let line = lines[i].1;
        let (hashed, hash) = split_hash(line).map_err(str::to_owned)?;
        let header = decode_header(line)?;
        let links = i
            .checked_sub(1)
            .and_then(|p| split_hash(lines[p].1).ok())
            .map(|(_, prev)| ChainHash::chain(prev, hashed) == hash);
        Ok(CheckedLine {
            hash,
            header,
            links,
        })
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads < 2 || lines.len() < PARALLEL_LINES {
        return (0..lines.len()).map(check).collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..lines.len())
            .step_by(chunk)
            .map(|start| {
                let end = (start + chunk).min(lines.len());
                scope.spawn(move || (start..end).map(check).collect::<Vec<_>>())
            })
            .collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, worker) in workers.into_iter().enumerate() {
            match worker.join() {
                Ok(part) => out.extend(part),
                // A panic in a check (a bug, not a property of the file): do that part here.
                Err(_) => out.extend((i * chunk..((i + 1) * chunk).min(lines.len())).map(check)),
            }
        }
        out
    })
}

/// Splits into `(offset, line)` pairs; the last line may lack its newline.
fn split_lines(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < bytes.len() {
        let len = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len() - start);
        out.push((start as u64, &bytes[start..start + len]));
        start += len + 1;
    }
    out
}
