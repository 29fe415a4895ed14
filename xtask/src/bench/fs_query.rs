//! The catalog store of the query scenarios: 100,000 events in ten types, where every `customer`
//! tag value is carried by 10 events, written with flush off in batches of 10,000.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use opossum_benches::{EVENT_TYPES, catalog_event};
use opossum_core::NewEvent;
use opossum_fs::FileEventStore;

use super::fs_append::{Durability, open_store};
use super::measure::Rate;
use super::{BULK_BATCH, QUERY_STORE_EVENTS};

/// The type the type query and `read_last` ask for: a tenth of the catalog.
pub(crate) const QUERIED_TYPE: &str = EVENT_TYPES[4];

/// Writes catalog events `0..events` into `store` in batches of [`BULK_BATCH`].
pub(crate) fn load_catalog(store: &FileEventStore, events: u64) -> Result<Rate> {
    let started = Instant::now();
    let mut start = 0;
    while start < events {
        let end = (start + BULK_BATCH).min(events);
        let batch = (start..end)
            .map(catalog_event)
            .collect::<Result<Vec<NewEvent>, _>>()?;
        store
            .append_blocking(batch, None)
            .context("append a batch of catalog events")?;
        start = end;
    }
    Ok(Rate {
        events,
        elapsed: started.elapsed(),
    })
}

/// A fresh file store holding the catalog of [`QUERY_STORE_EVENTS`] events.
pub(crate) fn build_catalog(dir: &Path) -> Result<FileEventStore> {
    let store = open_store(dir, "catalog", Durability::NoFlush)?;
    load_catalog(&store, QUERY_STORE_EVENTS)?;
    Ok(store)
}
