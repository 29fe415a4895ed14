//! `index/snapshot.bin`: the index saved to disk, so a large store opens without rescanning.
//!
//! A snapshot is a cache, never the truth. It carries a checksum and the position and hash of
//! the last event it covers; on load that event is read back from the log and must match, or the
//! snapshot is discarded and the index rebuilt from the log (and the rebuild logged). A store
//! whose snapshot is missing, stale, damaged or from another format version therefore opens
//! correctly, only slower.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic      16 bytes  "OPOSSUM-INDEX\0\0" + format version (1 byte, = 1)
//! head       u64       last position covered
//! head_hash  32 bytes  its chain hash
//! segments   u32 count, then per segment: first u64, end u64
//! offsets    u64 × head   line offset of each position in its segment
//! type_of    u32 × head   type id of each position
//! types      u32 count, then per type: u32 length + UTF-8 name
//! tags       u64 count, then per tag: u64 key, u32 count, u64 × count positions
//! checksum   u64       XXH3-64 of every byte before it
//! ```

use std::io;
use std::sync::Arc;

use crate::Error;
use crate::index::{Index, Postings, TagMap};
use crate::layout::{Layout, SNAPSHOT_FILE};
use crate::record::ChainHash;
use crate::segment::Segment;
use crate::vfs::{OpenMode, Vfs};
const MAGIC: &[u8; 16] = b"OPOSSUM-INDEX\0\0\x01";

/// Serializes the index.
pub(crate) fn encode(index: &Index) -> Vec<u8> {
    let head = index.head();
    let mut out = Vec::with_capacity(64 + index.offsets.len() * 12 + index.tags.len() * 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&head.to_le_bytes());
    out.extend_from_slice(&index.head_hash.0);
    put_u32(&mut out, index.segments.len());
    for s in &index.segments {
        out.extend_from_slice(&s.first.to_le_bytes());
        out.extend_from_slice(&s.end.to_le_bytes());
    }
    for o in &index.offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    for t in &index.type_of {
        out.extend_from_slice(&t.to_le_bytes());
    }
    put_u32(&mut out, index.type_names.len());
    for name in &index.type_names {
        put_u32(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&(index.tags.len() as u64).to_le_bytes());
    for (key, postings) in &index.tags {
        let list = postings.as_slice();
        out.extend_from_slice(&key.to_le_bytes());
        put_u32(&mut out, list.len());
        for p in list {
            out.extend_from_slice(&p.to_le_bytes());
        }
    }
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// A segment as the snapshot recorded it, before its file is opened.
pub(crate) struct SavedSegment {
    pub(crate) first: u64,
    pub(crate) end: u64,
}

/// Parses a snapshot. Segment file handles are not part of it; the caller attaches them.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Index, Vec<SavedSegment>), String> {
    if bytes.len() < MAGIC.len() + 8 {
        return Err("file too short".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(sum.try_into().map_err(|_| "checksum")?);
    if xxhash_rust::xxh3::xxh3_64(body) != stored {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(16)? != MAGIC {
        return Err("unknown format or version".into());
    }
    let head = r.u64()?;
    let head_len = usize::try_from(head).map_err(|_| "head too large")?;
    let mut index = Index::default();
    index.head_hash = ChainHash(r.take(32)?.try_into().map_err(|_| "hash")?);
    let segment_count = r.u32()?;
    let mut saved = Vec::with_capacity(segment_count.min(1 << 16));
    for _ in 0..segment_count {
        saved.push(SavedSegment {
            first: r.u64()?,
            end: r.u64()?,
        });
    }
    // Each position needs 12 bytes; refuse counts the file cannot hold before allocating.
    if r.remaining() < head_len.saturating_mul(12) {
        return Err("truncated position table".into());
    }
    index.offsets = r.u64s(head_len)?;
    index.type_of = r.u32s(head_len)?;
    let type_count = r.u32()?;
    for _ in 0..type_count {
        let len = r.u32()?;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "type name is not UTF-8")?;
        index.type_names.push(Arc::from(name));
    }
    if index
        .type_of
        .iter()
        .any(|t| *t as usize >= index.type_names.len())
    {
        return Err("type id out of range".into());
    }
    let tag_count = usize::try_from(r.u64()?).map_err(|_| "tag count")?;
    if r.remaining() < tag_count.saturating_mul(12) {
        return Err("truncated tag table".into());
    }
    let mut tags = TagMap::with_capacity_and_hasher(tag_count, Default::default());
    for _ in 0..tag_count {
        let key = r.u64()?;
        let n = r.u32()?;
        if r.remaining() < n.saturating_mul(8) {
            return Err("truncated tag postings".into());
        }
        let list = r.u64s(n)?;
        if list.iter().any(|p| *p == 0 || *p > head) || !list.is_sorted() {
            return Err("tag postings out of range".into());
        }
        let postings = match list.as_slice() {
            [one] => Postings::One([*one]),
            [] => return Err("empty tag postings".into()),
            _ => Postings::Many(Box::new(list)),
        };
        tags.insert(key, postings);
    }
    if r.remaining() != 0 {
        return Err("trailing bytes".into());
    }
    index.tags = tags;
    index.rebuild_type_postings();
    Ok((index, saved))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| "unexpected end of file".to_owned())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "u64")?))
    }

    /// `n` little-endian `u64`s, parsed in one pass over one slice.
    fn u64s(&mut self, n: usize) -> Result<Vec<u64>, String> {
        let bytes = self.take(n.checked_mul(8).ok_or("count too large")?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut word = [0u8; 8];
                word.copy_from_slice(c);
                u64::from_le_bytes(word)
            })
            .collect())
    }

    /// `n` little-endian `u32`s, parsed in one pass over one slice.
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("count too large")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| {
                let mut word = [0u8; 4];
                word.copy_from_slice(c);
                u32::from_le_bytes(word)
            })
            .collect())
    }

    fn u32_raw(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| "u32")?))
    }

    fn u32(&mut self) -> Result<usize, String> {
        self.u32_raw().map(|n| n as usize)
    }
}

