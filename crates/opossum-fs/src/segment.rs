//! Segment files: naming, positioned I/O, and scanning lines into index entries.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::index::{IndexEntry, tag_key};
use crate::record::{ChainHash, decode_header, split_hash};

/// The folder of segment files inside a store folder.
pub(crate) const EVENTS_DIR: &str = "events";
const EXTENSION: &str = "jsonl";

/// One segment file: events `first..` stored as lines.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Position of the first event in the file (also its name).
    pub(crate) first: u64,
    /// End of the committed bytes; anything after is not (yet) part of the log.
    pub(crate) end: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
}

/// The file name of the segment starting at `first`: 20 digits, so names sort like positions.
pub(crate) fn file_name(first: u64) -> String {
    format!("{first:020}.{EXTENSION}")
}

/// The first position encoded in a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().filter(|p| *p > 0)
}

/// The segment files in `events_dir`, ordered by first position.
pub(crate) fn list(events_dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let entries = match fs::read_dir(events_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", events_dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", events_dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            found.push((first, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(first, _)| *first);
    Ok(found)
}

/// Opens a segment for reading.
pub(crate) fn open_read(path: &Path) -> Result<Arc<File>, Error> {
    File::open(path)
        .map(Arc::new)
        .map_err(|e| Error::io("open", path, e))
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Makes a new directory entry durable: on Unix a created or renamed file survives power loss
/// only once its directory is synced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// How much a scan may trust what it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Committed data (below the head anchor): parse, but do not re-hash.
    Committed,
    /// Data nobody has vouched for (beyond the anchor): check every hash link.
    Verify,
}

/// What a scan found after the last complete batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The scan consumed everything it was asked to.
    Clean,
    /// Bytes from `offset` to the end of the file do not form a complete batch: a torn or
    /// uncommitted write, safe to cut.
    Torn {
        offset: u64,
        len: u64,
        reason: String,
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

const CHUNK: usize = 1 << 20;

/// Reads lines of `file` from `start` and hands every event of every *complete* batch to
/// `apply`, in order, stopping after the batch that ends at `stop_after` (if given) or at the
/// end of the file.
///
/// A line that cannot be an event is a torn tail when nothing valid follows it, and corruption
/// (an error, with nothing changed) when a valid event line follows: data after damage is never
/// treated as disposable.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    start: ScanStart,
    trust: Trust,
    stop_after: Option<u64>,
    mut apply: impl FnMut(&IndexEntry<'_>),
) -> Result<Scanned, Error> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("inspect", path, e))?
        .len();
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
                let want = CHUNK.min((len - read_to) as usize);
                let old = buf.len();
                buf.resize(old + want, 0);
                read_exact_at(file, &mut buf[old..], read_to)
                    .map_err(|e| Error::io("read", path, e))?;
                continue;
            }
            // The file ends without a newline: the rest may still be one whole event line.
            None if rel < buf.len() => (buf.len() - rel, false),
            None => break,
        };
        let line_offset = cursor;
        let line = &buf[rel..rel + line_len];
        cursor += line_len as u64 + u64::from(terminated);
        if line.is_empty() && line_offset == start.offset {
            // The newline that recovery added after an unterminated line this scan started at.
            out.end = cursor;
            continue;
        }
        // An unterminated line (only its newline lost) is only believed when its hash proves it
        // whole; recovery adds the newline before anything is appended after it.
        let trust = if terminated { trust } else { Trust::Verify };

        let (event_type, position, line_batch_last, hash) =
            match parse_line(line, expected, batch_last, prev, trust, &mut keys) {
                Ok(v) => v,
                Err(reason) => return torn_or_corrupt(file, path, len, out, line_offset, reason),
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
        out.tail = Tail::Torn {
            offset: out.end,
            len: len - out.end,
            reason: if pending.is_empty() {
                "an unfinished line".to_owned()
            } else {
                format!("a batch missing its last event (position {batch_last})")
            },
        };
    }
    Ok(out)
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

/// Decides what an unreadable line at `offset` means: a torn tail when no complete event line
/// follows it anywhere in the file, corruption otherwise.
fn torn_or_corrupt(
    file: &File,
    path: &Path,
    len: u64,
    mut out: Scanned,
    offset: u64,
    reason: String,
) -> Result<Scanned, Error> {
    let rest_len = usize::try_from(len - offset).unwrap_or(usize::MAX);
    let mut rest = vec![0u8; rest_len];
    read_exact_at(file, &mut rest, offset).map_err(|e| Error::io("read", path, e))?;
    let mut lines = rest.split(|b| *b == b'\n');
    lines.next(); // the bad line itself
    let mut seen = 0;
    for line in lines {
        seen += 1;
        if split_hash(line).is_ok() && decode_header(line).is_ok() {
            return Err(Error::corrupt(
                path,
                offset,
                format!("{reason}, followed {seen} line(s) later by intact events"),
            ));
        }
    }
    out.tail = Tail::Torn {
        offset: out.end,
        len: len - out.end,
        reason,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_positions() {
        assert_eq!(file_name(1), "00000000000000000001.jsonl");
        assert_eq!(parse_file_name(&file_name(12345)), Some(12345));
        assert_eq!(parse_file_name("00000000000000000000.jsonl"), None);
        assert_eq!(parse_file_name("1.jsonl"), None);
        assert_eq!(parse_file_name("0000000000000000000a.jsonl"), None);
        assert!(file_name(9) < file_name(10));
    }
}
