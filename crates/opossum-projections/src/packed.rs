//! The packed file of one generation, `gen-NNNNNN.jsonl`, and the in-memory table that indexes
//! it.
//!
//! The file is JSON lines, appended to and never rewritten:
//!
//! ```text
//! {"opossum_projection":1,"projection":"Courses","generation":2}
//! {"key":"c-1","position":17,"tags":[{"key":"IsFull","value":"False"}],"state":{"enrolled":12}}
//! {"key":"c-2","position":18,"deleted":true}
//! {"checkpoint":18,"records":2,"sha256":"9f2c…","at":"2026-12-03T10:00:00Z"}
//! ```
//!
//! - The first line names the format, the projection and the generation.
//! - An **instance record** holds an instance's key, the position of the last event applied to
//!   it, its tags and its state; a **deletion** says the instance is gone. The newest record of
//!   a key wins.
//! - A **commit line** ends every batch: every event up to `checkpoint` is applied, the
//!   `records` lines before it (since the previous commit line) belong to it, and `sha256` is
//!   the SHA-256 of exactly their bytes. A batch counts only once its commit line is complete
//!   and its hash matches: records and checkpoint become visible together, in one write and
//!   (durable) one `fdatasync`. Whatever follows the last valid commit — a write a crash cut
//!   short, or pages a power cut left unwritten — is ignored by readers and cut off by the
//!   maintainer when it opens the file.
//!
//! The [`Table`] holds, for each live instance, where its newest record is, and for each tag
//! the keys carrying it, so a read is one lookup and one positional read, and a tag query costs
//! in proportion to its matches.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::Path;

use opossum_core::{Tag, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::tags::{self, IndexTag};

/// The format number the first line carries.
pub(crate) const FORMAT: u32 = 1;

/// Bytes read at a time when a file is scanned.
const SCAN_CHUNK: usize = 1 << 20;

/// The first line of a generation file.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderLine {
    pub(crate) opossum_projection: u32,
    pub(crate) projection: String,
    pub(crate) generation: u64,
}

/// The line written for an instance.
#[derive(Serialize)]
struct RecordOut<'a, S> {
    key: &'a str,
    position: u64,
    #[serde(skip_serializing_if = "is_false")]
    deleted: bool,
    #[serde(skip_serializing_if = "<[Tag]>::is_empty")]
    tags: &'a [Tag],
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a S>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if takes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// An instance line as read; the state is decoded in a second step, so that a state whose JSON
/// is `null` is told apart from a deletion.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordIn<'a> {
    #[serde(borrow)]
    pub(crate) key: Cow<'a, str>,
    pub(crate) position: u64,
    #[serde(default)]
    pub(crate) deleted: bool,
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub(crate) state: Option<&'a RawValue>,
}

/// A state that is present, even as `null` (which `Option` alone would read as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A commit line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitLine<'a> {
    checkpoint: u64,
    records: u64,
    #[serde(borrow)]
    sha256: Cow<'a, str>,
    at: Timestamp,
}

/// Where the newest record of a live instance is, and what the index needs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// Byte offset of the record's line in the file.
    pub(crate) offset: u64,
    /// Its length, without the line break.
    pub(crate) len: u32,
    /// The position of the last event applied to the instance.
    pub(crate) position: u64,
    /// The index tags of its state.
    pub(crate) tags: Box<[IndexTag]>,
}

/// The index of one generation file: every live instance, the tag index, the checkpoint and
/// where the next commit goes.
#[derive(Debug, Default)]
pub(crate) struct Table {
    instances: BTreeMap<String, Located>,
    tags: HashMap<IndexTag, BTreeSet<String>>,
    checkpoint: Option<u64>,
    end: u64,
    live_bytes: u64,
}

impl Table {
    /// Every event up to it is applied: `None` before the first commit.
    pub(crate) fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    /// The end of the last complete commit: where the next one is written.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// The bytes of the newest record of every live instance, line breaks included.
    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// How many instances exist.
    pub(crate) fn len(&self) -> usize {
        self.instances.len()
    }

    /// Where instance `key` is.
    pub(crate) fn get(&self, key: &str) -> Option<&Located> {
        self.instances.get(key)
    }

