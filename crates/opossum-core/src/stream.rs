//! Streaming reads and subscriptions over any [`EventStore`], read from the log in bounded
//! batches.
//!
//! Both are *pulled*: a batch is read only when the consumer asks for the next event past the
//! last one it got, so a slow consumer never makes anything buffer more than one batch — it
//! simply reads from the log later. A subscription reads every match up to the head it saw,
//! then waits with [`EventStore::wait_for_append`] until the head moves past it, and reads on
//! from the last position it returned: there is no separate live channel to switch to, so
//! nothing falls into a gap and nothing comes twice. Dropping the stream stops it; nothing runs
//! in the background.

use std::collections::VecDeque;
use std::ops::Deref;
use std::pin::Pin;

use futures_core::Stream;

use crate::{Error, EventStore, Position, Query, ReadOptions, SequencedEvent};

/// Events read in one step of a [`read_stream`] or a [`subscribe`], unless the options say
/// otherwise.
pub const STREAM_BATCH: usize = 512;

/// A stream of events in position order, as [`EventStore::read_stream`] and
/// [`EventStore::subscribe`] return it. An error ends it. The streams this module makes
/// return `None` again when asked after their end.
pub type EventStream<'a> = Pin<Box<dyn Stream<Item = Result<SequencedEvent, Error>> + Send + 'a>>;

/// What the stream does when it has read every match up to the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtHead {
    /// End: a streaming read.
    End,
    /// Wait for new events: a subscription.
    Wait,
}

struct Cursor<S> {
    store: S,
    query: Query,
    /// The position of the last event returned (or the caller's start).
    after: Option<Position>,
    /// A read's upper bound; a subscription's moves with the head.
    until: Option<Position>,
    batch: usize,
    buffer: VecDeque<SequencedEvent>,
    at_head: AtHead,
    /// The head a subscription has read every match up to.
    seen: Option<Position>,
    done: bool,
}

impl<S, T> Cursor<S>
where
    S: Deref<Target = T> + Send + Sync,
    T: EventStore + ?Sized,
{
    async fn next(&mut self) -> Option<Result<SequencedEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                self.after = Some(event.position);
                return Some(Ok(event));
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Reads the next batch into the buffer; false when the stream ends.
    async fn fill(&mut self) -> Result<bool, Error> {
        loop {
            if self.at_head == AtHead::End && self.until.is_none() {
                // A streaming read returns what a read would have returned when it started:
                // pinned to the head then, it ends even while writers keep appending.
                match self.store.head().await? {
                    Some(head) => self.until = Some(head),
                    None => return Ok(false),
                }
            }
            if self.at_head == AtHead::Wait {
                // Read up to a head known beforehand: what a read returns below it is all
                // there is, so waiting for the head to pass it misses nothing.
                let head = self.store.head().await?;
                if head > self.after.max(self.seen) {
                    self.until = head;
                } else {
                    self.store.wait_for_append(head.max(self.seen)).await?;
                    continue;
                }
            }
            let mut options = ReadOptions::new().limit(self.batch);
            if let Some(after) = self.after {
                options = options.after(after);
            }
            if let Some(until) = self.until {
                options = options.until(until);
            }
            let events = self.store.read(&self.query, options).await?;
            let full = events.len() >= self.batch;
            self.buffer.extend(events);
            if !self.buffer.is_empty() {
                return Ok(true);
            }
            debug_assert!(!full);
            match self.at_head {
                AtHead::End => return Ok(false),
                AtHead::Wait => {
                    // Every match up to `until` is returned: wait for the head to pass it.
                    self.seen = self.until;
                    self.after = self.after.max(self.until);
                }
            }
        }
    }
}

fn into_stream<'a, S, T>(cursor: Cursor<S>) -> EventStream<'a>
where
    S: Deref<Target = T> + Send + Sync + 'a,
    T: EventStore + ?Sized,
{
    // Fused: asking again after the end (or after an error) gets `None`, not a panic.
    Box::pin(futures_util::StreamExt::fuse(futures_util::stream::unfold(
        cursor,
        |mut cursor| async move {
            let item = cursor.next().await?;
            Some((item, cursor))
        },
    )))
}

/// The events matching `query` that `options` select, ascending, read in batches of
/// [`STREAM_BATCH`] (or `options.limit`, when smaller, as the total): only a batch is in memory
/// at a time. `store` is anything that leads to a store — `&store`, an `Arc` of it — so the
/// stream may own its store (`'static`) or borrow it.
///
/// Without `options.until`, the stream ends at the head as it was when the first event was
/// asked for: it returns what a [`read`](EventStore::read) then would have returned, and ends
/// even while writers keep appending. Follow new events with [`subscribe`].
///
/// # Errors
/// The stream yields the store's error and ends. A descending `options` is refused with
/// [`Error::InvalidReadOptions`].
pub fn read_stream<'a, S, T>(store: S, query: Query, options: ReadOptions) -> EventStream<'a>
where
    S: Deref<Target = T> + Send + Sync + 'a,
    T: EventStore + ?Sized,
{
    if options.direction == crate::Direction::Descending {
        return Box::pin(futures_util::stream::once(async {
            Err(Error::InvalidReadOptions {
                problem:
                    "a streaming read is ascending; read the last events with read() and a limit"
                        .to_owned(),
            })
        }));
    }
    let stream = into_stream(Cursor {
        store,
        query,
        after: options.after,
        until: options.until,
        // A small limit is read in one step of its own size, not a full batch cut short.
        batch: options
            .limit
            .map_or(STREAM_BATCH, |l| l.clamp(1, STREAM_BATCH)),
        buffer: VecDeque::new(),
        at_head: AtHead::End,
        seen: None,
        done: false,
    });
    match options.limit {
        Some(limit) => Box::pin(futures_util::StreamExt::take(stream, limit)),
        None => stream,
    }
}

/// Every event matching `query` after `after` (from the first when `None`): first those
/// already stored, then each new one as it is committed, in position order, without a gap or a
/// duplicate, until the stream is dropped. See the module documentation for how it works.
///
/// # Errors
/// The stream yields the store's error (a store closed or deleted, a disk error) and ends.
pub fn subscribe<'a, S, T>(store: S, query: Query, after: Option<Position>) -> EventStream<'a>
where
    S: Deref<Target = T> + Send + Sync + 'a,
    T: EventStore + ?Sized,
{
    into_stream(Cursor {
        store,
        query,
        after,
        until: None,
        batch: STREAM_BATCH,
        buffer: VecDeque::new(),
        at_head: AtHead::Wait,
        seen: None,
        done: false,
    })
}
