//! Reading events for projections: one bounded batch after a checkpoint, and the related events
//! of each event of a batch.

use opossum_core::{EventStore, Query, ReadOptions, SequencedEvent};

use crate::Error;
use crate::runner::{Prepared, Runner};

/// Related events are read in pages of this many, so that a query matching many events after
/// the one being applied costs at most one page more than what is used.
const RELATED_PAGE: usize = 256;

/// One batch read after a checkpoint.
pub(crate) struct Batch {
    /// The matching events, in position order.
    pub(crate) events: Vec<Prepared>,
    /// The checkpoint once the batch is applied: the last event's position when the batch is
    /// full; otherwise the head of the store as seen before the read (or the last event, when an
    /// append landed in between), since every event up to there was read.
    pub(crate) checkpoint: u64,
    /// True when the batch reached the end of the store.
    pub(crate) reached_end: bool,
}

/// Reads at most `limit` events of `runner` after position `after`, with their related events.
/// `head` is the store's head position read before this call.
pub(crate) async fn batch(
    store: &dyn EventStore,
    runner: &dyn Runner,
    after: u64,
    limit: usize,
    head: u64,
) -> Result<Batch, Error> {
    let mut options = ReadOptions::new().limit(limit);
    if let Ok(after) = opossum_core::Position::new(after) {
        options = options.after(after);
    }
    let events = store.read(runner.query(), options).await?;
    let last = events.last().map_or(0, |e| e.position.get());
    let reached_end = events.len() < limit;
    let checkpoint = if reached_end {
        head.max(last).max(after)
    } else {
        last
    };
    let mut prepared = Vec::with_capacity(events.len());
    for event in events {
        let related = match runner.related_query(&event)? {
            Some(query) => related(store, &query, &event).await?,
            None => Vec::new(),
        };
        prepared.push(Prepared { event, related });
    }
    Ok(Batch {
        events: prepared,
        checkpoint,
        reached_end,
    })
}

/// The events matching `query` at positions before `event`'s, in position order. Bounding them
/// by the event's position makes enrichment deterministic: a rebuild sees what the live update
/// saw, whatever was appended since.
async fn related(
    store: &dyn EventStore,
    query: &Query,
    event: &SequencedEvent,
) -> Result<Vec<SequencedEvent>, Error> {
    let mut found = Vec::new();
    let mut options = ReadOptions::new().limit(RELATED_PAGE);
    loop {
        let page = store.read(query, options).await?;
        let full = page.len() == RELATED_PAGE;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        found.extend(page.into_iter().take_while(|e| e.position < event.position));
        if !full || last >= event.position {
            break;
        }
        options = options.after(last);
    }
    Ok(found)
}

/// The position of the last event in the store (0 for an empty store).
pub(crate) async fn head(store: &dyn EventStore) -> Result<u64, Error> {
    Ok(store
        .read_last(&Query::all())
        .await?
        .map_or(0, |e| e.position.get()))
}
