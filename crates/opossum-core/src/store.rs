//! The [`EventStore`] trait every store implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{AppendCondition, Error, NewEvent, Position, Query, ReadOptions, SequencedEvent};

/// A DCB event store.
///
/// Every implementation gives the same guarantees:
/// - positions are 1, 2, 3, … contiguous and never reused;
/// - `append` is atomic (all events or none), and its condition check and write are one step
///   with respect to every other appender;
/// - matching is [`Query::matches`], so semantics cannot drift between stores.
///
/// ```
/// use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Query, ReadOptions};
///
/// # tokio_test_block_on(async {
/// let store = InMemoryEventStore::new();
/// let event = NewEvent::builder("Ping", Payload::from_json("{}")?).build()?;
/// let last = store.append(vec![event], None).await?;
/// assert_eq!(last.get(), 1);
/// let all = store.read(&Query::all(), ReadOptions::new()).await?;
/// assert_eq!(all.len(), 1);
/// # Ok::<(), opossum_core::Error>(())
/// # })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` atomically and returns the position of the last one.
    ///
    /// With a condition, the append fails with [`Error::ConditionFailed`] — appending nothing —
    /// when an event matching `condition.fail_if_events_match` exists after `condition.after`.
    ///
    /// # Errors
    /// [`Error::EmptyAppend`] for no events, [`Error::ConditionFailed`], or
    /// [`Error::Storage`] when the back end fails; its [`Error::kind`] says which failure.
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error>;

    /// The events matching `query`, in position order (or reversed, with
    /// [`Direction::Descending`](crate::Direction::Descending)), limited by `options`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the back end fails; its [`Error::kind`] says which failure.
    async fn read(&self, query: &Query, options: ReadOptions)
    -> Result<Vec<SequencedEvent>, Error>;

    /// The matching event with the highest position, or `None` when nothing matches.
    ///
    /// # Errors
    /// [`Error::Storage`] when the back end fails; its [`Error::kind`] says which failure.
    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error>;
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Arc<S> {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        (**self).append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        (**self).read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        (**self).read_last(query).await
    }
}

/// Checks what every store must reject before it touches storage.
///
/// # Errors
/// [`Error::EmptyAppend`] when `events` is empty.
pub fn validate_append(events: &[NewEvent]) -> Result<(), Error> {
    if events.is_empty() {
        return Err(Error::EmptyAppend);
    }
    Ok(())
}
