//! Helpers shared by the simulated-file-system tests.

use std::path::Path;
use std::sync::Arc;

use opossum_core::{NewEvent, Payload, Position, Query, ReadOptions, SequencedEvent};

use crate::vfs::Vfs;
use crate::vfs::sim::SimFs;
use crate::{Error, FileEventStore, RecoveryReport, Repair, StoreOptions};

/// The test store's folder on a simulated file system.
pub(crate) const STORE: &str = "/sim/store";

/// Options for the test store.
pub(crate) fn options() -> StoreOptions {
    StoreOptions::new()
}

/// Opens the test store on `fs`.
pub(crate) fn open(fs: &SimFs) -> Result<FileEventStore, Error> {
    open_with(fs, options())
}

/// Opens the test store on `fs` with `options`.
pub(crate) fn open_with(fs: &SimFs, options: StoreOptions) -> Result<FileEventStore, Error> {
    open_at(fs, STORE, options)
}

/// Opens the store in the folder `path` of `fs` with `options`.
pub(crate) fn open_at(
    fs: &SimFs,
    path: &str,
    options: StoreOptions,
) -> Result<FileEventStore, Error> {
    FileEventStore::open_on(
        Arc::new(fs.clone()) as Arc<dyn Vfs>,
        Path::new(path),
        options,
    )
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
    store
        .read_blocking(&Query::all(), ReadOptions::new())
        .map_err(Error::from)
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

/// The torn tails an open cut, as (offset, bytes, where they were saved).
pub(crate) fn torn_tail_cuts(report: &RecoveryReport) -> Vec<(u64, u64, std::path::PathBuf)> {
    report
        .repairs
        .iter()
        .filter_map(|r| match r {
            Repair::TornTailCut {
                offset,
                bytes,
                saved_to,
                ..
            } => Some((*offset, *bytes, saved_to.clone())),
            _ => None,
        })
        .collect()
}
