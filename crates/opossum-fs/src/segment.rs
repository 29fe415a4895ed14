//! Segment files: listing them, and scanning their lines into index entries.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::index::{IndexEntry, tag_key};
use crate::layout::parse_segment_file_name;
use crate::record::{ChainHash, decode_header, split_hash};
use crate::vfs::{Vfs, VfsFile};

/// One segment file: events `first..` stored as lines.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Position of the first event in the file (also its name).
    pub(crate) first: u64,
    /// End of the committed bytes; anything after is not (yet) part of the log.
    pub(crate) end: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn VfsFile>,
}

/// The segment files in `events_dir`, ordered by first position.
pub(crate) fn list(vfs: &dyn Vfs, events_dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let entries = match vfs.list(events_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", events_dir, e)),
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| {
            let first = e.name.to_str().and_then(parse_segment_file_name)?;
            Some((first, events_dir.join(&e.name)))
        })
        .collect();
    found.sort_unstable_by_key(|(first, _)| *first);
    Ok(found)
}

/// Opens a segment for reading.
pub(crate) fn open_read(vfs: &dyn Vfs, path: &Path) -> Result<Arc<dyn VfsFile>, Error> {
    vfs.open(path, crate::vfs::OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))
}

/// How much a scan may trust what it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Committed data (below the head anchor): parse, but do not re-hash.
    Committed,
    /// Data nobody has vouched for (beyond the anchor): check every hash link.
    Verify,
}

/// What follows a place in the log where an event should be but is not: what readable event
/// lines after it claim. Recovery weighs it (see `recovery::judge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evidence {
    /// The highest `synced_to` of a readable line after the damage (0 when none).
    pub(crate) synced_to: u64,
    /// A readable line of format 1 (which records no `synced_to`) follows the damage.
    pub(crate) legacy_line: bool,
    /// How many readable event lines follow the damage.
    pub(crate) lines: u64,
}

impl Evidence {
    /// Adds what one line after the damage says, if it is a readable event line.
    pub(crate) fn observe(&mut self, line: &[u8]) {
        if split_hash(line).is_err() {
            return;
        }
        let Ok(header) = decode_header(line) else {
            return;
        };
        self.lines += 1;
        match header.synced_to {
            Some(s) => self.synced_to = self.synced_to.max(s),
            None => self.legacy_line = true,
        }
    }

    /// Whether these lines prove that `position` was durable before they were written.
    pub(crate) fn proves_durable(&self, position: u64) -> bool {
        self.synced_to >= position || self.legacy_line
    }
}

/// What a scan found after the last complete batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The scan consumed everything it was asked to.
    Clean,
    /// Bytes from `offset` to the end of the file do not form complete batches: an incomplete
    /// batch, a line that is not an event, or stray bytes. Whether they are a torn write to cut
    /// or damage to refuse is recovery's decision, from `evidence`.
    Incomplete {
        /// Just past the last complete batch: where a cut would be made.
        offset: u64,
        /// Bytes from `offset` to the end of the file.
        len: u64,
        /// The first position that is not part of a complete batch.
        position: u64,
        /// What is wrong there.
        reason: String,
        /// What the lines after the first unreadable one claim.
        evidence: Evidence,
    },
}

/// The result of scanning one segment.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// Offset just past the last complete batch applied.
    pub(crate) end: u64,
    /// Position of the last event applied (the `from_position - 1` when none was).
    pub(crate) last_position: u64,
    pub(crate) last_hash: ChainHash,
    pub(crate) tail: Tail,
    /// The last line applied had no newline (only possible at the very end of the file).
    pub(crate) unterminated: bool,
}

/// Where a scan starts and what it expects there.
pub(crate) struct ScanStart {
    pub(crate) offset: u64,
    /// The position the first line must have.
    pub(crate) next_position: u64,
    pub(crate) prev_hash: ChainHash,
}

struct Pending {
    position: u64,
    offset: u64,
    event_type: String,
    tag_keys: Vec<u64>,
    hash: ChainHash,
}

/// A scan reads at most this much at once …
const CHUNK: usize = 1 << 20;
/// … starting with this much, so that catching up with a few new lines reads little.
const FIRST_CHUNK: usize = 64 << 10;
/// [`data_len`] reads a file's end backwards in steps of this much.
const ZERO_TAIL_STEP: u64 = 64 << 10;
/// [`zeros_after`] looks at most this far past the end of the log.
const ZERO_PROBE: u64 = 512;