    /// The instances after `after` (every one when `None`), in key order.
    pub(crate) fn after<'a>(
        &'a self,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a Located)> + 'a {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.instances
            .range::<str, (Bound<&str>, Bound<&str>)>((lower, Bound::Unbounded))
    }

    /// The keys carrying every tag of `wanted` (not empty), after `after`, in key order.
    pub(crate) fn tagged<'a>(
        &'a self,
        wanted: &'a [IndexTag],
        after: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a String, &'a Located)> + 'a> {
        use std::ops::Bound;
        // Walk the smallest set; look the others up.
        let mut sets: Vec<&BTreeSet<String>> = Vec::with_capacity(wanted.len());
        for tag in wanted {
            match self.tags.get(tag) {
                Some(set) => sets.push(set),
                None => return Box::new(std::iter::empty()),
            }
        }
        sets.sort_by_key(|s| s.len());
        let Some((smallest, others)) = sets.split_first() else {
            return Box::new(std::iter::empty());
        };
        let others: Vec<&BTreeSet<String>> = others.to_vec();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Box::new(
            smallest
                .range::<str, (Bound<&str>, Bound<&str>)>((lower, Bound::Unbounded))
                .filter(move |key| others.iter().all(|s| s.contains(key.as_str())))
                .filter_map(|key| self.instances.get_key_value(key.as_str())),
        )
    }

    /// Applies what one scan or one commit found.
    pub(crate) fn apply(&mut self, delta: Delta) {
        for (key, located) in delta.changes {
            self.put(key, located);
        }
        if delta.checkpoint.is_some() {
            self.checkpoint = delta.checkpoint;
        }
        self.end = delta.end;
    }

    fn put(&mut self, key: String, located: Option<Located>) {
        let old = match located {
            Some(located) => {
                for tag in &located.tags {
                    self.tags
                        .entry(tag.clone())
                        .or_default()
                        .insert(key.clone());
                }
                self.live_bytes += u64::from(located.len) + 1;
                let new_tags = located.tags.clone();
                let old = self.instances.insert(key.clone(), located);
                if let Some(old) = &old {
                    for tag in old.tags.iter().filter(|t| !new_tags.contains(t)) {
                        self.untag(tag, &key);
                    }
                }
                old
            }
            None => {
                let old = self.instances.remove(&key);
                if let Some(old) = &old {
                    for tag in &old.tags {
                        self.untag(tag, &key);
                    }
                }
                old
            }
        };
        if let Some(old) = old {
            self.live_bytes -= u64::from(old.len) + 1;
        }
    }

    fn untag(&mut self, tag: &IndexTag, key: &str) {
        if let Some(set) = self.tags.get_mut(tag) {
            set.remove(key);
            if set.is_empty() {
                self.tags.remove(tag);
            }
        }
    }
}

/// What a scan of a file, or a commit, adds to a [`Table`].
#[derive(Debug, Default)]
pub(crate) struct Delta {
    /// The newest record of each key changed (`None`: deleted), in file order.
    pub(crate) changes: Vec<(String, Option<Located>)>,
    /// The checkpoint of the last commit, if there was one.
    pub(crate) checkpoint: Option<u64>,
    /// The end of the last complete commit.
    pub(crate) end: u64,
}

/// Bytes after the last complete commit that do not form one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Torn {
    /// How many bytes.
    pub(crate) len: u64,
    /// What was wrong with them.
    pub(crate) reason: String,
}

/// What [`scan`] found.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub(crate) delta: Delta,
    /// The first line, when the scan started at the beginning and it was complete.
    pub(crate) header: Option<HeaderLine>,
    /// What follows the last complete commit, if anything.
    pub(crate) torn: Option<Torn>,
}

/// A batch of records being written, and the commit line that ends it.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    bytes: Vec<u8>,
    records: Vec<(String, Option<Located>)>,
}

