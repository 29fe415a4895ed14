//! [`FileEventStore::backup`](crate::FileEventStore::backup): a consistent copy of a store
//! while writers go on.
//!
//! Segment files only ever grow, and the bytes of committed events never change: recovery cuts
//! only what follows the last commit. So a copy of each segment up to the end of what was
//! committed when the backup started, plus an anchor naming that commit, is a store in its own
//! right, however many appends run meanwhile. No lock is taken.

use std::io;
use std::path::{Path, PathBuf};

use opossum_core::Position;

use crate::Error;
use crate::engine::Engine;
use crate::head::{Anchor, HeadFile, HeadRead};
use crate::layout::{self, Layout};
use crate::vfs::{OpenMode, Vfs};

/// Bytes copied per read.
const CHUNK: u64 = 1 << 20;

/// What [`FileEventStore::backup`](crate::FileEventStore::backup) copied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The new store folder.
    pub path: PathBuf,
    /// How many events it holds.
    pub events: u64,
    /// Its last position (`None` for an empty store).
    pub head: Option<Position>,
    /// The chain hash of that event, in hex, as `verify` reports it.
    pub head_hash: Option<String>,
    /// Bytes of event log copied.
    pub bytes: u64,
}

/// One segment's committed part, as it was when the backup started.
struct Part {
    path: PathBuf,
    name: String,
    len: u64,
}

/// Copies the committed part of `engine`'s store into the new folder `dest`.
pub(crate) fn backup(engine: &Engine, dest: &Path) -> Result<BackupReport, Error> {
    let span = tracing::info_span!("backup", store = %engine.layout.dir().display(), dest = %dest.display());
    let _enter = span.enter();
    engine.refresh()?;
    // What is committed now: the segments' committed lengths and the head, in one look.
    let (parts, anchor) = {
        let index = engine.read_index();
        let parts: Vec<Part> = index
            .segments
            .iter()
            .filter(|s| s.end > 0)
            .map(|s| Part {
                path: s.path.clone(),
                name: layout::segment_file_name(s.first),
                len: s.end,
            })
            .collect();
        let anchor = Anchor {
            position: index.head(),
            hash: index.head_hash,
            synced: true,
            void: None,
        };
        (parts, anchor)
    };
    let vfs = &engine.vfs;
    prepare(&**vfs, dest)?;
    let target = Layout::new(dest.to_path_buf());
    let events_dir = target.events_dir();
    create_dir(&**vfs, &events_dir)?;
    let mut bytes = 0;
    for part in &parts {
        bytes += copy_prefix(&**vfs, &part.path, &events_dir.join(&part.name), part.len)?;
    }
    sync_dir(&**vfs, &events_dir)?;
    copy_recovered(&**vfs, &engine.layout, &target)?;
    {
        // The index as it was copied, so the backup opens without rebuilding it; when appends
        // ran meanwhile the index has moved on, and the backup's first open rebuilds its own.
        let index = engine.read_index();
        if index.head() == anchor.position {
            crate::snapshot::save_as(&**vfs, &target, &index, true)?;
        }
    }
    // A new store: its own identity, its anchor synced.
    let head = HeadFile::open(vfs, target.head(), true, false)?;
    head.write(anchor, &HeadRead::missing(), true)?;
    sync_dir(&**vfs, dest)?;
    if let Some(parent) = dest.parent() {
        sync_dir(&**vfs, parent)?;
    }
    tracing::info!(events = anchor.position, bytes, "backed up store");
    Ok(BackupReport {
        path: dest.to_path_buf(),
        events: anchor.position,
        head: Position::new(anchor.position).ok(),
        head_hash: (anchor.position > 0).then(|| anchor.hash.to_hex()),
        bytes,
    })
}

/// Checks that `dest` does not exist or is an empty folder, and creates it.
fn prepare(vfs: &dyn Vfs, dest: &Path) -> Result<(), Error> {
    let refuse = |reason: &str| Error::BackupDestination {
        path: dest.to_path_buf(),
        reason: reason.to_owned(),
    };
    if !dest.is_absolute() {
        return Err(refuse("it is not an absolute path"));
    }
    match vfs.metadata(dest) {
        Ok(meta) if !meta.is_dir => return Err(refuse("it is a file")),
        Ok(_) => {
            let entries = vfs.list(dest).map_err(|e| Error::io("list", dest, e))?;
            if !entries.is_empty() {
                return Err(refuse("it is a folder that is not empty"));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("inspect", dest, e)),
    }
    create_dir(vfs, dest)
}

/// Creates `dir` (and missing parents), syncing the parent of each folder created.
fn create_dir(vfs: &dyn Vfs, dir: &Path) -> Result<(), Error> {
    let mut missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !crate::vfs::exists(vfs, p))
        .collect();
    missing.reverse();
    vfs.create_dir_all(dir)
        .map_err(|e| Error::io("create", dir, e))?;
    for created in missing {
        if let Some(parent) = created.parent() {
            sync_dir(vfs, parent)?;
        }
    }
    Ok(())
}

fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<(), Error> {
    vfs.sync_dir(dir).map_err(|e| Error::io("sync", dir, e))
}

/// Copies the first `len` bytes of `from` into the new file `to`, synced. Returns `len`.
fn copy_prefix(vfs: &dyn Vfs, from: &Path, to: &Path, len: u64) -> Result<u64, Error> {
    let source = vfs
        .open(from, OpenMode::Read)
        .map_err(|e| Error::io("open", from, e))?;
    let target = vfs
        .open(to, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", to, e))?;
    let mut buf = Vec::new();
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        buf.resize(usize::try_from(n).unwrap_or(0), 0);
        source
            .read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io("read", from, e))?;
        target
            .write_all_at(&buf, offset)
            .map_err(|e| Error::io("write", to, e))?;
        offset += n;
    }
    target.sync_all().map_err(|e| Error::io("sync", to, e))?;
    Ok(len)
}

/// Copies `recovered/` (bytes and anchors that recovery set aside: part of the audit trail).
fn copy_recovered(vfs: &dyn Vfs, from: &Layout, to: &Layout) -> Result<(), Error> {
    let dir = from.recovered_dir();
    let entries = match vfs.list(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let files: Vec<_> = entries.into_iter().filter(|e| !e.is_dir).collect();
    if files.is_empty() {
        return Ok(());
    }
    let target = to.recovered_dir();
    create_dir(vfs, &target)?;
    for entry in files {
        let source = dir.join(&entry.name);
        let len = vfs
            .metadata(&source)
            .map_err(|e| Error::io("inspect", &source, e))?
            .len;
        copy_prefix(vfs, &source, &target.join(&entry.name), len)?;
    }
    sync_dir(vfs, &target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileEventStore;
    use crate::tests::support::{event, open_at, options};
    use crate::vfs::sim::{Cut, SimFs};

    #[test]
    fn a_backup_survives_a_power_cut_right_after_it_returns() {
        let fs = SimFs::new(7);
        let store = open_at(&fs, "/sim/s", options()).unwrap();
        for n in 0..5 {
            store.append_blocking(vec![event(n, 40)], None).unwrap();
        }
        let report = store.backup(Path::new("/sim/copy")).unwrap();
        assert_eq!(
            (report.events, report.head.map(Position::get)),
            (5, Some(5))
        );
        assert!(report.bytes > 0);
        let image = fs.power_cut(Cut::DropUnsynced);
        let copy = open_at(&image, "/sim/copy", options()).unwrap();
        assert!(copy.recovery().is_clean(), "{:?}", copy.recovery());
        assert_eq!(crate::tests::support::read_all(&copy).unwrap().len(), 5);
        assert!(copy.verify().unwrap().is_intact());
    }

    #[test]
    fn a_backup_goes_only_into_a_new_or_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::open(dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full").join("x"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        for bad in [
            dir.path().join("file"),
            dir.path().join("full"),
            PathBuf::from("relative"),
        ] {
            let error = store.backup(&bad).unwrap_err();
            assert!(
                matches!(&error, Error::BackupDestination { path, .. } if *path == bad),
                "{error:?}"
            );
        }
        let empty = store.backup(&dir.path().join("empty")).unwrap();
        assert_eq!(empty.events, 0);
        assert_eq!(empty.head_hash, None);
        let copy = FileEventStore::open(dir.path().join("empty")).unwrap();
        assert!(copy.recovery().is_clean());
    }

    #[test]
    fn a_backup_is_another_store_and_keeps_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::open(dir.path().join("s")).unwrap();
        store.append_blocking(vec![event(1, 10)], None).unwrap();
        let recovered = dir.path().join("s").join("recovered");
        std::fs::create_dir(&recovered).unwrap();
        std::fs::write(recovered.join("kept.torn"), b"torn bytes").unwrap();
        store.backup(&dir.path().join("b")).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("b").join("recovered").join("kept.torn")).unwrap(),
            b"torn bytes"
        );
        let ours = std::fs::read(dir.path().join("s").join("head.json")).unwrap();
        let theirs = std::fs::read(dir.path().join("b").join("head.json")).unwrap();
        let (ours, theirs) = (crate::head::decode(&ours), crate::head::decode(&theirs));
        assert_eq!(
            ours.anchor().map(|a| a.hash),
            theirs.anchor().map(|a| a.hash)
        );
        assert_ne!(ours.store, theirs.store);
        assert!(
            dir.path()
                .join("b")
                .join("index")
                .join("snapshot.bin")
                .exists()
        );
        for skipped in ["store.lock", "store.lease"] {
            assert!(!dir.path().join("b").join(skipped).exists(), "{skipped}");
        }
    }
}
