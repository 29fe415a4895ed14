//! `head.json`: the commit anchor, naming the last committed position and its hash.
//!
//! The appender rewrites it after each group commit, once the events are written (and synced).
//! Readers in other processes read it to learn how far the log is committed, so they never see
//! a half-finished append; recovery takes a synced anchor as proof that its events were durable;
//! and an anchor may carry a *void*: the first position of an append that failed and could not
//! be undone, which recovery then cuts instead of adopting.
//!
//! The file holds two slots of [`SLOT_LEN`] bytes. Each slot is one line of JSON, padded with
//! spaces, with a sequence number and an XXH3 checksum over the rest of the line. A writer
//! always overwrites the slot that does *not* hold the newest anchor, and a reader takes the
//! valid slot with the highest sequence number. A torn or short write therefore damages only
//! the slot being written, which fails its checksum and is ignored: the other slot still holds
//! the previous anchor, and when neither is valid the log alone is the truth. Nothing a reader
//! can see half-done is ever taken for an anchor.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::Error;
use crate::record::ChainHash;
use crate::vfs::{OpenMode, Vfs, VfsFile};

/// The size of one anchor slot in bytes.
pub(crate) const SLOT_LEN: usize = 512;
/// The anchor file's size in bytes: two slots.
pub(crate) const HEAD_LEN: usize = 2 * SLOT_LEN;
/// The size of a format-1 anchor (one unchecked record).
const LEGACY_LEN: usize = 128;
/// The checksum field that closes every slot: `,"check":"` + 16 hex digits + `"}`.
const CHECK_FIELD: &str = ",\"check\":\"";
const CHECK_SUFFIX_LEN: usize = CHECK_FIELD.len() + 16 + 2;

/// What the anchor records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// The last committed position (0 for an empty store).
    pub(crate) position: u64,
    pub(crate) hash: ChainHash,
    /// Whether that commit was synced to stable storage before the anchor was written. Only a
    /// synced anchor proves that its events must be in the log.
    pub(crate) synced: bool,
    /// An append that failed after some of its bytes reached the log and that could not be cut
    /// back: recovery removes it instead of adopting it.
    pub(crate) void: Option<Void>,
}

/// The first event of a failed append: its position and chain hash. Only a line with exactly
/// that position and hash is void, so a later append that reuses the position is never hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Void {
    pub(crate) position: u64,
    pub(crate) hash: ChainHash,
}

/// What reading the anchor found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnchorState {
    Valid(Anchor),
    /// No anchor file, or an empty one: a store created before its first commit, or one whose
    /// anchor was deleted.
    Missing,
    /// The file exists but no slot holds a valid anchor (for example a torn write of the only
    /// slot ever written).
    Unreadable,
}

/// The anchor as read, with what a writer needs to write the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadRead {
    pub(crate) state: AnchorState,
    /// The anchor came from a format-1 file, whose single record has no checksum: its position
    /// is trusted (a torn write cannot raise it past the synced log) but not its hash.
    pub(crate) legacy: bool,
    /// The highest sequence number of a valid slot (0 when none).
    seq: u64,
    /// The slot holding the newest anchor.
    newest_slot: Option<usize>,
}

impl HeadRead {
    /// The valid anchor, if any.
    pub(crate) fn anchor(&self) -> Option<Anchor> {
        match self.state {
            AnchorState::Valid(a) => Some(a),
            AnchorState::Missing | AnchorState::Unreadable => None,
        }
    }

    /// What a writer assumes when it has no fresh read: no valid slot, so it writes slot 0.
    pub(crate) fn missing() -> HeadRead {
        HeadRead::MISSING
    }

    const MISSING: HeadRead = HeadRead {
        state: AnchorState::Missing,
        legacy: false,
        seq: 0,
        newest_slot: None,
    };
}