impl Pending {
    /// True when no record was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds the record of instance `key`: its state (`None`: deleted), its tags and the
    /// position of the last event applied to it.
    pub(crate) fn record<S: Serialize>(
        &mut self,
        key: &str,
        position: u64,
        tags: &[Tag],
        state: Option<&S>,
        path: &Path,
    ) -> Result<(), Error> {
        let start = self.bytes.len();
        let record = RecordOut {
            key,
            position,
            deleted: state.is_none(),
            tags: if state.is_some() { tags } else { &[] },
            state,
        };
        serde_json::to_writer(&mut self.bytes, &record).map_err(|e| {
            self.bytes.truncate(start);
            Error::io(
                "encode an instance for",
                path,
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        })?;
        let Ok(len) = u32::try_from(self.bytes.len() - start) else {
            let len = self.bytes.len() - start;
            self.bytes.truncate(start);
            return Err(Error::io(
                "encode an instance for",
                path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the record of {key:?} encodes to {len} bytes; at most 4 GiB fit"),
                ),
            ));
        };
        self.bytes.push(b'\n');
        let located = state.is_some().then(|| Located {
            offset: start as u64,
            len,
            position,
            tags: tags::index_tags(tags).into_boxed_slice(),
        });
        self.records.push((key.to_owned(), located));
        Ok(())
    }

    /// Adds a record copied as it is from another file (compaction).
    pub(crate) fn copy(&mut self, key: &str, line: &[u8], located: &Located) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        self.records.push((
            key.to_owned(),
            Some(Located {
                offset: start as u64,
                ..located.clone()
            }),
        ));
    }

    /// Bytes added so far.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Ends the batch with its commit line, for writing at offset `at` of the file. Returns the
    /// bytes to write and what they add to the table once written.
    pub(crate) fn seal(self, checkpoint: u64, at: u64) -> (Vec<u8>, Delta) {
        let Pending { mut bytes, records } = self;
        let hash = hex(&Sha256::digest(&bytes));
        let line = CommitLine {
            checkpoint,
            records: records.len() as u64,
            sha256: Cow::Owned(hash),
            at: Timestamp::now(),
        };
        // A struct of integers, a hex string and a timestamp always encodes.
        if serde_json::to_writer(&mut bytes, &line).is_err() {
            bytes.extend_from_slice(b"{}");
        }
        bytes.push(b'\n');
        let end = at + bytes.len() as u64;
        let changes = records
            .into_iter()
            .map(|(key, located)| {
                let located = located.map(|l| Located {
                    offset: at + l.offset,
                    ..l
                });
                (key, located)
            })
            .collect();
        let delta = Delta {
            changes,
            checkpoint: Some(checkpoint),
            end,
        };
        (bytes, delta)
    }
}

/// The first line of a new generation file.
pub(crate) fn header(projection: &str, generation: u64) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&HeaderLine {
        opossum_projection: FORMAT,
        projection: projection.to_owned(),
        generation,
    })
    .unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Reads `file` from `from` (0, or the end of a commit) to its end, and returns the complete
