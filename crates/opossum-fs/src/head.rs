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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// The store identity the newest slot records.
    pub(crate) store: Option<StoreId>,
    /// The newest slot marks the store as deleted.
    pub(crate) deleted: bool,
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
        store: None,
        deleted: false,
    };
}

/// Encodes one slot with sequence number `seq`, for the store `store` (see [`StoreId`]).
pub(crate) fn encode_slot(seq: u64, store: StoreId, anchor: Anchor) -> [u8; SLOT_LEN] {
    encode(seq, store, anchor, false)
}

/// Encodes the slot that marks a deleted store.
pub(crate) fn encode_tombstone(seq: u64, store: StoreId) -> [u8; SLOT_LEN] {
    let empty = Anchor {
        position: 0,
        hash: ChainHash::GENESIS,
        synced: true,
        void: None,
    };
    encode(seq, store, empty, true)
}

fn encode(seq: u64, store: StoreId, anchor: Anchor, deleted: bool) -> [u8; SLOT_LEN] {
    let void = match anchor.void {
        None => "null".to_owned(),
        Some(v) => format!(
            "{{\"position\":{},\"hash\":\"{}\"}}",
            v.position,
            v.hash.to_hex()
        ),
    };
    let body = format!(
        "{{\"seq\":{seq},\"store\":\"{}\",\"position\":{},\"hash\":\"{}\",\"synced\":{},\"void\":{void}{}",
        store.to_hex(),
        anchor.position,
        anchor.hash.to_hex(),
        anchor.synced,
        if deleted { ",\"deleted\":true" } else { "" },
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
    /// Absent in slots written before store identities were recorded.
    #[serde(default)]
    store: Option<String>,
    position: u64,
    hash: String,
    synced: bool,
    void: Option<VoidJson>,
    #[serde(default)]
    deleted: bool,
    #[allow(dead_code)] // checked on the raw bytes before parsing
    check: String,
}

/// One slot as decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) seq: u64,
    pub(crate) store: Option<StoreId>,
    pub(crate) anchor: Anchor,
    pub(crate) deleted: bool,
}

/// A store's identity: 128 random bits chosen by the first anchor write, kept by every later
/// one, and ended by `delete`. A handle that finds another identity (or none, or a deleted
/// store) under its path knows the store it opened is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreId(pub(crate) u128);

impl StoreId {
    /// A new identity, from the clock, the process and a counter.
    pub(crate) fn generate() -> StoreId {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!(
            "store:{nanos}:{}:{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        StoreId(xxhash_rust::xxh3::xxh3_128(seed.as_bytes()))
    }

    pub(crate) fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    fn from_hex(hex: &str) -> Option<StoreId> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(StoreId)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoidJson {
    position: u64,
    hash: String,
}

/// Decodes one slot, or `None` when the slot does not hold a whole, checksum-valid record.
pub(crate) fn decode_slot(bytes: &[u8]) -> Option<Slot> {
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
    let store = match json.store {
        None => None,
        Some(hex) => Some(StoreId::from_hex(&hex)?),
    };
    Some(Slot {
        seq: json.seq,
        store,
        anchor: Anchor {
            position: json.position,
            hash: ChainHash::from_hex(json.hash.as_bytes())?,
            synced: json.synced,
            void,
        },
        deleted: json.deleted,
    })
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
                ..HeadRead::MISSING
            };
        }
    }
    let mut best: Option<(usize, Slot)> = None;
    for (index, chunk) in bytes.chunks(SLOT_LEN).take(2).enumerate() {
        if let Some(slot) = decode_slot(chunk) {
            if best.is_none_or(|(_, b)| slot.seq > b.seq) {
                best = Some((index, slot));
            }
        }
    }
    match best {
        Some((index, slot)) => HeadRead {
            state: AnchorState::Valid(slot.anchor),
            legacy: false,
            seq: slot.seq,
            newest_slot: Some(index),
            store: slot.store,
            deleted: slot.deleted,
        },
        None => HeadRead {
            state: AnchorState::Unreadable,
            ..HeadRead::MISSING
        },
    }
}

/// How long a reader trusts its open handle of the anchor on a file system whose clients may
/// cache: after this, the next read re-opens the file by path (close-to-open revalidation).
const REVALIDATE_EVERY: Duration = Duration::from_millis(100);

/// The anchor file, open for reading (and writing, in a writable store).
#[derive(Debug)]
pub(crate) struct HeadFile {
    path: PathBuf,
    vfs: Arc<dyn Vfs>,
    writable: bool,
    /// Whether a read must re-open the file to see other clients' writes (network shares and
    /// FUSE mounts: a long-open handle may be served from this client's cache).
    revalidate: bool,
    state: Mutex<HeadState>,
}

#[derive(Debug, Default)]
struct HeadState {
    /// The open file; `None` while no anchor has been written. In a writable store the first
    /// write creates it (so an open that refuses the store creates nothing).
    file: Option<Arc<dyn VfsFile>>,
    opened: Option<Instant>,
    /// The store identity this handle works on: adopted from the first anchor that records
    /// one, or chosen by this handle's first write.
    store: Option<StoreId>,
    /// The file existed for this handle at some point: its disappearance means deletion.
    existed: bool,
}

