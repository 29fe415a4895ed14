//! Composing projections: one read, one fold pass, one append condition.

use std::time::Instant;

use opossum_core::{
    AppendCondition, EventStore, NewEvent, Position, Query, ReadOptions, SequencedEvent,
};
use tracing::Instrument;

use crate::{DecisionProjection, Error};

/// The result of [`build_decision_model`]: the folded state of every projection, and the
/// condition that guards an append made on the strength of that state.
///
/// Append through [`DecisionModel::append`], which guards the append with the model's
/// condition: it fails if any event matching any of the projections was written after the
/// read — that is, exactly when the state may be stale. [`decide`](crate::decide) does all of
/// this, and decides again when the condition failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionModel<St> {
    /// The folded state: `S` for one projection, a tuple for two or three, a `Vec` (in the
    /// order given) for a list.
    pub state: St,
    condition: AppendCondition,
}

impl<St> DecisionModel<St> {
    /// The condition that guards an append decided on this state. Its query is the union of
    /// the projections' queries; its `after` is the highest position read, or `None` when the
    /// read returned nothing.
    #[must_use]
    pub fn condition(&self) -> &AppendCondition {
        &self.condition
    }

    /// The state and the condition, taken apart (to append through an API of your own; pass
    /// the condition on).
    #[must_use]
    pub fn into_parts(self) -> (St, AppendCondition) {
        (self.state, self.condition)
    }

    /// Appends `events` guarded by this model's condition, and returns the position of the last
    /// one.
    ///
    /// # Errors
    /// [`Error::Store`] holding [`opossum_core::Error::ConditionFailed`] when an event the
    /// decision depended on was appended since the read (nothing was appended: decide again),
    /// or the store's own failure.
    pub async fn append<S>(&self, store: &S, events: Vec<NewEvent>) -> Result<Position, Error>
    where
        S: EventStore + ?Sized,
    {
        Ok(store.append(events, Some(self.condition.clone())).await?)
    }
}

/// A set of [`DecisionProjection`]s that [`build_decision_model`] can fold from one read.
///
/// Implemented for a single projection, for tuples of two or three projections with different
/// state types, and for a `Vec` of projections of one state type.
pub trait ProjectionSet {
    /// What folding the set yields: `S`, `(S1, S2)`, `(S1, S2, S3)` or `Vec<S>`.
    type State;

    /// The union of the projections' queries: the events the decision depends on. It is
    /// [`Query::all`] when any projection's query is.
    ///
    /// # Errors
    /// [`Error::NoProjections`] for an empty `Vec`.
    fn union_query(&self) -> Result<Query, Error>;

    /// Folds `events`, which must be in ascending position order, into every projection.
    /// Events are visited once each, in position order; each projection folds only those its
    /// own query matches.
    ///
    /// # Errors
    /// [`Error::Fold`] when a fallible fold rejects an event.
    fn fold(self, events: &[SequencedEvent]) -> Result<Self::State, Error>;
}

impl<S> ProjectionSet for DecisionProjection<S> {
    type State = S;

    fn union_query(&self) -> Result<Query, Error> {
        Ok(self.query().clone())
    }

    fn fold(self, events: &[SequencedEvent]) -> Result<S, Error> {
        events
            .iter()
            .try_fold(self, DecisionProjection::apply)
            .map(DecisionProjection::into_state)
    }
}

impl<S1> ProjectionSet for (DecisionProjection<S1>,) {
    type State = (S1,);

    fn union_query(&self) -> Result<Query, Error> {
        Ok(self.0.query().clone())
    }

    fn fold(self, events: &[SequencedEvent]) -> Result<(S1,), Error> {
        self.0.fold(events).map(|s| (s,))
    }
}

impl<S1, S2> ProjectionSet for (DecisionProjection<S1>, DecisionProjection<S2>) {
    type State = (S1, S2);

