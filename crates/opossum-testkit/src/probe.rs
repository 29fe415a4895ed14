//! A store wrapper that counts the calls a stream makes, so tests can see what a streaming read
//! or a subscription asks of its store — and that it stops asking once it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, Error, EventStore, NewEvent, Position, Query, ReadOptions, SequencedEvent,
};

/// A store that delegates to `S` and counts the calls in flight: reads (`read`, `read_last`,
/// `head`) and waits (`wait_for_append`). A call counts from the moment its future is first
/// polled until it completes *or is dropped*, so a count that returns to 0 after a stream is
/// dropped proves that the stream left nothing running.
///
/// It does not override [`EventStore::read_stream`] or [`EventStore::subscribe`]: those run
/// the shared cursor of [`opossum_core::stream`] over this wrapper, so every step they take
/// passes through the counters.
///
/// ```
/// use opossum_core::{EventStore, InMemoryEventStore};
/// use opossum_testkit::Probe;
///
/// # opossum_testkit::block_on(async {
/// let probe = Probe::new(InMemoryEventStore::new());
/// assert_eq!(probe.head().await.unwrap(), None);
/// assert_eq!(probe.reads_started(), 1);
/// assert_eq!(probe.calls_in_flight(), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct Probe<S> {
    inner: S,
    reads_in_flight: AtomicUsize,
    waits_in_flight: AtomicUsize,
    reads_started: AtomicUsize,
    /// The largest `limit` a `read` asked for; `usize::MAX` once a read had none.
    largest_read: AtomicUsize,
}

impl<S> Probe<S> {
    /// Wraps `inner`; every counter starts at 0.
    pub fn new(inner: S) -> Probe<S> {
        Probe {
            inner,
            reads_in_flight: AtomicUsize::new(0),
            waits_in_flight: AtomicUsize::new(0),
            reads_started: AtomicUsize::new(0),
            largest_read: AtomicUsize::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `read`, `read_last` and `head` calls started and not yet completed or dropped.
    pub fn reads_in_flight(&self) -> usize {
        self.reads_in_flight.load(Ordering::SeqCst)
    }

    /// `wait_for_append` calls started and not yet completed or dropped.
    pub fn waits_in_flight(&self) -> usize {
        self.waits_in_flight.load(Ordering::SeqCst)
    }

    /// Every call in flight: [`reads_in_flight`](Self::reads_in_flight) plus
    /// [`waits_in_flight`](Self::waits_in_flight).
    pub fn calls_in_flight(&self) -> usize {
        self.reads_in_flight() + self.waits_in_flight()
    }

    /// `read`, `read_last` and `head` calls started so far.
    pub fn reads_started(&self) -> usize {
        self.reads_started.load(Ordering::SeqCst)
    }

    /// The largest `limit` any `read` asked for so far: 0 before the first, `None` once a read
    /// asked without a limit.
    pub fn largest_read_limit(&self) -> Option<usize> {
        match self.largest_read.load(Ordering::SeqCst) {
            usize::MAX => None,
            n => Some(n),
        }
    }

    fn start_read(&self) -> InFlight<'_> {
        self.reads_started.fetch_add(1, Ordering::SeqCst);
        InFlight::enter(&self.reads_in_flight)
    }
}

/// Counts one call in flight until it is dropped — when the call completes or its future is
/// dropped half-way.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl<S: EventStore> EventStore for Probe<S> {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.inner.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        let _in_flight = self.start_read();
        self.largest_read
            .fetch_max(options.limit.unwrap_or(usize::MAX), Ordering::SeqCst);
        self.inner.read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        let _in_flight = self.start_read();
        self.inner.read_last(query).await
    }

    async fn head(&self) -> Result<Option<Position>, Error> {
        let _in_flight = self.start_read();
        self.inner.head().await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        let _in_flight = InFlight::enter(&self.waits_in_flight);
        self.inner.wait_for_append(beyond).await
    }
}
