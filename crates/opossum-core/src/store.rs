//! The [`EventStore`] trait every store implements.

use std::sync::Arc;

use async_trait::async_trait;

use std::time::Duration;

use crate::stream::{self, EventStream};
use crate::{AppendCondition, Error, NewEvent, Position, Query, ReadOptions, SequencedEvent};

/// How often the default [`EventStore::wait_for_append`] looks at the head.
pub const DEFAULT_APPEND_POLL: Duration = Duration::from_millis(50);

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

    /// The position of the last committed event, `None` for an empty store. The default reads
    /// the last event; stores override it with something cheaper.
    ///
    /// # Errors
    /// [`Error::Storage`] when the back end fails.
    async fn head(&self) -> Result<Option<Position>, Error> {
        Ok(self.read_last(&Query::all()).await?.map(|e| e.position))
    }

    /// Resolves once the head is past `beyond` — an event was committed after it, by this
    /// process or (for stores shared between processes) another. It may also resolve earlier
    /// (callers look at the head again); it never misses an append. This is what subscriptions
    /// wait on. The default looks at [`head`](Self::head) every [`DEFAULT_APPEND_POLL`]; the
    /// in-memory store resolves at the append, the file store as its options say.
    ///
    /// # Errors
    /// [`Error::Storage`] when the back end fails (for example, the store was closed or
    /// deleted).
    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        loop {
            if self.head().await? > beyond {
                return Ok(());
            }
            tokio::time::sleep(DEFAULT_APPEND_POLL).await;
        }
    }

    /// The events matching `query` that `options` select, ascending, read in bounded batches:
    /// a read of millions of events holds one batch in memory. Without `options.until` it ends
    /// at the head as it was when the first event was asked for — what a
    /// [`read`](Self::read) then would have returned — even while writers keep appending
    /// ([`subscribe`](Self::subscribe) follows them). `read` stays the convenience that
    /// returns everything at once.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Query, ReadOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = InMemoryEventStore::new();
    /// for _ in 0..3 {
    ///     store.append(vec![NewEvent::builder("Ping", Payload::from_json("{}")?).build()?], None).await?;
    /// }
    /// let mut events = store.read_stream(&Query::all(), ReadOptions::new());
    /// let mut positions = Vec::new();
    /// while let Some(event) = events.next().await {
    ///     positions.push(event?.position.get());
    /// }
    /// assert_eq!(positions, [1, 2, 3]);
    /// # Ok::<(), opossum_core::Error>(())
    /// # })?;
    /// # Ok::<(), opossum_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// The stream yields the store's error and ends; a descending read is
    /// [`Error::InvalidReadOptions`].
    fn read_stream(&self, query: &Query, options: ReadOptions) -> EventStream<'_> {
        stream::read_stream(self, query.clone(), options)
    }

    /// Every event matching `query` after `after`: first those stored, then each new one as it
    /// is committed, in position order, with no gap and no duplicate, until the stream is
    /// dropped. A slow consumer makes nothing buffer: the stream reads from the log when asked.
    /// To own the store (a `'static` stream, for a web response), use
    /// [`stream::subscribe`](crate::stream::subscribe) with an `Arc` of it. Waiting for new
    /// events needs a tokio runtime with its timer enabled (the default `wait_for_append`
    /// and the file store's poll with `tokio::time`).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Query};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let store = InMemoryEventStore::new();
    /// let ping = || NewEvent::builder("Ping", Payload::from_json("{}")?).build();
    /// store.append(vec![ping()?], None).await?;
    /// let mut live = store.subscribe(&Query::all(), None);
    /// assert_eq!(live.next().await.transpose()?.map(|e| e.position.get()), Some(1));
    /// store.append(vec![ping()?], None).await?; // committed later: it comes next
    /// assert_eq!(live.next().await.transpose()?.map(|e| e.position.get()), Some(2));
    /// # Ok::<(), opossum_core::Error>(())
    /// # })?;
    /// # Ok::<(), opossum_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// The stream yields the store's error (a store closed or deleted, a disk error) and ends.
    fn subscribe(&self, query: &Query, after: Option<Position>) -> EventStream<'_> {
        stream::subscribe(self, query.clone(), after)
    }

    /// Every event after `after`, then every new one: [`subscribe`](Self::subscribe) to
    /// [`Query::all`].
    fn subscribe_all(&self, after: Option<Position>) -> EventStream<'_> {
        stream::subscribe(self, Query::all(), after)
    }
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

    async fn head(&self) -> Result<Option<Position>, Error> {
        (**self).head().await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        (**self).wait_for_append(beyond).await
    }

    fn read_stream(&self, query: &Query, options: ReadOptions) -> EventStream<'_> {
        (**self).read_stream(query, options)
    }

    fn subscribe(&self, query: &Query, after: Option<Position>) -> EventStream<'_> {
        (**self).subscribe(query, after)
    }

    fn subscribe_all(&self, after: Option<Position>) -> EventStream<'_> {
        (**self).subscribe_all(after)
    }
}

/// Checks what every store must reject before it touches storage.
///
/// # Errors
/// - [`Error::EmptyAppend`] when `events` is empty;
/// - [`Error::UnsealedPersonalData`] when an event marks personal data that no shredding layer
///   sealed: a store never keeps personal data in plain text by accident.
pub fn validate_append(events: &[NewEvent]) -> Result<(), Error> {
    if events.is_empty() {
        return Err(Error::EmptyAppend);
    }
    for (index, event) in events.iter().enumerate() {
        if let Some(personal) = event.personal_data().filter(|_| !event.is_sealed()) {
            return Err(Error::UnsealedPersonalData {
                index,
                event_type: event.event_type().as_str().to_owned(),
                subject: personal.subject.clone(),
            });
        }
    }
    Ok(())
}
