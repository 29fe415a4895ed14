//! File primitives: atomic replacement (temp file + rename), JSON files, and durability
//! barriers.
//!
//! A *barrier* makes everything written before it durable before anything written after it.
//! With syncing on, it is one `syncfs` of the projection's file system on Linux (one call for a
//! whole batch of files, however many), and an `fsync` of every file and folder written
//! elsewhere. With syncing off it does nothing: writes stay atomic, and a process crash still
//! loses nothing because the operating system keeps what was written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use opossum_core::Durability;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// With [`Durability::Immediate`], makes `files` and the entries of `dirs` durable; with
/// [`Durability::Eventual`], does nothing. `anchor` is a folder on the same file system. A few
/// files are synced one by one; more (on Linux) with one `syncfs` of the whole file system,
/// which costs about as much as one `fsync` however many files it covers.
pub(crate) fn barrier(
    durability: Durability,
    anchor: &Path,
    files: &[PathBuf],
    dirs: &[PathBuf],
) -> Result<(), Error> {
    if !durability.is_immediate() || (files.is_empty() && dirs.is_empty()) {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    if files.len() + dirs.len() > SYNC_ONE_BY_ONE {
        let dir = File::open(anchor).map_err(|e| Error::io("open", anchor, e))?;
        return rustix::fs::syncfs(&dir)
            .map_err(|e| Error::io("sync the file system of", anchor, e.into()));
    }
    let _ = anchor;
    for file in files {
        File::open(file)
            .and_then(|f| f.sync_data())
            .map_err(|e| Error::io("sync", file, e))?;
    }
    for dir in dirs {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Up to this many files and folders, a barrier syncs them one by one (cheaper than syncing a
/// file system that may hold other programs' unwritten data).
#[cfg(target_os = "linux")]
const SYNC_ONE_BY_ONE: usize = 1;

/// A small file written to a temporary name, to be renamed into place after the barrier that
/// makes its bytes durable.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) tmp: PathBuf,
    pub(crate) target: PathBuf,
}

impl Staged {
    /// Renames the file into place.
    pub(crate) fn install(&self) -> Result<(), Error> {
        rename(&self.tmp, &self.target)
    }
}

/// Writes `value` as pretty JSON to `tmp`, for [`Staged::install`] over `target` later.
pub(crate) fn stage_json<T: Serialize>(
    target: &Path,
    tmp: &Path,
    value: &T,
) -> Result<Staged, Error> {
    write_file(tmp, &to_pretty_json(value, target)?)?;
    Ok(Staged {
        tmp: tmp.to_path_buf(),
        target: target.to_path_buf(),
    })
}

/// Writes `bytes` to `path`, replacing it, without syncing.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))
}

/// Creates the file `path`, which must not exist yet, holding `bytes`, without syncing.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))
}

/// Renames `from` over `to` atomically.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

/// Writes `value` as pretty JSON to `path` atomically: to `tmp`, synced when `durability` says
/// so, renamed over `path`, and the folder synced.
pub(crate) fn write_json_atomic<T: Serialize>(
    path: &Path,
    tmp: &Path,
    value: &T,
    durability: Durability,
) -> Result<(), Error> {
    let bytes = to_pretty_json(value, path)?;
    write_file(tmp, &bytes)?;
    if durability == Durability::Immediate {
        File::open(tmp)
            .and_then(|f| f.sync_data())
            .map_err(|e| Error::io("sync", tmp, e))?;
    }
    rename(tmp, path)?;
    if durability == Durability::Immediate {
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Pretty JSON with a final newline, as people expect of a text file.
pub(crate) fn to_pretty_json<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, Error> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| {
        Error::io(
            "encode",
            path,
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads and decodes the JSON file at `path`; `None` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::corrupt(path, format!("not the JSON this crate writes ({e})")))
}

/// Removes the file at `path`; a file that is already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Creates the folder `path` and its parents.
pub(crate) fn create_dir_all(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| Error::io("create", path, e))
}

/// Syncs a folder, so that the names created, renamed or removed in it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", path, e))
    }
    // Windows cannot open a folder as a file; its renames are journaled by NTFS.
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// The names of the entries of `dir` (none when it does not exist).
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes the folder `dir` and everything in it; a folder that is already gone is fine.
pub(crate) fn remove_dir_all(dir: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
    }
}
