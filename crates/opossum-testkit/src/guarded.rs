//! A store bundled with whatever must outlive it.

use std::ops::Deref;

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, Error, EventStore, EventStream, NewEvent, Position, Query, ReadOptions,
    SequencedEvent,
};

/// A store together with a guard that must live as long as the store — typically the
/// `tempfile::TempDir` holding a file store's folder.
///
/// It implements [`EventStore`] by delegating every method to the store — its own `head`,
/// `wait_for_append`, streaming reads and subscriptions included — so a factory can hand it to
/// the conformance suite directly. On drop the store goes first, then the guard (so the folder is
/// removed only after the store has closed).
///
/// ```
/// use opossum_core::InMemoryEventStore;
/// use opossum_testkit::Guarded;
///
/// let guarded = Guarded::new(InMemoryEventStore::new(), "anything kept alive");
/// assert!(guarded.is_empty()); // derefs to the store
/// ```
#[derive(Debug)]
pub struct Guarded<S, G> {
    // Field order is drop order: the store must close before its guard goes.
    store: S,
    guard: G,
}

impl<S, G> Guarded<S, G> {
    /// Bundles `store` with `guard`.
    pub fn new(store: S, guard: G) -> Guarded<S, G> {
        Guarded { store, guard }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The guard.
    pub fn guard(&self) -> &G {
        &self.guard
    }

    /// Both parts, for a test that wants to close the store itself before dropping the guard.
    pub fn into_parts(self) -> (S, G) {
        (self.store, self.guard)
    }
}

impl<S, G> Deref for Guarded<S, G> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: EventStore, G: Send + Sync> EventStore for Guarded<S, G> {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.store.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        self.store.read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.store.read_last(query).await
    }

    async fn head(&self) -> Result<Option<Position>, Error> {
        self.store.head().await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        self.store.wait_for_append(beyond).await
    }

    fn read_stream(&self, query: &Query, options: ReadOptions) -> EventStream<'_> {
        self.store.read_stream(query, options)
    }

    fn subscribe(&self, query: &Query, after: Option<Position>) -> EventStream<'_> {
        self.store.subscribe(query, after)
    }

    fn subscribe_all(&self, after: Option<Position>) -> EventStream<'_> {
        self.store.subscribe_all(after)
    }
}
