//! The physical limit: appending ~200-byte records to a plain file with `sync_data()`
//! (`fdatasync`) after each, the fastest a serial durable write can go on this disk.

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