    fn union_query(&self) -> Result<Query, Error> {
        Ok(self.0.query().union(self.1.query()))
    }

    fn fold(self, events: &[SequencedEvent]) -> Result<(S1, S2), Error> {
        let (mut a, mut b) = self;
        for event in events {
            a = a.apply(event)?;
            b = b.apply(event)?;
        }
        Ok((a.into_state(), b.into_state()))
    }
}

impl<S1, S2, S3> ProjectionSet
    for (
        DecisionProjection<S1>,
        DecisionProjection<S2>,
        DecisionProjection<S3>,
    )
{
    type State = (S1, S2, S3);

    fn union_query(&self) -> Result<Query, Error> {
        Ok(self.0.query().union(self.1.query()).union(self.2.query()))
    }

    fn fold(self, events: &[SequencedEvent]) -> Result<(S1, S2, S3), Error> {
        let (mut a, mut b, mut c) = self;
        for event in events {
            a = a.apply(event)?;
            b = b.apply(event)?;
            c = c.apply(event)?;
        }
        Ok((a.into_state(), b.into_state(), c.into_state()))
    }
}

impl<S> ProjectionSet for Vec<DecisionProjection<S>> {
    type State = Vec<S>;

    fn union_query(&self) -> Result<Query, Error> {
        let (first, rest) = self.split_first().ok_or(Error::NoProjections)?;
        Ok(rest
            .iter()
            .fold(first.query().clone(), |union, p| union.union(p.query())))
    }

    fn fold(self, events: &[SequencedEvent]) -> Result<Vec<S>, Error> {
        // Each `apply` moves its projection, so every event moves the list from one buffer to
        // the other; the two buffers are reused, not reallocated.
        let mut current = self;
        let mut next = Vec::with_capacity(current.len());
        for event in events {
            for projection in current.drain(..) {
                next.push(projection.apply(event)?);
            }
            std::mem::swap(&mut current, &mut next);
        }
        Ok(current
            .into_iter()
            .map(DecisionProjection::into_state)
            .collect())
    }
}

/// Reads once, folds every projection, and returns their states with one [`AppendCondition`].
///
/// `projections` is a single [`DecisionProjection`], a tuple of two or three (each with its own
/// state type), or a `Vec` (see also [`build_decision_model_many`]). The store is read **once**,
/// over the union of the projections' queries; each projection then folds, in position order,
/// only the events its own query matches.
///
/// The returned condition's query is that union and its `after` is the highest position read,
/// so an append made with it fails exactly when an event relevant to *any* of the projections
/// was written after the read, and succeeds whatever happens elsewhere in the store.
///
/// Works on any [`EventStore`].
///
/// ```
/// use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Query};
/// use opossum_decision::{build_decision_model, DecisionModel, DecisionProjection};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = InMemoryEventStore::new();
/// let ping = NewEvent::builder("Ping", Payload::from_json("{}")?).build()?;
/// store.append(vec![ping], None).await?;
///
/// let pings = DecisionProjection::new(0, Query::from_event_types(["Ping"])?, |n, _| n + 1);
/// let any_pong = DecisionProjection::new(false, Query::from_event_types(["Pong"])?, |_, _| true);
///
/// let ((pings, any_pong), condition) =
///     build_decision_model(&store, (pings, any_pong)).await?.into_parts();
/// assert_eq!((pings, any_pong), (1, false));
/// assert_eq!(condition.after.map(|p| p.get()), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Store`] when the read fails, [`Error::Fold`] when a fallible fold rejects an event,
/// [`Error::NoProjections`] for an empty `Vec`.
pub async fn build_decision_model<St, P>(
    store: &St,
    projections: P,
) -> Result<DecisionModel<P::State>, Error>
where
    St: EventStore + ?Sized,
    P: ProjectionSet,
{
    let query = projections.union_query()?;
    let started = Instant::now();
    let span = tracing::debug_span!(
        "build_decision_model",
        events = tracing::field::Empty,
        after = tracing::field::Empty,
    );
    let events = store
        .read(&query, ReadOptions::new())
        .instrument(span.clone())
        .await?;
    debug_assert!(
        events.windows(2).all(|w| w[0].position < w[1].position),
        "EventStore::read must return events in ascending position order"
    );
    let after = events.iter().map(|e| e.position).max();
    span.record("events", events.len());
    if let Some(after) = after {
        span.record("after", after.get());
    }
    let state = span.in_scope(|| projections.fold(&events))?;
    tracing::trace!(parent: &span, elapsed = ?started.elapsed(), "decision model built");
    Ok(DecisionModel {
        state,
        condition: AppendCondition::new(query).after(after),
    })
}

