//! File primitives: atomic replacement of small JSON files (temp file + rename), folder syncs
//! and listings.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use opossum_core::Durability;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Opens the file `path` for reading and writing, creating it empty when it does not exist.
pub(crate) fn open_or_create(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
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

/// How many files the folder `dir` holds, over its subfolders, and their bytes (none when it
/// does not exist).
pub(crate) fn folder_size(dir: &Path) -> Result<(usize, u64), Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        // A file deleted between the listing and the look (a replaced generation) is not
        // counted.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let (f, b) = folder_size(&path)?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}