impl HeadFile {
    /// Opens the anchor at `path`, read-write when `writable`. A missing anchor is not created
    /// here: the first [`HeadFile::write`] creates it and makes its name durable.
    pub(crate) fn open(
        vfs: &Arc<dyn Vfs>,
        path: PathBuf,
        writable: bool,
        revalidate: bool,
    ) -> Result<HeadFile, Error> {
        let head = HeadFile {
            path,
            vfs: Arc::clone(vfs),
            writable,
            revalidate,
            state: Mutex::new(HeadState::default()),
        };
        {
            let mut state = head.state();
            head.reopen(&mut state)?;
        }
        Ok(head)
    }

    fn state(&self) -> MutexGuard<'_, HeadState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mode(&self) -> OpenMode {
        if self.writable {
            OpenMode::ReadWriteExisting
        } else {
            OpenMode::Read
        }
    }

    /// Opens the file by path again, so what is read next comes from the file system's truth
    /// rather than this client's cache, and a file deleted or replaced is noticed.
    fn reopen(&self, state: &mut HeadState) -> Result<(), Error> {
        match self.vfs.open(&self.path, self.mode()) {
            Ok(file) => {
                state.file = Some(file);
                state.opened = Some(Instant::now());
                state.existed = true;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if state.existed || state.store.is_some() {
                    return Err(self.deleted("head.json is gone"));
                }
                state.file = None;
                Ok(())
            }
            Err(e) => Err(Error::io("open", &self.path, e)),
        }
    }

    fn deleted(&self, detail: &str) -> Error {
        Error::store_deleted(&self.path, detail)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether reads under the lock re-open the file (see [`HeadFile::read_fresh`]).
    pub(crate) fn revalidates(&self) -> bool {
        self.revalidate
    }

    /// Reads the anchor, for a reader: through the open handle, re-opened by path first when
    /// the file system needs revalidation and the handle is older than [`REVALIDATE_EVERY`].
    pub(crate) fn read(&self) -> Result<HeadRead, Error> {
        let mut state = self.state();
        let stale = state.file.is_none()
            || (self.revalidate && state.opened.is_none_or(|t| t.elapsed() >= REVALIDATE_EVERY));
        if stale {
            self.reopen(&mut state)?;
        }
        self.read_locked(&mut state)
    }

    /// Reads the anchor as the file system holds it now: re-opened by path. Writers call this
    /// under the store lock, and nothing read before the lock is trusted.
    pub(crate) fn read_fresh(&self) -> Result<HeadRead, Error> {
        let mut state = self.state();
        self.reopen(&mut state)?;
        if self.revalidate && self.writable {
            // A client may still report the length the file had when it last looked (0 right
            // after another client created it): ask the server, or the slots read short.
            if let Some(file) = &state.file {
                file.refresh()
                    .map_err(|e| Error::io("inspect", &self.path, e))?;
            }
        }
        self.read_locked(&mut state)
    }

    fn read_locked(&self, state: &mut HeadState) -> Result<HeadRead, Error> {
        let Some(file) = state.file.clone() else {
            if !crate::vfs::exists(&*self.vfs, self.path.parent().unwrap_or(&self.path)) {
                return Err(self.deleted("its folder is gone"));
            }
            return Ok(HeadRead::MISSING);
        };
        let read = read_file(&*file, &self.path)?;
        if read.deleted {
            return Err(self.deleted("it was deleted"));
        }
        if let Some(found) = read.store {
            match state.store {
                Some(known) if known != found => {
                    return Err(self.deleted("another store now lives in its folder"));
                }
                _ => state.store = Some(found),
            }
        }
        Ok(read)
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
        let mut state = self.state();
        let file = self.writable_file(&mut state)?;
        let store = *state.store.get_or_insert_with(StoreId::generate);
        let slot = match seen.newest_slot {
            Some(0) => 1,
            _ => 0,
        };
        let seq = seen.seq + 1;
        let bytes = encode_slot(seq, store, anchor);
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
            store: Some(store),
            deleted: false,
        })
    }

    /// Marks the store deleted in both slots, synced: every handle that still has the file
    /// open, in any process, finds the mark at its next read.
    pub(crate) fn write_tombstone(&self, seen: &HeadRead) -> Result<(), Error> {
        // Through the handle this store has open, even when the name is gone: other handles
        // may have the same file open.
        let mut state = self.state();
        let Some(file) = state.file.clone() else {
            return Ok(());
        };
        let store = *state.store.get_or_insert_with(StoreId::generate);
        let mut bytes = encode_tombstone(seen.seq + 1, store).to_vec();
        bytes.extend_from_slice(&encode_tombstone(seen.seq + 2, store));
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io("write", &self.path, e))
    }

    /// The open file, creating it (and syncing its folder, so the name survives a power cut)
    /// when the store is writable and it does not exist yet.
    fn writable_file(&self, state: &mut HeadState) -> Result<Arc<dyn VfsFile>, Error> {
        if let Some(file) = &state.file {
            return Ok(Arc::clone(file));
        }
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        // Exclusive: if the file exists after all, another writer's anchor is in it, and this
        // writer's view (read under the lock) was not the file system's truth.
        let created = self
            .vfs
            .open(&self.path, OpenMode::CreateNew)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => self.deleted("its folder is gone"),
                io::ErrorKind::AlreadyExists => Error::LockNotHonoured {
                    path: self
                        .path
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default(),
                    detail: "head.json was created by another writer although this one, holding \
                             the lock, found none"
                        .to_owned(),
                },
                _ => Error::io("create", &self.path, e),
            })?;
        if let Some(dir) = self.path.parent() {
            self.vfs
                .sync_dir(dir)
                .map_err(|e| Error::io("sync", dir, e))?;
        }
        state.file = Some(Arc::clone(&created));
        state.opened = Some(Instant::now());
        state.existed = true;
        Ok(created)
    }
}