/// commits found there. A scan from 0 reads the header line first.
pub(crate) fn scan(file: &File, path: &Path, from: u64) -> Result<Scanned, Error> {
    let mut reader = LineReader::new(file, from);
    let mut scanned = Scanned {
        delta: Delta {
            end: from,
            ..Delta::default()
        },
        header: None,
        torn: None,
    };
    let mut batch: Vec<(String, Option<Located>)> = Vec::new();
    let mut hasher = Sha256::new();
    let mut expect_header = from == 0;
    let stop = |reason: String, scanned: &mut Scanned, at_end: u64| {
        scanned.torn = Some(Torn {
            len: at_end - scanned.delta.end,
            reason,
        });
    };
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("read the length of", path, e))?
        .len();
    loop {
        let line = reader.next_line().map_err(|e| Error::io("read", path, e))?;
        let (offset, bytes) = match line {
            Line::End => break,
            Line::Partial => {
                if file_len > scanned.delta.end {
                    stop(
                        "the last line is cut short".to_owned(),
                        &mut scanned,
                        file_len,
                    );
                }
                break;
            }
            Line::Full { offset, bytes } => (offset, bytes),
        };
        if expect_header {
            expect_header = false;
            match serde_json::from_slice::<HeaderLine>(bytes) {
                Ok(h) if h.opossum_projection == FORMAT => {
                    scanned.header = Some(h);
                    scanned.delta.end = offset + bytes.len() as u64 + 1;
                    continue;
                }
                Ok(h) => {
                    return Err(Error::corrupt(
                        path,
                        format!(
                            "it is in projection format {}, which this version does not read",
                            h.opossum_projection
                        ),
                    ));
                }
                Err(e) => {
                    stop(
                        format!("its first line is not a header ({e})"),
                        &mut scanned,
                        file_len,
                    );
                    break;
                }
            }
        }
        if bytes.starts_with(b"{\"checkpoint\":") {
            let commit = match serde_json::from_slice::<CommitLine<'_>>(bytes) {
                Ok(c) => c,
                Err(e) => {
                    stop(
                        format!("a commit line does not parse ({e})"),
                        &mut scanned,
                        file_len,
                    );
                    break;
                }
            };
            let hash = hex(&hasher.finalize_reset());
            if commit.records != batch.len() as u64 || commit.sha256 != hash {
                stop(
                    format!(
                        "the commit at byte {offset} does not match the {} records before it",
                        batch.len()
                    ),
                    &mut scanned,
                    file_len,
                );
                break;
            }
            scanned.delta.changes.append(&mut batch);
            scanned.delta.checkpoint = Some(commit.checkpoint);
            scanned.delta.end = offset + bytes.len() as u64 + 1;
            continue;
        }
        match serde_json::from_slice::<RecordIn<'_>>(bytes) {
            Ok(record) => {
                hasher.update(bytes);
                hasher.update(b"\n");
                let located = (!record.deleted).then(|| Located {
                    offset,
                    len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                    position: record.position,
                    tags: tags::index_tags(&record.tags).into_boxed_slice(),
                });
                batch.push((record.key.into_owned(), located));
            }
            Err(e) => {
                stop(
                    format!("the line at byte {offset} is not an instance record ({e})"),
                    &mut scanned,
                    file_len,
                );
                break;
            }
        }
    }
    if scanned.torn.is_none() && !batch.is_empty() {
        stop(
            format!("{} records are not followed by their commit", batch.len()),
            &mut scanned,
            file_len,
        );
    }
    Ok(scanned)
}

/// One step of [`LineReader`].
enum Line<'a> {
    /// A line with its line break (not included in `bytes`).
    Full { offset: u64, bytes: &'a [u8] },
    /// The file ends in the middle of a line.
    Partial,
    /// The file ends after a line break.
    End,
}

/// Reads the lines of a file with positional reads, a chunk at a time.
struct LineReader<'f> {
    file: &'f File,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    /// The next line starts at `buf[start]`.
    start: usize,
    eof: bool,
}