/// True when every byte is zero.
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// `bytes` without its trailing zero bytes: what was written of a segment whose end is
/// reserved space (see [`data_len`]).
pub(crate) fn without_zero_tail(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// The length of `file` without the zero bytes at its end: the space a writer reserved past the
/// end of the log, which holds no data. No line contains a zero byte (JSON escapes control
/// characters), so the data of a segment always ends with a non-zero byte.
pub(crate) fn data_len(file: &dyn VfsFile, path: &Path) -> Result<u64, Error> {
    let mut end = file.len().map_err(|e| Error::io("inspect", path, e))?;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(ZERO_TAIL_STEP);
        buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
        match file.read_exact_at(&mut buf, start) {
            Ok(()) => {}
            // Cut meanwhile (a writer gave back its reserved space): start again from the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                end = file
                    .len()
                    .map_err(|e| Error::io("inspect", path, e))?
                    .min(end);
                continue;
            }
            Err(e) => return Err(Error::io("read", path, e)),
        }
        if let Some(i) = buf.iter().rposition(|b| *b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Cuts `file` (a writable handle) back to `end` and syncs it, when only zeros (space a writer
/// reserved) follow `end`; leaves it alone when anything else does.
pub(crate) fn give_back(file: &dyn VfsFile, path: &Path, end: u64) -> Result<(), Error> {
    let len = file.len().map_err(|e| Error::io("inspect", path, e))?;
    if len <= end || data_len(file, path)? > end {
        return Ok(());
    }
    file.set_len(end)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io("cut the reserved space of", path, e))
}

/// True when nothing follows `end` in `file`: it ends there, or only zero bytes (reserved
/// space) follow. Looks at the first bytes after `end` only: what a crashed process leaves
/// starts right at `end` (its write reached the page cache in order); what a power cut may
/// leave further on is looked for in full at the next open.
pub(crate) fn zeros_after(file: &dyn VfsFile, path: &Path, end: u64) -> Result<bool, Error> {
    let len = file.len().map_err(|e| Error::io("inspect", path, e))?;
    if len <= end {
        return Ok(len == end);
    }
    let mut probe = vec![0u8; usize::try_from((len - end).min(ZERO_PROBE)).unwrap_or(0)];
    match file.read_exact_at(&mut probe, end) {
        Ok(()) => Ok(all_zero(&probe)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Reads lines of `file` from `start` and hands every event of every *complete* batch to
/// `apply`, in order, stopping after the batch that ends at `stop_after` (if given) or at the
/// end of the file. Whatever follows the last complete batch is described in the returned
/// [`Tail`]; the scan itself never decides that it is disposable.
pub(crate) fn scan(
    file: &dyn VfsFile,
    path: &Path,
    start: ScanStart,
    trust: Trust,
    stop_after: Option<u64>,
    mut apply: impl FnMut(&IndexEntry<'_>),
) -> Result<Scanned, Error> {
    // A scan that stops at a known position never reaches the reserved zeros past the end of
    // the log; one that reads to the end stops where the data does.
    let mut len = match stop_after {
        Some(_) => file.len().map_err(|e| Error::io("inspect", path, e))?,
        None => data_len(file, path)?,
    };
    let mut chunk = FIRST_CHUNK;
    let mut out = Scanned {
        end: start.offset,
        last_position: start.next_position - 1,
        last_hash: start.prev_hash,
        tail: Tail::Clean,
        unterminated: false,
    };
    let mut expected = start.next_position;
    let mut prev = start.prev_hash;
    let mut pending: Vec<Pending> = Vec::new();
    let mut batch_last = 0u64;
    let mut keys: Vec<u64> = Vec::new();

    let mut buf: Vec<u8> = Vec::new();
    let mut buf_offset = start.offset; // file offset of buf[0]
    let mut cursor = start.offset; // file offset of the next line to parse
    loop {
        if stop_after.is_some_and(|s| out.last_position >= s) {
            return Ok(out);
        }
        let rel = (cursor - buf_offset) as usize;
        let (line_len, terminated) = match buf[rel..].iter().position(|b| *b == b'\n') {
            Some(nl) => (nl, true),
            None if buf_offset + (buf.len() as u64) < len => {
                // Lines before the cursor are parsed (or applied): drop them and read more.
                let read_to = buf_offset + buf.len() as u64;
                buf.drain(..rel);
                buf_offset = cursor;
                let want = chunk.min((len - read_to) as usize);
                chunk = (chunk * 2).min(CHUNK);
                let old = buf.len();
                buf.resize(old + want, 0);
                match file.read_exact_at(&mut buf[old..], read_to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        // Cut meanwhile: a writer gave back the space it had reserved past the
                        // end of the log. Read on to the new end (never below the data).
                        buf.truncate(old);
                        let now = data_len(file, path)?;
                        if now >= len {
                            return Err(Error::io("read", path, e));
                        }
                        len = now;
                    }
                    Err(e) => return Err(Error::io("read", path, e)),
                }
                continue;
            }
            // The file ends without a newline: the rest may still be one whole event line.
            None if rel < buf.len() => (buf.len() - rel, false),
            None => break,
        };
        let line_offset = cursor;
        let line = &buf[rel..rel + line_len];
        cursor += line_len as u64 + u64::from(terminated);
        if line.is_empty()
            && line_offset == start.offset
            && pending.is_empty()
            && follows_unterminated_line(file, path, line_offset)?
        {
            // The newline that recovery added after an unterminated last line, which this
            // process indexed before the newline was there. Any other empty line is stray.
            out.end = cursor;
            continue;
        }
        // An unterminated line (only its newline lost) is only believed when its hash proves it
        // whole; recovery adds the newline before anything is appended after it.
        let trust = if terminated { trust } else { Trust::Verify };

        let (event_type, position, line_batch_last, hash) =
            match parse_line(line, expected, batch_last, prev, trust, &mut keys) {
                Ok(v) => v,
                Err(reason) => {
                    let evidence = evidence_after(file, path, len, cursor)?;
                    out.tail = incomplete(&out, len, reason, evidence);
                    return Ok(out);
                }
            };
        prev = hash;
        expected = position + 1;
        if pending.is_empty() && position == line_batch_last {
            // A one-event batch, the common case: apply without buffering.
            apply(&IndexEntry {
                position,
                offset: line_offset,
                event_type: &event_type,
                tag_keys: &keys,
                hash,
            });
        } else {
            batch_last = line_batch_last;
            pending.push(Pending {
                position,
                offset: line_offset,
                event_type: event_type.into_owned(),
                tag_keys: std::mem::take(&mut keys),
                hash,
            });
            if position != line_batch_last {
                continue;
            }
            for p in pending.drain(..) {
                apply(&IndexEntry {
                    position: p.position,
                    offset: p.offset,
                    event_type: &p.event_type,
                    tag_keys: &p.tag_keys,
                    hash: p.hash,
                });
            }
        }
        batch_last = 0;
        out.end = cursor;
        out.last_position = position;
        out.last_hash = hash;
        out.unterminated = !terminated;
    }
    if out.end < len {
        let reason = if pending.is_empty() {
            "an unfinished line".to_owned()
        } else {
            format!("a batch missing its last event (position {batch_last})")
        };
        out.tail = incomplete(&out, len, reason, Evidence::default());
    }
    Ok(out)
}

fn incomplete(out: &Scanned, len: u64, reason: String, evidence: Evidence) -> Tail {
    Tail::Incomplete {
        offset: out.end,
        len: len - out.end,
        position: out.last_position + 1,
        reason,
        evidence,
    }
}

/// True when the byte before `offset` is not a newline: the line before it was unterminated.
fn follows_unterminated_line(file: &dyn VfsFile, path: &Path, offset: u64) -> Result<bool, Error> {
    if offset == 0 {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset - 1)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(byte[0] != b'\n')
}

/// What the readable lines from `offset` to the end of the file claim.
fn evidence_after(
    file: &dyn VfsFile,
    path: &Path,
    len: u64,
    offset: u64,
) -> Result<Evidence, Error> {
    let mut evidence = Evidence::default();
    if offset >= len {
        return Ok(evidence);
    }
    let rest_len = usize::try_from(len - offset).unwrap_or(usize::MAX);
    let mut rest = vec![0u8; rest_len];
    file.read_exact_at(&mut rest, offset)
        .map_err(|e| Error::io("read", path, e))?;
    for line in rest.split(|b| *b == b'\n') {
        evidence.observe(line);
    }
    Ok(evidence)
}

/// Parses and checks one line: returns its type, position, batch end and hash, and fills
/// `keys` with its tag keys.
fn parse_line<'l>(
    line: &'l [u8],
    expected: u64,
    batch_last: u64,
    prev: ChainHash,
    trust: Trust,
    keys: &mut Vec<u64>,
) -> Result<(std::borrow::Cow<'l, str>, u64, u64, ChainHash), String> {
    let (hashed, hash) = split_hash(line).map_err(str::to_owned)?;
    let header = decode_header(line)?;
    if header.position != expected {
        return Err(format!(
            "expected position {expected}, found {}",
            header.position
        ));
    }
    if batch_last != 0 && header.batch_last != batch_last {
        return Err(format!(
            "position {} claims batch end {} inside a batch ending at {batch_last}",
            header.position, header.batch_last
        ));
    }
    if trust == Trust::Verify && ChainHash::chain(prev, hashed) != hash {
        return Err(format!(
            "hash of position {} does not match its content",
            header.position
        ));
    }
    keys.clear();
    keys.extend(header.tags.iter().map(|t| tag_key(&t.key, &t.value)));
    Ok((header.event_type, header.position, header.batch_last, hash))
}