/// Encodes one slot with sequence number `seq`.
pub(crate) fn encode_slot(seq: u64, anchor: Anchor) -> [u8; SLOT_LEN] {
    let void = match anchor.void {
        None => "null".to_owned(),
        Some(v) => format!(
            "{{\"position\":{},\"hash\":\"{}\"}}",
            v.position,
            v.hash.to_hex()
        ),
    };
    let body = format!(
        "{{\"seq\":{seq},\"position\":{},\"hash\":\"{}\",\"synced\":{},\"void\":{void}",
        anchor.position,
        anchor.hash.to_hex(),
        anchor.synced,
    );
    let check = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
    let line = format!("{body}{CHECK_FIELD}{check:016x}\"}}");
    let mut out = [b' '; SLOT_LEN];
    // The longest possible line (20-digit numbers, a void) is well under a slot.
    let len = line.len().min(SLOT_LEN - 1);
    out[..len].copy_from_slice(&line.as_bytes()[..len]);
    out[SLOT_LEN - 1] = b'\n';
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotJson {
    seq: u64,
    position: u64,
    hash: String,
    synced: bool,
    void: Option<VoidJson>,
    #[allow(dead_code)] // checked on the raw bytes before parsing
    check: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoidJson {
    position: u64,
    hash: String,
}

/// Decodes one slot: its sequence number and anchor, or `None` when the slot does not hold a
/// whole, checksum-valid record.
pub(crate) fn decode_slot(bytes: &[u8]) -> Option<(u64, Anchor)> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end();
    let body_len = text.len().checked_sub(CHECK_SUFFIX_LEN)?;
    let (body, suffix) = text.split_at(body_len);
    let hex = suffix.strip_prefix(CHECK_FIELD)?.strip_suffix("\"}")?;
    let stored = u64::from_str_radix(hex, 16).ok()?;
    if hex.len() != 16 || xxhash_rust::xxh3::xxh3_64(body.as_bytes()) != stored {
        return None;
    }
    let json: SlotJson = serde_json::from_str(text).ok()?;
    let void = match json.void {
        None => None,
        Some(v) => Some(Void {
            position: v.position,
            hash: ChainHash::from_hex(v.hash.as_bytes())?,
        }),
    };
    Some((
        json.seq,
        Anchor {
            position: json.position,
            hash: ChainHash::from_hex(json.hash.as_bytes())?,
            synced: json.synced,
            void,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyJson {
    position: u64,
    hash: String,
    synced: bool,
}

/// Decodes a format-1 anchor: one 128-byte JSON record without a checksum.
fn decode_legacy(bytes: &[u8]) -> Option<Anchor> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let json: LegacyJson = serde_json::from_str(text).ok()?;
    Some(Anchor {
        position: json.position,
        hash: ChainHash::from_hex(json.hash.as_bytes())?,
        synced: json.synced,
        void: None,
    })
}

/// Decodes the whole anchor file.
pub(crate) fn decode(bytes: &[u8]) -> HeadRead {
    if bytes.is_empty() {
        return HeadRead::MISSING;
    }
    if bytes.len() == LEGACY_LEN {
        if let Some(anchor) = decode_legacy(bytes) {
            return HeadRead {
                state: AnchorState::Valid(anchor),
                legacy: true,
                seq: 0,
                newest_slot: None,
            };
        }
    }
    let mut best: Option<(usize, u64, Anchor)> = None;
    for (slot, chunk) in bytes.chunks(SLOT_LEN).take(2).enumerate() {
        if let Some((seq, anchor)) = decode_slot(chunk) {
            if best.is_none_or(|(_, s, _)| seq > s) {
                best = Some((slot, seq, anchor));
            }
        }
    }
    match best {
        Some((slot, seq, anchor)) => HeadRead {
            state: AnchorState::Valid(anchor),
            legacy: false,
            seq,
            newest_slot: Some(slot),
        },
        None => HeadRead {
            state: AnchorState::Unreadable,
            legacy: false,
            seq: 0,
            newest_slot: None,
        },
    }
}

/// The anchor file, open for reading (and writing, in a writable store).
#[derive(Debug)]
pub(crate) struct HeadFile {
    path: PathBuf,
    /// The open file; in a writable store whose anchor does not exist yet, set when the first
    /// anchor is written (so an open that refuses the store creates nothing).
    file: OnceLock<Arc<dyn VfsFile>>,
    /// The file system, to create the file on the first write; `None` when read-only.
    creator: Option<Arc<dyn Vfs>>,
}

impl HeadFile {
    /// Opens the anchor at `path`, read-write when `writable`. A missing anchor is not created
    /// here: the first [`HeadFile::write`] creates it and makes its name durable.
    pub(crate) fn open(
        vfs: &Arc<dyn Vfs>,
        path: PathBuf,
        writable: bool,
    ) -> Result<HeadFile, Error> {
        let file = OnceLock::new();
        let existing = if writable {
            match vfs.metadata(&path) {
                Ok(_) => Some(vfs.open(&path, OpenMode::ReadWrite)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => Some(Err(e)),
            }
        } else {
            Some(vfs.open(&path, OpenMode::Read))
        };
        match existing {
            Some(Ok(f)) => {
                let _ = file.set(f);
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Some(Err(e)) => return Err(Error::io("open", path, e)),
            None => {}
        }
        Ok(HeadFile {
            path,
            file,
            creator: writable.then(|| Arc::clone(vfs)),
        })
    }

    /// The open file; when it was missing at open, opened now if another process has created
    /// it since (so this process's readers see that process's commits).
    fn existing_file(&self) -> Result<Option<&Arc<dyn VfsFile>>, Error> {
        if let Some(file) = self.file.get() {
            return Ok(Some(file));
        }
        let Some(vfs) = &self.creator else {
            return Ok(None);
        };
        match vfs.metadata(&self.path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("inspect", &self.path, e)),
        }
        let opened = vfs
            .open(&self.path, OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", &self.path, e))?;
        Ok(Some(self.file.get_or_init(|| opened)))
    }

    /// The open file, creating it (and syncing its folder, so the name survives a power cut)
    /// when the store is writable and it does not exist yet.
    fn writable_file(&self) -> Result<&Arc<dyn VfsFile>, Error> {
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        let Some(vfs) = &self.creator else {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        };
        let created = vfs
            .open(&self.path, OpenMode::ReadWrite)
            .map_err(|e| Error::io("create", &self.path, e))?;
        if let Some(dir) = self.path.parent() {
            vfs.sync_dir(dir).map_err(|e| Error::io("sync", dir, e))?;
        }
        Ok(self.file.get_or_init(|| created))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the anchor.
    pub(crate) fn read(&self) -> Result<HeadRead, Error> {
        let Some(file) = self.existing_file()? else {
            return Ok(HeadRead::MISSING);
        };
        // Nearly always the file holds both slots: one read, no stat.
        let mut buf = vec![0u8; HEAD_LEN];
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => return Ok(decode(&buf)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(Error::io("read", &self.path, e)),
        }
        // Shorter: one slot written so far, a format-1 anchor, or an empty file.
        let len = file
            .len()
            .map_err(|e| Error::io("inspect", &self.path, e))?;
        buf.truncate(usize::try_from(len).unwrap_or(HEAD_LEN).min(HEAD_LEN));
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => Ok(decode(&buf)),
            // Cut short by a concurrent truncation (a store being deleted): nothing to trust.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(HeadRead {
                state: AnchorState::Unreadable,
                ..HeadRead::MISSING
            }),
            Err(e) => Err(Error::io("read", &self.path, e)),
        }
    }

    /// Writes `anchor` into the slot that does not hold the newest anchor of `seen` (what the
    /// caller read under the lock), syncing the file when `sync`. Returns what a reader now
    /// finds.
    pub(crate) fn write(
        &self,
        anchor: Anchor,
        seen: &HeadRead,
        sync: bool,
    ) -> Result<HeadRead, Error> {
        let file = self.writable_file()?;
        let slot = match seen.newest_slot {
            Some(0) => 1,
            _ => 0,
        };
        let seq = seen.seq + 1;
        let bytes = encode_slot(seq, anchor);
        file.write_all_at(&bytes, (slot * SLOT_LEN) as u64)
            .map_err(|e| Error::io("write", &self.path, e))?;
        if sync {
            file.sync_data()
                .map_err(|e| Error::io("sync", &self.path, e))?;
        }
        Ok(HeadRead {
            state: AnchorState::Valid(anchor),
            legacy: false,
            seq,
            newest_slot: Some(slot),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(position: u64) -> Anchor {
        Anchor {
            position,
            hash: ChainHash::chain(ChainHash::GENESIS, &position.to_le_bytes()),
            synced: true,
            void: None,
        }
    }

    #[test]
    fn slots_round_trip_at_a_fixed_size() {
        let mut a = anchor(u64::MAX);
        a.synced = false;
        a.void = Some(Void {
            position: u64::MAX,
            hash: ChainHash::chain(ChainHash::GENESIS, b"v"),
        });
        let bytes = encode_slot(u64::MAX, a);
        assert_eq!(bytes.len(), SLOT_LEN);
        assert_eq!(decode_slot(&bytes), Some((u64::MAX, a)));
        let empty = Anchor {
            position: 0,
            hash: ChainHash::GENESIS,
            synced: true,
            void: None,
        };
        assert_eq!(decode_slot(&encode_slot(1, empty)), Some((1, empty)));
    }

    #[test]
    fn the_anchor_file_is_readable_json() {
        let mut file = encode_slot(7, anchor(42)).to_vec();
        let mut voided = anchor(41);
        voided.void = Some(Void {
            position: 42,
            hash: ChainHash::GENESIS,
        });
        file.extend_from_slice(&encode_slot(6, voided));
        let text = String::from_utf8(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let mut file = encode_slot(3, anchor(3)).to_vec();
        file.extend_from_slice(&encode_slot(4, anchor(4)));
        let read = decode(&file);
        assert_eq!(read.anchor(), Some(anchor(4)));
        assert_eq!((read.seq, read.newest_slot), (4, Some(1)));
    }

    #[test]
    fn a_torn_slot_is_ignored_and_the_other_slot_used() {
        let old = encode_slot(3, anchor(3));
        let new = encode_slot(4, anchor(4));
        // Every way of tearing the write of slot 1 over an older record: some new bytes then old.
        let older = encode_slot(2, anchor(2));
        for cut in 1..SLOT_LEN {
            let mut torn = new[..cut].to_vec();
            torn.extend_from_slice(&older[cut..]);
            let mut file = old.to_vec();
            file.extend_from_slice(&torn);
            let read = decode(&file);
            let found = read.anchor().map(|a| a.position);
            // Past the record's text only padding differs, so the new record is already whole.
            assert!(
                found == Some(3) || found == Some(4),
                "cut at {cut}: {found:?}"
            );
            if found == Some(4) {
                assert_eq!(read.anchor(), Some(anchor(4)), "cut at {cut}");
            }
        }
        // Both slots torn: nothing is trusted.
        let mut garbage = vec![b'x'; HEAD_LEN];
        garbage[..40].copy_from_slice(&new[..40]);
        assert_eq!(decode(&garbage).state, AnchorState::Unreadable);
        // A short file holding half a slot.
        assert_eq!(decode(&new[..100]).state, AnchorState::Unreadable);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let bytes = encode_slot(9, anchor(9));
        for i in 0..bytes.iter().position(|b| *b == b' ').unwrap_or(0) {
            let mut flipped = bytes;
            flipped[i] ^= 0x01;
            assert_eq!(decode_slot(&flipped).map(|(s, _)| s), None, "byte {i}");
        }
    }

    #[test]
    fn format_1_anchors_are_read_as_legacy() {
        let legacy = format!(
            "{:<127}\n",
            format!(
                "{{\"position\":42,\"hash\":\"{}\",\"synced\":true}}",
                anchor(42).hash.to_hex()
            )
        );
        let read = decode(legacy.as_bytes());
        assert!(read.legacy);
        assert_eq!(read.anchor(), Some(anchor(42)));
        assert_eq!(decode(&[0u8; LEGACY_LEN]).state, AnchorState::Unreadable);
        assert_eq!(decode(b"").state, AnchorState::Missing);
    }
}
