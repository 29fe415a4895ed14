//! [`DecisionProjection`]: an initial state, a query, and a fold.

use std::fmt;
use std::sync::Arc;

use opossum_core::{Query, SequencedEvent};

use crate::{Clock, Error, SystemClock};

/// The fold every constructor is reduced to: fallible, and given a clock.
type Fold<S> =
    dyn Fn(S, &SequencedEvent, &dyn Clock) -> Result<S, opossum_core::Error> + Send + Sync;

/// A write-side projection: the state one business rule needs to decide, folded from the events
/// its query matches.
///
/// A decision projection is ephemeral: it is built for one decision, folded from one read, and
/// dropped. Compose several with [`build_decision_model`](crate::build_decision_model) to decide
/// on all of them from a single read and guard the append with a single condition.
///
/// The fold takes the state by value and returns the next one, and sees only the events that
/// match the projection's own query, oldest first.
///
/// ```
/// use opossum_core::{Query, Tag};
/// use opossum_decision::DecisionProjection;
///
/// // How many students are enrolled in course c-1?
/// let enrolled = DecisionProjection::new(
///     0_u32,
///     Query::from_items([opossum_core::QueryItem::of_types(["StudentEnrolled"])?
///         .with_tag(Tag::new("courseId", "c-1")?)])?,
///     |count, _event| count + 1,
/// );
/// assert_eq!(*enrolled.state(), 0);
/// # Ok::<(), opossum_core::Error>(())
/// ```
pub struct DecisionProjection<S> {
    state: S,
    query: Query,
    fold: Arc<Fold<S>>,
    /// `None` for folds that do not read the time.
    clock: Option<Arc<dyn Clock>>,
}

impl<S> DecisionProjection<S> {
    /// A projection starting at `initial` that folds each event matching `query` with `fold`.
    pub fn new<F>(initial: S, query: Query, fold: F) -> DecisionProjection<S>
    where
        F: Fn(S, &SequencedEvent) -> S + Send + Sync + 'static,
    {
        DecisionProjection::try_new(initial, query, move |state, event| Ok(fold(state, event)))
    }

    /// Like [`DecisionProjection::new`], for a fold that reads the current time.
    ///
    /// The fold receives `clock` as its third argument. Give it a [`SystemClock`] in
    /// production and a [`ManualClock`](crate::ManualClock) in tests, so that rules such as a
    /// grace period can be tested without sleeping.
    ///
    /// ```
    /// use std::time::Duration;
    /// use opossum_core::{Query, Timestamp};
    /// use opossum_decision::{Clock, DecisionProjection, ManualClock};
    ///
    /// // Was a price change made less than 30 minutes ago?
    /// let clock = ManualClock::new(Timestamp::from_second(1_700_000_000)?);
    /// let recent_change = DecisionProjection::with_clock(
    ///     false,
    ///     Query::from_event_types(["PriceChanged"])?,
    ///     clock.clone(),
    ///     |_, event, clock| {
    ///         event.event.metadata().timestamp + Duration::from_secs(30 * 60) > clock.now()
    ///     },
    /// );
    /// # let _ = recent_change;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_clock<C, F>(initial: S, query: Query, clock: C, fold: F) -> DecisionProjection<S>
    where
        C: Clock + 'static,
        F: Fn(S, &SequencedEvent, &dyn Clock) -> S + Send + Sync + 'static,
    {
        DecisionProjection::try_with_clock(initial, query, clock, move |state, event, clock| {
            Ok(fold(state, event, clock))
        })
    }

    /// Like [`DecisionProjection::new`], for a fold that can reject an event — typically
    /// because its payload does not decode. A rejection stops the decision with
    /// [`Error::Fold`], naming the event's position, rather than deciding on a state that
    /// silently skipped data.
    ///
    /// ```
    /// use opossum_core::{DomainEvent, Query};
    /// use opossum_decision::DecisionProjection;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct InvoiceCreated { number: u64 }
    /// impl DomainEvent for InvoiceCreated { const EVENT_TYPE: &'static str = "InvoiceCreated"; }
    ///
    /// let last_number = DecisionProjection::try_new(
    ///     0_u64,
    ///     Query::from_event_types([InvoiceCreated::EVENT_TYPE])?,
    ///     |last, event| Ok(last.max(event.decode::<InvoiceCreated>()?.number)),
    /// );
    /// # let _ = last_number;
    /// # Ok::<(), opossum_core::Error>(())
    /// ```
    pub fn try_new<F>(initial: S, query: Query, fold: F) -> DecisionProjection<S>
    where
        F: Fn(S, &SequencedEvent) -> Result<S, opossum_core::Error> + Send + Sync + 'static,
    {
        DecisionProjection {
            state: initial,
            query,
            fold: Arc::new(move |state, event, _clock| fold(state, event)),
            clock: None,
        }
    }

