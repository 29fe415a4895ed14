//! Where each file of a store lives: every name of the on-disk layout in one place.
//!
//! ```text
//! <root>/<name>/
//!   events/<20-digit first position>.jsonl   the log (segment files)
//!   head.json                                the commit anchor
//!   index/snapshot.bin                       the saved index
//!   store.lock                               the advisory append lock
//!   store.lease                              the append lease (exists while a writer appends)
//!   recovered/                               bytes cut from the log by recovery
//! ```

use std::path::{Path, PathBuf};

/// The folder of segment files inside a store folder.
pub(crate) const EVENTS_DIR: &str = "events";
/// The anchor's file name inside the store folder.
pub(crate) const HEAD_FILE: &str = "head.json";
/// The lock file's name inside the store folder.
pub(crate) const LOCK_FILE: &str = "store.lock";
/// The lease file's name inside the store folder.
pub(crate) const LEASE_FILE: &str = "store.lease";
/// The folder of the index snapshot inside the store folder.
pub(crate) const INDEX_DIR: &str = "index";
/// The snapshot's file name inside [`INDEX_DIR`].
pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
/// The folder where bytes cut from the log are kept.
pub(crate) const RECOVERED_DIR: &str = "recovered";
/// The extension of segment files.
const SEGMENT_EXTENSION: &str = "jsonl";

/// The paths of one store folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf) -> Layout {
        Layout { dir }
    }

    /// The store folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn events_dir(&self) -> PathBuf {
        self.dir.join(EVENTS_DIR)
    }

    /// The segment file whose first event is at `first`.
    pub(crate) fn segment(&self, first: u64) -> PathBuf {
        self.events_dir().join(segment_file_name(first))
    }

    pub(crate) fn head(&self) -> PathBuf {
        self.dir.join(HEAD_FILE)
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    pub(crate) fn lease(&self) -> PathBuf {
        self.dir.join(LEASE_FILE)
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.dir.join(INDEX_DIR)
    }

    pub(crate) fn snapshot(&self) -> PathBuf {
        self.index_dir().join(SNAPSHOT_FILE)
    }

    pub(crate) fn recovered_dir(&self) -> PathBuf {
        self.dir.join(RECOVERED_DIR)
    }
}

/// The file name of the segment starting at `first`: 20 digits, so names sort like positions.
pub(crate) fn segment_file_name(first: u64) -> String {
    format!("{first:020}.{SEGMENT_EXTENSION}")
}

/// The first position encoded in a segment file name, if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_positions() {
        assert_eq!(segment_file_name(1), "00000000000000000001.jsonl");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(12345)),
            Some(12345)
        );
        assert_eq!(parse_segment_file_name("00000000000000000000.jsonl"), None);
        assert_eq!(parse_segment_file_name("1.jsonl"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.jsonl"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn every_file_lives_in_the_store_folder() {
        let layout = Layout::new(PathBuf::from("/data/store"));
        assert_eq!(layout.head(), Path::new("/data/store/head.json"));
        assert_eq!(layout.lock(), Path::new("/data/store/store.lock"));
        assert_eq!(layout.lease(), Path::new("/data/store/store.lease"));
        assert_eq!(
            layout.segment(7),
            Path::new("/data/store/events/00000000000000000007.jsonl")
        );
        assert_eq!(
            layout.snapshot(),
            Path::new("/data/store/index/snapshot.bin")
        );
        assert_eq!(layout.recovered_dir(), Path::new("/data/store/recovered"));
    }
}
