//! The shared DCB conformance suite (`opossum-testkit`) against the file store: every case runs
//! on a fresh store in its own temporary folder, through the `EventStore` trait only.
#![allow(
    clippy::expect_used,
    reason = "test helper: a failed expectation is a test failure"
)]

use opossum_fs::FileEventStore;
use opossum_testkit::Guarded;
use tempfile::TempDir;

/// A new, empty store in a temporary folder; the folder is removed after the store is dropped.
fn fresh_store() -> Guarded<FileEventStore, TempDir> {
    let folder = TempDir::new().expect("create a temporary folder");
    let root = std::path::absolute(folder.path()).expect("absolute temporary folder");
    let store = FileEventStore::open(root.join("store")).expect("open the store");
    Guarded::new(store, folder)
}

opossum_testkit::dcb_conformance_tests!(fresh_store);