    /// The fallible form of [`DecisionProjection::with_clock`]; see
    /// [`DecisionProjection::try_new`].
    pub fn try_with_clock<C, F>(
        initial: S,
        query: Query,
        clock: C,
        fold: F,
    ) -> DecisionProjection<S>
    where
        C: Clock + 'static,
        F: Fn(S, &SequencedEvent, &dyn Clock) -> Result<S, opossum_core::Error>
            + Send
            + Sync
            + 'static,
    {
        DecisionProjection {
            state: initial,
            query,
            fold: Arc::new(fold),
            clock: Some(Arc::new(clock)),
        }
    }

    /// The events this projection depends on.
    #[must_use]
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The state folded so far: the initial state until the projection is folded.
    #[must_use]
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state folded so far, consuming the projection.
    #[must_use]
    pub fn into_state(self) -> S {
        self.state
    }

    /// Folds `event` into the state when the projection's query matches it; otherwise returns
    /// the projection unchanged.
    ///
    /// # Errors
    /// [`Error::Fold`] when a fallible fold rejects the event.
    pub fn apply(mut self, event: &SequencedEvent) -> Result<DecisionProjection<S>, Error> {
        if !self.query.matches(&event.event) {
            return Ok(self);
        }
        let clock: &dyn Clock = match &self.clock {
            Some(clock) => clock,
            None => &SystemClock,
        };
        self.state = (self.fold)(self.state, event, clock).map_err(|source| Error::Fold {
            position: event.position,
            source,
        })?;
        Ok(self)
    }
}

/// A copy with the same state, query, fold and clock (the fold and the clock are shared), so that
/// [`decide`](crate::decide) can fold a fresh copy on every attempt.
impl<S: Clone> Clone for DecisionProjection<S> {
    fn clone(&self) -> Self {
        DecisionProjection {
            state: self.state.clone(),
            query: self.query.clone(),
            fold: Arc::clone(&self.fold),
            clock: self.clock.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for DecisionProjection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionProjection")
            .field("state", &self.state)
            .field("query", &self.query)
            .field("reads_clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opossum_core::{NewEvent, Payload, Position, Timestamp};

    use super::*;
    use crate::ManualClock;

    fn stored(position: u64, event_type: &str, at: Timestamp) -> SequencedEvent {
        SequencedEvent {
            position: Position::new(position).unwrap(),
            event: NewEvent::builder(event_type, Payload::from_json("{}").unwrap())
                .timestamp(at)
                .build()
                .unwrap(),
            stored_at: None,
        }
    }

    fn epoch() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn apply_skips_events_the_query_does_not_match() {
        let p = DecisionProjection::new(
            Vec::new(),
            Query::from_event_types(["A"]).unwrap(),
            |mut seen: Vec<u64>, e| {
                seen.push(e.position.get());
                seen
            },
        );
        let p = p.apply(&stored(1, "A", epoch())).unwrap();
        let p = p.apply(&stored(2, "B", epoch())).unwrap();
        let p = p.apply(&stored(3, "A", epoch())).unwrap();
        assert_eq!(p.into_state(), [1, 3]);
    }

    #[test]
    fn a_clocked_fold_reads_the_given_clock() {
        let clock = ManualClock::new(epoch());
        let fresh = || {
            DecisionProjection::with_clock(
                false,
                Query::all(),
                clock.clone(),
                |_, e, clock: &dyn Clock| {
                    e.event.metadata().timestamp + Duration::from_secs(60) > clock.now()
                },
            )
        };
        let event = stored(1, "PriceChanged", epoch());
        assert!(fresh().apply(&event).unwrap().into_state());
        clock.advance(Duration::from_secs(61));
        assert!(!fresh().apply(&event).unwrap().into_state());
    }

    #[test]
    fn a_rejecting_fold_names_the_position() {
        let p = DecisionProjection::try_new(0, Query::all(), |_, _| {
            Err(opossum_core::Error::EmptyQuery)
        });
        let err = p.apply(&stored(7, "A", epoch())).unwrap_err();
        assert!(matches!(err, Error::Fold { position, .. } if position.get() == 7));
    }
}