impl<'f> LineReader<'f> {
    fn new(file: &'f File, from: u64) -> LineReader<'f> {
        LineReader {
            file,
            buf: Vec::new(),
            base: from,
            start: 0,
            eof: false,
        }
    }

    fn next_line(&mut self) -> io::Result<Line<'_>> {
        loop {
            if let Some(n) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let (from, to) = (self.start, self.start + n);
                self.start = to + 1;
                return Ok(Line::Full {
                    offset: self.base + from as u64,
                    bytes: &self.buf[from..to],
                });
            }
            if self.eof {
                return Ok(if self.start == self.buf.len() {
                    Line::End
                } else {
                    Line::Partial
                });
            }
            // Keep the partial line, read the next chunk after it.
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
            let filled = self.buf.len();
            let want = SCAN_CHUNK.max(filled);
            self.buf.resize(filled + want, 0);
            let n = read_at(
                self.file,
                &mut self.buf[filled..],
                self.base + filled as u64,
            )?;
            self.buf.truncate(filled + n);
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

/// Reads at `offset` as much as one call gives.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, buf, offset);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, buf, offset);
        match read {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Fills `buf` from `offset`.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ends before the record",
                ));
            }
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        #[cfg(unix)]
        let written = std::os::unix::fs::FileExt::write_at(file, buf, offset);
        #[cfg(windows)]
        let written = std::os::windows::fs::FileExt::seek_write(file, buf, offset);
        match written {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::new(k, v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn write(path: &Path, bytes: &[u8]) -> File {
        std::fs::write(path, bytes).unwrap();
        std::fs::OpenOptions::new().read(true).open(path).unwrap()
    }

    fn batch(records: &[(&str, u64, Option<u32>, &[Tag])], checkpoint: u64, at: u64) -> Vec<u8> {
        let mut pending = Pending::default();
        for (key, position, state, tags) in records {
            pending
                .record(key, *position, tags, state.as_ref(), Path::new("x"))
                .unwrap();
        }
        pending.seal(checkpoint, at).0
    }

    #[test]
    fn complete_commits_are_read_and_a_torn_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.jsonl");
        let mut bytes = header("P", 1);
        let first = batch(
            &[("a", 1, Some(1), &[tag("T", "X")]), ("b", 2, Some(2), &[])],
            2,
            bytes.len() as u64,
        );
        bytes.extend_from_slice(&first);
        let committed = bytes.len();
        let second = batch(
            &[("a", 3, None, &[]), ("c", 3, Some(3), &[])],
            3,
            bytes.len() as u64,
        );
        bytes.extend_from_slice(&second);
        // Every cut inside the second batch keeps exactly the first.
        for cut in committed..bytes.len() {
            let file = write(&path, &bytes[..cut]);
            let scanned = scan(&file, &path, 0).unwrap();
            assert_eq!(scanned.delta.end, committed as u64, "cut at {cut}");
            assert_eq!(scanned.delta.checkpoint, Some(2));
            assert_eq!(scanned.torn.is_some(), cut > committed);
            let mut table = Table::default();
            table.apply(scanned.delta);
            assert_eq!(table.len(), 2);
            let wanted = tags::index_tags(&[tag("T", "x")]);
            assert_eq!(table.tagged(&wanted, None).count(), 1);
        }
        let file = write(&path, &bytes);
        let scanned = scan(&file, &path, 0).unwrap();
        assert!(scanned.torn.is_none());
        let mut table = Table::default();
        table.apply(scanned.delta);
        assert_eq!(table.checkpoint(), Some(3));
        let keys: Vec<&String> = table.after(None).map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "c"]);
        let wanted = tags::index_tags(&[tag("T", "X")]);
        assert_eq!(
            table.tagged(&wanted, None).count(),
            0,
            "a deletion drops its tags"
        );
    }

    #[test]
    fn a_damaged_record_voids_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.jsonl");
        let mut bytes = header("P", 1);
        let at = bytes.len();
        bytes.extend_from_slice(&batch(&[("a", 1, Some(7), &[])], 1, at as u64));
        // Same length, other state: the hash no longer matches.
        let text = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"state\":7", "\"state\":8");
        let file = write(&path, text.as_bytes());
        let scanned = scan(&file, &path, 0).unwrap();
        assert_eq!(scanned.delta.end, at as u64);
        assert!(scanned.delta.changes.is_empty());
        assert!(scanned.torn.unwrap().reason.contains("does not match"));
    }

    #[test]
    fn a_scan_continues_from_the_end_of_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.jsonl");
        let mut bytes = header("P", 1);
        bytes.extend_from_slice(&batch(&[("a", 1, Some(1), &[])], 1, bytes.len() as u64));
        let first_end = bytes.len() as u64;
        bytes.extend_from_slice(&batch(&[("b", 2, Some(2), &[])], 2, first_end));
        let file = write(&path, &bytes);
        let scanned = scan(&file, &path, first_end).unwrap();
        assert!(scanned.header.is_none());
        assert_eq!(scanned.delta.changes.len(), 1);
        assert_eq!(scanned.delta.changes[0].0, "b");
        assert_eq!(scanned.delta.end, bytes.len() as u64);
    }

    #[test]
    fn the_format_is_what_the_documents_say() {
        let mut bytes = header("Courses", 2);
        let mut pending = Pending::default();
        pending
            .record(
                "c-1",
                17,
                &[tag("IsFull", "False")],
                Some(&serde_json::json!({"enrolled": 12})),
                Path::new("x"),
            )
            .unwrap();
        pending
            .record::<u32>("c-2", 18, &[], None, Path::new("x"))
            .unwrap();
        let (sealed, _) = pending.seal(18, bytes.len() as u64);
        bytes.extend_from_slice(&sealed);
        let text = String::from_utf8(bytes).unwrap();
        // The commit time differs from run to run.
        let stable: Vec<&str> = text
            .lines()
            .map(|l| l.split(",\"at\":").next().unwrap_or(l))
            .collect();
        insta::assert_snapshot!(stable.join("\n"));
    }
}
