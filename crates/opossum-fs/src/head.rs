//! `head.json`: the commit anchor, naming the last committed position and its hash.
//!
//! The appender rewrites it after each commit, once the events are durable. Readers in other
//! processes read it to learn how far the log is committed (and so never see a half-finished
//! append), and `verify` compares it with the log to detect a truncated history.
//!
//! The file is always exactly [`HEAD_LEN`] bytes: JSON padded with spaces and a newline, written
//! with one positioned write, which a sector-sized write makes all-or-nothing in practice. A torn
//! or missing anchor is never trusted for more than the log proves: recovery re-derives it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::record::ChainHash;
use crate::segment::{read_exact_at, write_all_at};

/// The anchor's file name inside the store folder.
pub(crate) const HEAD_FILE: &str = "head.json";
/// The anchor's fixed size in bytes.
pub(crate) const HEAD_LEN: usize = 128;

/// What the anchor records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// The last committed position (0 for an empty store).
    pub(crate) position: u64,
    pub(crate) hash: ChainHash,
    /// Whether that commit was synced to stable storage before the anchor was written. Only a
    /// synced anchor proves that its events must be in the log.
    pub(crate) synced: bool,
}

#[derive(Serialize, Deserialize)]
struct AnchorJson {
    position: u64,
    hash: String,
    synced: bool,
}

/// Encodes an anchor as its fixed-size file content.
pub(crate) fn encode(anchor: Anchor) -> [u8; HEAD_LEN] {
    let json = format!(
        "{{\"position\":{},\"hash\":\"{}\",\"synced\":{}}}",
        anchor.position,
        anchor.hash.to_hex(),
        anchor.synced
    );
    let mut out = [b' '; HEAD_LEN];
    out[..json.len()].copy_from_slice(json.as_bytes());
    out[HEAD_LEN - 1] = b'\n';
    out
}

/// Decodes anchor file content; `None` when it is not a well-formed anchor.
pub(crate) fn decode(bytes: &[u8]) -> Option<Anchor> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let json: AnchorJson = serde_json::from_str(text).ok()?;
    Some(Anchor {
        position: json.position,
        hash: ChainHash::from_hex(json.hash.as_bytes())?,
        synced: json.synced,
    })
}

/// The anchor file, open for reading (and writing, in a writable store).
#[derive(Debug)]
pub(crate) struct HeadFile {
    path: PathBuf,
    file: Option<File>,
}

/// What reading the anchor found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnchorState {
    Valid(Anchor),
    /// No anchor file: a store created before its first commit, or one whose anchor was deleted.
    Missing,
    /// The file exists but does not hold an anchor.
    Unreadable,
}

impl HeadFile {
    /// Opens the anchor of the store folder `dir`, read-write when `writable`.
    pub(crate) fn open(dir: &Path, writable: bool) -> Result<HeadFile, Error> {
        let path = dir.join(HEAD_FILE);
        let opened = if writable {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        } else {
            File::open(&path)
        };
        match opened {
            Ok(file) => Ok(HeadFile {
                path,
                file: Some(file),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !writable => {
                Ok(HeadFile { path, file: None })
            }
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the anchor.
    pub(crate) fn read(&self) -> Result<AnchorState, Error> {
        let Some(file) = &self.file else {
            return Ok(AnchorState::Missing);
        };
        let mut buf = [0u8; HEAD_LEN];
        match read_exact_at(file, &mut buf, 0) {
            Ok(()) => Ok(decode(&buf).map_or(AnchorState::Unreadable, AnchorState::Valid)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let len = file
                    .metadata()
                    .map_err(|e| Error::io("inspect", &self.path, e))?
                    .len();
                Ok(if len == 0 {
                    AnchorState::Missing
                } else {
                    AnchorState::Unreadable
                })
            }
            Err(e) => Err(Error::io("read", &self.path, e)),
        }
    }

    /// Rewrites the anchor, syncing it when `sync`.
    pub(crate) fn write(&self, anchor: Anchor, sync: bool) -> Result<(), Error> {
        let Some(file) = &self.file else {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        };
        write_all_at(file, &encode(anchor), 0).map_err(|e| Error::io("write", &self.path, e))?;
        if sync {
            file.sync_data()
                .map_err(|e| Error::io("sync", &self.path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_round_trip_at_a_fixed_size() {
        let a = Anchor {
            position: u64::MAX,
            hash: ChainHash::chain(ChainHash::GENESIS, b"x"),
            synced: false,
        };
        let bytes = encode(a);
        assert_eq!(bytes.len(), HEAD_LEN);
        assert_eq!(decode(&bytes), Some(a));
        let empty = Anchor {
            position: 0,
            hash: ChainHash::GENESIS,
            synced: true,
        };
        assert_eq!(decode(&encode(empty)), Some(empty));
    }

    #[test]
    fn the_anchor_file_is_readable_json() {
        let bytes = encode(Anchor {
            position: 42,
            hash: ChainHash::GENESIS,
            synced: true,
        });
        insta::assert_snapshot!(String::from_utf8(bytes.to_vec()).unwrap().trim_end());
    }

    #[test]
    fn damaged_anchors_are_not_trusted() {
        assert_eq!(decode(b"{\"position\":3"), None);
        assert_eq!(decode(&[0u8; HEAD_LEN]), None);
    }
}
