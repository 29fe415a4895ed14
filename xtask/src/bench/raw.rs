//! The physical limits: ~200-byte records written to a plain file with `sync_data()`
//! (`fdatasync`) after each, the fastest a serial durable write can go on this disk — once
//! appended to a growing file ([`RawLog`]: every sync also records the new file size), once
//! written over space that was already written and synced ([`RawOverwrite`]: the sync carries
//! the data alone, as in a log whose space is written before it is used).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One record: 199 bytes and a newline, the size of a small event line.
const RECORD: &[u8; 200] = &{
    let mut record = [b'x'; 200];
    record[199] = b'\n';
    record
};

/// A plain file that grows by one synced record at a time, as a log does.
#[derive(Debug)]
pub(crate) struct RawLog {
    path: PathBuf,
    file: File,
}

impl RawLog {
    /// Creates `dir/raw-fsync.log` and writes a few records, so that creating the file is not
    /// measured.
    pub(crate) fn create(dir: &Path) -> Result<RawLog> {
        let path = dir.join("raw-fsync.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        let mut log = RawLog { path, file };
        for _ in 0..16 {
            log.append()?;
        }
        Ok(log)
    }

    /// Appends one record and waits for `fdatasync`; returns the records written (one).
    pub(crate) fn append(&mut self) -> Result<u64> {
        self.file
            .write_all(RECORD)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("write and sync {}", self.path.display()))?;
        Ok(1)
    }
}

/// Size of the file [`RawOverwrite`] writes over: 64 MiB, filled and synced before timing.
const OVERWRITE_SPAN: u64 = 64 << 20;

/// A plain file of [`OVERWRITE_SPAN`] bytes, written and synced in full before timing, then
/// written over one synced record at a time from its start (wrapping around at its end), with a
/// positioned write and `sync_data()`.
#[derive(Debug)]
pub(crate) struct RawOverwrite {
    path: PathBuf,
    file: File,
    offset: u64,
}

impl RawOverwrite {
    /// Creates `dir/raw-overwrite.log`, fills it with [`OVERWRITE_SPAN`] bytes, syncs it and
    /// writes a few records, so that allocating the space is not measured.
    pub(crate) fn create(dir: &Path) -> Result<RawOverwrite> {
        let path = dir.join("raw-overwrite.log");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..OVERWRITE_SPAN / chunk.len() as u64 {
            file.write_all(&chunk)
                .with_context(|| format!("fill {}", path.display()))?;
        }
        file.sync_all()
            .with_context(|| format!("sync {}", path.display()))?;
        let mut raw = RawOverwrite {
            path,
            file,
            offset: 0,
        };
        for _ in 0..16 {
            raw.append()?;
        }
        Ok(raw)
    }

    /// Writes one record at the next offset and waits for `fdatasync`; returns the records
    /// written (one).
    pub(crate) fn append(&mut self) -> Result<u64> {
        if self.offset + RECORD.len() as u64 > OVERWRITE_SPAN {
            self.offset = 0;
        }
        write_at(&mut self.file, RECORD, self.offset)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("write and sync {}", self.path.display()))?;
        self.offset += RECORD.len() as u64;
        Ok(1)
    }
}

/// `pwrite`: writes `bytes` at `offset` without moving the file position.
#[cfg(unix)]
fn write_at(file: &mut File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// A seek and a write, where there is no `pwrite`.
#[cfg(not(unix))]
fn write_at(file: &mut File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}