/// Writes the snapshot atomically: a temporary file, renamed over the old one, and the folder
/// synced so the new name is durable. The data itself is not synced: a snapshot torn by a power
/// cut fails its checksum and is rebuilt.
///
/// The snapshot is synced before it replaces the old one only when `durable` (a backup's must
/// survive a power cut; the store's own is rebuilt if lost).
pub(crate) fn save_as(
    vfs: &dyn Vfs,
    layout: &Layout,
    index: &Index,
    durable: bool,
) -> Result<(), Error> {
    save_encoded(vfs, layout, &encode(index), durable)
}

/// [`save_as`] of a snapshot already encoded, so the caller need not hold the index's lock
/// while it is written.
pub(crate) fn save_encoded(
    vfs: &dyn Vfs,
    layout: &Layout,
    bytes: &[u8],
    durable: bool,
) -> Result<(), Error> {
    let folder = layout.index_dir();
    if !crate::vfs::exists(vfs, &folder) {
        vfs.create_dir_all(&folder)
            .map_err(|e| Error::io("create", &folder, e))?;
        vfs.sync_dir(layout.dir())
            .map_err(|e| Error::io("sync", layout.dir(), e))?;
    }
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = folder.join(format!(
        "{SNAPSHOT_FILE}.{}-{unique}.tmp",
        std::process::id()
    ));
    let target = layout.snapshot();
    let result = vfs
        .open(&tmp, OpenMode::CreateNew)
        .and_then(|file| {
            file.write_all_at(bytes, 0)?;
            if durable { file.sync_all() } else { Ok(()) }
        })
        .map_err(|e| Error::io("write", &tmp, e))
        .and_then(|()| {
            vfs.rename(&tmp, &target)
                .map_err(|e| Error::io("replace", &target, e))
        })
        .and_then(|()| {
            vfs.sync_dir(&folder)
                .map_err(|e| Error::io("sync", &folder, e))
        });
    if result.is_err() {
        let _ = vfs.remove_file(&tmp);
    }
    result
}

/// Why no usable snapshot was loaded.
#[derive(Debug)]
pub(crate) enum Unusable {
    Missing,
    Rejected(String),
}

