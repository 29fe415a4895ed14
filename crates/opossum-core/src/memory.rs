//! An in-memory [`EventStore`]: for unit tests, and the reference model the file store is
//! checked against.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use jiff::Timestamp;

use crate::store::validate_append;
use crate::{
    AppendCondition, Direction, Error, EventStore, NewEvent, Position, Query, ReadOptions,
    RequiredMetadata, SequencedEvent,
};

/// An event store that lives in memory and is lost when dropped.
///
/// It implements the DCB rules in the most direct way (a vector scanned on every call), which
/// makes it the reference the file store is compared with in property tests. It is fast enough
/// for unit tests with thousands of events; it is not meant for production data.
#[derive(Debug)]
pub struct InMemoryEventStore {
    events: Mutex<Vec<SequencedEvent>>,
    /// The head, announced after every append (for [`EventStore::wait_for_append`]).
    head: tokio::sync::watch::Sender<u64>,
    required: RequiredMetadata,
}

impl Default for InMemoryEventStore {
    fn default() -> InMemoryEventStore {
        InMemoryEventStore {
            events: Mutex::new(Vec::new()),
            head: tokio::sync::watch::Sender::new(0),
            required: RequiredMetadata::none(),
        }
    }
}

impl InMemoryEventStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> InMemoryEventStore {
        InMemoryEventStore::default()
    }

    /// An empty store that refuses appends lacking any of `required`'s metadata fields.
    #[must_use]
    pub fn with_required_metadata(required: RequiredMetadata) -> InMemoryEventStore {
        InMemoryEventStore {
            required,
            ..InMemoryEventStore::default()
        }
    }

    /// The number of stored events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no event is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SequencedEvent>> {
        // A panic while holding the lock cannot leave the vector half-updated (pushes happen only
        // after every check), so a poisoned lock still guards consistent data.
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`EventStore::append`] for callers without an async runtime (it never blocks for long:
    /// the store is a vector behind a mutex).
    ///
    /// # Errors
    /// As [`EventStore::append`].
    pub fn append_blocking(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        validate_append(&events)?;
        self.required.check(&events)?;
        let mut stored = self.lock();
        if let Some(condition) = &condition {
            // Positions are index + 1, so everything after `after` starts at index `after`.
            let start = condition
                .after
                .map_or(0, |p| usize::try_from(p.get()).unwrap_or(usize::MAX));
            let violated = stored
                .iter()
                .skip(start)
                .any(|e| condition.is_violated_by(e.position, &e.event));
            if violated {
                return Err(Error::ConditionFailed {
                    after: condition.after,
                });
            }
        }
        let mut position = Position::after(stored.last().map(|e| e.position));
        let mut last = position;
        let stored_at = Some(Timestamp::now());
        for event in events {
            last = position;
            stored.push(SequencedEvent {
                position,
                event,
                stored_at,
            });
            position = position.next();
        }
        drop(stored);
        // Concurrent appends announce in any order once the lock is let go: keep the highest
        // head, so a later announcement of a lower one never hides an append from a waiter.
        self.head.send_if_modified(|head| {
            let moved = *head < last.get();
            *head = (*head).max(last.get());
            moved
        });
        Ok(last)
    }

    /// [`EventStore::read`] for callers without an async runtime.
    ///
    /// # Errors
    /// Never; the signature is that of every store's `read_blocking`.
    pub fn read_blocking(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        Ok(self.read_matching(query, options))
    }

    fn read_matching(&self, query: &Query, options: ReadOptions) -> Vec<SequencedEvent> {
        let stored = self.lock();
        let start = options
            .after
            .map_or(0, |p| usize::try_from(p.get()).unwrap_or(usize::MAX));
        let end = options.until.map_or(stored.len(), |u| {
            usize::try_from(u.get())
                .unwrap_or(usize::MAX)
                .min(stored.len())
        });
        let tail = stored.get(start..end).unwrap_or_default();
        let limit = options.limit.unwrap_or(usize::MAX);
        let matching = |e: &&SequencedEvent| query.matches(&e.event);
        match options.direction {
            Direction::Ascending => tail.iter().filter(matching).take(limit).cloned().collect(),
            Direction::Descending => tail
                .iter()
                .rev()
                .filter(matching)
                .take(limit)
                .cloned()
                .collect(),
        }
    }

    /// [`EventStore::read_last`] for callers without an async runtime.
    ///
    /// # Errors
    /// Never; the signature is that of every store's `read_last_blocking`.
    pub fn read_last_blocking(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        Ok(self
            .lock()
            .iter()
            .rev()
            .find(|e| query.matches(&e.event))
            .cloned())
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.append_blocking(events, condition)
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        Ok(self.read_matching(query, options))
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.read_last_blocking(query)
    }

    async fn head(&self) -> Result<Option<Position>, Error> {
        Ok(self.lock().last().map(|e| e.position))
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        let beyond = beyond.map_or(0, Position::get);
        let mut head = self.head.subscribe();
        // The sender lives as long as the store, which outlives this borrow of it.
        let _ = head.wait_for(|h| *h > beyond).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    fn ev(t: &str) -> NewEvent {
        NewEvent::builder(t, Payload::from_json("{}").unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn positions_are_contiguous_across_appends() {
        let s = InMemoryEventStore::new();
        assert_eq!(
            s.append_blocking(vec![ev("A"), ev("B")], None)
                .unwrap()
                .get(),
            2
        );
        assert_eq!(s.append_blocking(vec![ev("C")], None).unwrap().get(), 3);
        let all = s.read_blocking(&Query::all(), ReadOptions::new()).unwrap();
        let positions: Vec<u64> = all.iter().map(|e| e.position.get()).collect();
        assert_eq!(positions, [1, 2, 3]);
    }

    #[test]
    fn a_failed_condition_appends_nothing() {
        let s = InMemoryEventStore::new();
        s.append_blocking(vec![ev("A")], None).unwrap();
        let c = AppendCondition::new(Query::from_event_types(["A"]).unwrap());
        assert!(matches!(
            s.append_blocking(vec![ev("B")], Some(c)),
            Err(Error::ConditionFailed { after: None })
        ));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn empty_append_is_rejected() {
        let s = InMemoryEventStore::new();
        assert!(matches!(
            s.append_blocking(vec![], None),
            Err(Error::EmptyAppend)
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn descending_with_limit_returns_the_newest() {
        let s = InMemoryEventStore::new();
        s.append_blocking((0..5).map(|_| ev("A")).collect(), None)
            .unwrap();
        let got = s
            .read_blocking(&Query::all(), ReadOptions::new().descending().limit(2))
            .unwrap();
        let positions: Vec<u64> = got.iter().map(|e| e.position.get()).collect();
        assert_eq!(positions, [5, 4]);
    }
}