/// Reads and decodes the anchor file through `file`.
fn read_file(file: &dyn VfsFile, path: &Path) -> Result<HeadRead, Error> {
    // Nearly always the file holds both slots: one read, no stat.
    let mut buf = vec![0u8; HEAD_LEN];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => return Ok(decode(&buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(Error::io("read", path, e)),
    }
    // Shorter: one slot written so far, a format-1 anchor, or an empty file.
    let len = file.len().map_err(|e| Error::io("inspect", path, e))?;
    buf.truncate(usize::try_from(len).unwrap_or(HEAD_LEN).min(HEAD_LEN));
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(decode(&buf)),
        // Cut short by a concurrent truncation: nothing to trust.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(HeadRead {
            state: AnchorState::Unreadable,
            ..HeadRead::MISSING
        }),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: StoreId = StoreId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

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
        let bytes = encode_slot(u64::MAX, ID, a);
        assert_eq!(bytes.len(), SLOT_LEN);
        assert_eq!(
            decode_slot(&bytes),
            Some(Slot {
                seq: u64::MAX,
                store: Some(ID),
                anchor: a,
                deleted: false
            })
        );
        let empty = Anchor {
            position: 0,
            hash: ChainHash::GENESIS,
            synced: true,
            void: None,
        };
        assert_eq!(
            decode_slot(&encode_slot(1, ID, empty)).map(|s| s.anchor),
            Some(empty)
        );
        let tomb = decode_slot(&encode_tombstone(2, ID)).unwrap();
        assert!(tomb.deleted);
        assert_eq!(tomb.store, Some(ID));
    }

    #[test]
    fn the_anchor_file_is_readable_json() {
        let mut file = encode_slot(7, ID, anchor(42)).to_vec();
        let mut voided = anchor(41);
        voided.void = Some(Void {
            position: 42,
            hash: ChainHash::GENESIS,
        });
        file.extend_from_slice(&encode_slot(6, ID, voided));
        let text = String::from_utf8(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let mut file = encode_slot(3, ID, anchor(3)).to_vec();
        file.extend_from_slice(&encode_slot(4, ID, anchor(4)));
        let read = decode(&file);
        assert_eq!(read.anchor(), Some(anchor(4)));
        assert_eq!((read.seq, read.newest_slot), (4, Some(1)));
    }

    #[test]
    fn a_torn_slot_is_ignored_and_the_other_slot_used() {
        let old = encode_slot(3, ID, anchor(3));
        let new = encode_slot(4, ID, anchor(4));
        // Every way of tearing the write of slot 1 over an older record: some new bytes then old.
        let older = encode_slot(2, ID, anchor(2));
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
        let bytes = encode_slot(9, ID, anchor(9));
        for i in 0..bytes.iter().position(|b| *b == b' ').unwrap_or(0) {
            let mut flipped = bytes;
            flipped[i] ^= 0x01;
            assert_eq!(decode_slot(&flipped).map(|s| s.seq), None, "byte {i}");
        }
    }

    #[test]
    fn slots_without_a_store_identity_are_read() {
        // Written by format 2 before identities were recorded.
        let body = format!(
            "{{\"seq\":5,\"position\":42,\"hash\":\"{}\",\"synced\":true,\"void\":null",
            anchor(42).hash.to_hex()
        );
        let check = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        let line = format!("{body}{CHECK_FIELD}{check:016x}\"}}");
        let slot = decode_slot(line.as_bytes()).unwrap();
        assert_eq!((slot.seq, slot.store, slot.anchor), (5, None, anchor(42)));
    }

    #[test]
    fn store_identities_are_distinct_and_round_trip() {
        let a = StoreId::generate();
        let b = StoreId::generate();
        assert_ne!(a, b);
        assert_eq!(StoreId::from_hex(&a.to_hex()), Some(a));
        assert_eq!(StoreId::from_hex("xyz"), None);
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