/// Loads the snapshot of `dir` and checks it against the log: the segments it names must exist
/// and be at least as long as it says, and its last event must be in the log with the same hash.
pub(crate) fn load(vfs: &dyn Vfs, layout: &Layout) -> Result<Result<Index, Unusable>, Error> {
    let file = layout.snapshot();
    let bytes = match crate::vfs::read_all(vfs, &file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(Unusable::Missing)),
        Err(e) => return Err(Error::io("read", &file, e)),
    };
    let (mut index, saved) = match decode(&bytes) {
        Ok(v) => v,
        Err(reason) => return Ok(Err(Unusable::Rejected(reason))),
    };
    for s in &saved {
        let seg_path = layout.segment(s.first);
        let file = match vfs.open(&seg_path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Err(Unusable::Rejected(format!(
                    "segment {} is gone",
                    seg_path.display()
                ))));
            }
            Err(e) => return Err(Error::io("open", &seg_path, e)),
        };
        let len = file.len().map_err(|e| Error::io("inspect", &seg_path, e))?;
        if len < s.end {
            return Ok(Err(Unusable::Rejected(format!(
                "segment {} is shorter than indexed",
                seg_path.display()
            ))));
        }
        index.segments.push(Segment {
            first: s.first,
            end: s.end,
            path: seg_path,
            file,
        });
    }
    if let Some(reason) = mismatch_with_log(&index) {
        return Ok(Err(Unusable::Rejected(reason)));
    }
    index.tail_unchecked = true;
    Ok(Ok(index))
}

/// Checks that the snapshot's structure is sane and its last event is the one in the log.
fn mismatch_with_log(index: &Index) -> Option<String> {
    let head = index.head();
    let contiguous = index.segments.first().is_none_or(|s| s.first == 1)
        && index.segments.windows(2).all(|w| w[0].first < w[1].first)
        && index.segments.last().is_none_or(|s| s.first <= head.max(1));
    if !contiguous {
        return Some("segment table is inconsistent".into());
    }
    if head == 0 {
        return None;
    }
    let unreadable = || Some("last indexed event cannot be read".to_owned());
    let Some((seg, start, end)) = index.locate(head) else {
        return unreadable();
    };
    let Some(len) = end.checked_sub(start).and_then(|l| usize::try_from(l).ok()) else {
        return unreadable();
    };
    let mut line = vec![0u8; len];
    if index.segments[seg]
        .file
        .read_exact_at(&mut line, start)
        .is_err()
    {
        return unreadable();
    }
    let Some(line) = line.strip_suffix(b"\n") else {
        return unreadable();
    };
    match crate::record::split_hash(line) {
        Ok((_, hash)) if hash == index.head_hash => {}
        _ => return Some(format!("event {head} in the log differs from the snapshot")),
    }
    match crate::record::decode_header(line) {
        Ok(h) if h.position == head && h.batch_last == head => None,
        _ => Some(format!("event {head} in the log differs from the snapshot")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{IndexEntry, tag_key};

    fn small_index() -> Index {
        let mut index = Index::default();
        let shared_tag = [tag_key("course", "c-1")];
        let both = [tag_key("course", "c-1"), tag_key("student", "s-1")];
        for (position, event_type, keys) in [
            (1, "CourseCreated", &shared_tag[..]),
            (2, "StudentEnrolled", &both[..]),
        ] {
            index.push(&IndexEntry {
                position,
                offset: (position - 1) * 300,
                event_type,
                tag_keys: keys,
                hash: ChainHash([position as u8; 32]),
            });
        }
        index
    }

    fn hex_dump(bytes: &[u8]) -> String {
        bytes
            .chunks(16)
            .map(|row| {
                row.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_snapshot_layout_is_what_the_format_document_says() {
        let mut index = small_index();
        // One tag map entry per line would make the dump depend on hash-map order; keep one tag.
        index.tags.retain(|k, _| *k == tag_key("course", "c-1"));
        insta::assert_snapshot!(hex_dump(&encode(&index)));
    }

    #[test]
    fn snapshots_round_trip() {
        let index = small_index();
        let (decoded, segments) = decode(&encode(&index)).unwrap();
        assert!(segments.is_empty());
        assert_eq!(decoded.offsets, index.offsets);
        assert_eq!(decoded.type_of, index.type_of);
        assert_eq!(decoded.type_names, index.type_names);
        assert_eq!(decoded.tags, index.tags);
        assert_eq!(decoded.head_hash, index.head_hash);
    }

    #[test]
    fn damaged_snapshots_are_rejected() {
        let bytes = encode(&small_index());
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(decode(&flipped).is_err());
        let mut other_version = bytes;
        other_version[15] = 2;
        assert!(decode(&other_version).is_err());
    }
}
