//! Model-based test: random operation sequences — appends with and without conditions, reads
//! with every option, `read_last`, and close-and-reopen — give exactly the results of the
//! in-memory reference store (`opossum-testkit`'s model harness), and leave an intact hash
//! chain.
//!
//! 48 cases by default; set `PROPTEST_CASES` for more.
#![allow(
    clippy::expect_used,
    reason = "test helper: a failed expectation is a test failure"
)]

use opossum_core::{AppendCondition, InMemoryEventStore, NewEvent, Position, Query, ReadOptions};
use opossum_core::{Error, SequencedEvent};
use opossum_fs::FileEventStore;
use opossum_testkit::model::{BlockingStore, check_sequence, config, operations};
use proptest::prelude::*;
use tempfile::TempDir;

/// The file store under test, driven through its blocking API, in a temporary folder that it
/// can close and reopen.
struct FileSubject {
    // Declared before the folder so the store is dropped (closed) first.
    store: Option<FileEventStore>,
    folder: TempDir,
}

impl FileSubject {
    fn new() -> FileSubject {
        let folder = TempDir::new().expect("create a temporary folder");
        let store = FileEventStore::open(folder.path().join("store")).expect("open the store");
        FileSubject {
            store: Some(store),
            folder,
        }
    }

    fn store(&self) -> &FileEventStore {
        self.store
            .as_ref()
            .expect("the store is open between operations")
    }
}

impl BlockingStore for FileSubject {
    fn append_blocking(
        &mut self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.store().append_blocking(events, condition)
    }

    fn read_blocking(
        &mut self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        self.store().read_blocking(query, options)
    }

    fn read_last_blocking(&mut self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.store().read_last_blocking(query)
    }

    /// `close()` the store, then `open` the same folder again.
    fn reopen(&mut self) -> Result<(), Error> {
        if let Some(store) = self.store.take() {
            store.close()?;
        }
        self.store = Some(FileEventStore::open(self.folder.path().join("store"))?);
        Ok(())
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn file_store_matches_the_in_memory_model(ops in operations(1..40)) {
        let mut reference = InMemoryEventStore::new();
        let mut subject = FileSubject::new();
        check_sequence(&ops, &mut reference, &mut subject)?;

        let report = subject.store().verify().expect("verify the store");
        prop_assert!(report.is_intact(), "hash chain broken: {:?}", report.problem);
        let expected_head = reference
            .read_last_blocking(&Query::all())
            .expect("the reference store never fails")
            .map(|e| e.position);
        prop_assert_eq!(report.head, expected_head);
    }
}