/// [`build_decision_model`] for a list of projections of one state type, decided on together
/// (for example one price projection per item of a shopping cart). `state[i]` is the state of
/// `projections[i]`.
///
/// # Errors
/// [`Error::NoProjections`] when `projections` is empty; otherwise as [`build_decision_model`].
pub async fn build_decision_model_many<St, S>(
    store: &St,
    projections: Vec<DecisionProjection<S>>,
) -> Result<DecisionModel<Vec<S>>, Error>
where
    St: EventStore + ?Sized,
{
    build_decision_model(store, projections).await
}

#[cfg(test)]
mod tests {
    use opossum_core::{NewEvent, Payload, Position};

    use super::*;

    fn stored(position: u64, event_type: &str) -> SequencedEvent {
        SequencedEvent {
            position: Position::new(position).unwrap(),
            event: NewEvent::builder(event_type, Payload::from_json("{}").unwrap())
                .build()
                .unwrap(),
            stored_at: None,
        }
    }

    fn types(names: &[&str]) -> Query {
        Query::from_event_types(names).unwrap()
    }

    fn positions(query: Query) -> DecisionProjection<Vec<u64>> {
        DecisionProjection::new(Vec::new(), query, |mut seen, e| {
            seen.push(e.position.get());
            seen
        })
    }

    #[test]
    fn the_union_of_a_tuple_covers_every_query() {
        let set = (
            positions(types(&["A"])),
            positions(types(&["B"])),
            positions(types(&["C"])),
        );
        let union = set.union_query().unwrap();
        for t in ["A", "B", "C"] {
            assert!(union.matches(&stored(1, t).event), "{t}");
        }
        assert!(!union.matches(&stored(1, "D").event));
    }

    #[test]
    fn an_all_query_makes_the_union_all() {
        let set = vec![positions(types(&["A"])), positions(Query::all())];
        assert!(set.union_query().unwrap().is_all());
        let pair = (positions(Query::all()), positions(types(&["B"])));
        assert!(pair.union_query().unwrap().is_all());
    }

    #[test]
    fn an_empty_list_has_no_union() {
        let empty: Vec<DecisionProjection<u8>> = Vec::new();
        assert!(matches!(empty.union_query(), Err(Error::NoProjections)));
    }

    #[test]
    fn each_projection_of_a_list_folds_its_own_events() {
        let events = [
            stored(1, "A"),
            stored(2, "B"),
            stored(3, "A"),
            stored(4, "C"),
        ];
        let set = vec![positions(types(&["A"])), positions(types(&["B", "C"]))];
        assert_eq!(set.fold(&events).unwrap(), [vec![1, 3], vec![2, 4]]);
    }

    #[test]
    fn a_fold_error_stops_the_set() {
        let failing = DecisionProjection::try_new((), types(&["B"]), |(), _| {
            Err(opossum_core::Error::EmptyQuery)
        });
        let set = (positions(types(&["A"])), failing);
        let err = set.fold(&[stored(1, "A"), stored(2, "B")]).unwrap_err();
        assert!(matches!(err, Error::Fold { position, .. } if position.get() == 2));
    }
}
