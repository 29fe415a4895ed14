//! Helpers shared by the simulated-file-system tests.

use std::sync::Arc;

use opossum_core::{NewEvent, Payload, Position, Query, ReadOptions, SequencedEvent};

use crate::vfs::Vfs;
use crate::vfs::sim::SimFs;
use crate::{Error, FileEventStore, StoreOptions};

/// The folder that holds test stores on a simulated file system.
pub(crate) const ROOT: &str = "/sim";
/// The test store's name.
pub(crate) const NAME: &str = "store";

/// Options for the test store; `segment_bytes` is not an option, so tests that need several
/// segments write enough bytes.
pub(crate) fn options() -> StoreOptions {
    StoreOptions::new(ROOT, NAME)
}

/// Opens the test store on `fs`.
pub(crate) fn open(fs: &SimFs) -> Result<FileEventStore, Error> {
    FileEventStore::open_with(options(), Arc::new(fs.clone()) as Arc<dyn Vfs>)
}

/// Opens the test store on `fs` with `options`.
pub(crate) fn open_with(fs: &SimFs, options: StoreOptions) -> Result<FileEventStore, Error> {
    FileEventStore::open_with(options, Arc::new(fs.clone()) as Arc<dyn Vfs>)
}

/// Event `n` of a test workload: its payload and tag name it, and `pad` bytes of filler make
/// lines long enough to span pages.
pub(crate) fn event(n: u64, pad: usize) -> NewEvent {
    let payload = format!(r#"{{"n":{n},"pad":"{}"}}"#, "p".repeat(pad));
    NewEvent::builder(
        ["Alpha", "Beta", "Gamma"][(n % 3) as usize],
        Payload::from_json(&payload).unwrap_or_else(|_| unreachable!("valid JSON")),
    )
    .tag("n", n.to_string())
    .tag("group", (n % 4).to_string())
    .build()
    .unwrap_or_else(|_| unreachable!("valid event"))
}

/// Every event of the store, in position order.
pub(crate) fn read_all(store: &FileEventStore) -> Result<Vec<SequencedEvent>, Error> {
    store.read_blocking(&Query::all(), ReadOptions::new())
}

/// The position of every event, checked to run 1..=n.
pub(crate) fn assert_contiguous(events: &[SequencedEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.position,
            Position::new(i as u64 + 1).unwrap_or(Position::FIRST)
        );
    }
}
