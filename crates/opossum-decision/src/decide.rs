//! [`decide`]: read, let a pure function decide, and append with the model's condition.

use opossum_core::{EventStore, NewEvent, Position};
use tracing::Instrument;

use crate::retry::Attempts;
use crate::{Error, ProjectionSet, RetryPolicy, build_decision_model};

/// What a decision function returns to [`decide`]: the events to append (none, when the state
/// already is what the command asks for) and an outcome to hand back to the caller.
///
/// ```
/// use opossum_core::{NewEvent, Payload};
/// use opossum_decision::Decision;
///
/// # fn main() -> Result<(), opossum_core::Error> {
/// let event = NewEvent::builder("InvoiceCreated", Payload::from_json(r#"{"number":7}"#)?).build()?;
/// let create = Decision::append(vec![event]).returning(7_u64);
/// assert_eq!(create.events().len(), 1);
///
/// let unchanged = Decision::nothing();
/// assert!(unchanged.events().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "return the decision to `decide`"]
pub struct Decision<T = ()> {
    events: Vec<NewEvent>,
    outcome: T,
}

impl Decision<()> {
    /// Append `events`, guarded by the model's condition. An empty list appends nothing, like
    /// [`Decision::nothing`].
    pub fn append(events: Vec<NewEvent>) -> Decision<()> {
        Decision {
            events,
            outcome: (),
        }
    }

    /// Append nothing: the state already is what the command asks for.
    pub fn nothing() -> Decision<()> {
        Decision::append(Vec::new())
    }
}

impl<T> Decision<T> {
    /// The same events, handing `outcome` back to the caller of [`decide`] once they are
    /// appended.
    pub fn returning<U>(self, outcome: U) -> Decision<U> {
        Decision {
            events: self.events,
            outcome,
        }
    }

    /// The events to append.
    #[must_use]
    pub fn events(&self) -> &[NewEvent] {
        &self.events
    }
}

/// What [`decide`] did: the decision's outcome, and where its events were appended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decided<T> {
    /// What the decision function returned with its events.
    pub outcome: T,
    /// The position of the last event appended, or `None` when the decision appended nothing.
    pub position: Option<Position>,
    /// How many times the state was read and decided on (1 when nobody else wrote meanwhile).
    pub attempts: u32,
}

/// The DCB cycle in one call: reads `projections` from `store` once, lets `decision` — a pure
/// function of their state — decide, and appends its events **guarded by the model's append
/// condition**; when another writer appended an event the decision depended on, it reads and
/// decides again, with the default [`RetryPolicy`] (3 attempts, jittered backoff).
///
/// The condition is never left to the caller, so it cannot be dropped by mistake. `decision`
/// rejects a command by returning its own error (`Err(e)` is handed back at once, nothing is
/// appended); store failures convert into `E` through `From<opossum_decision::Error>`, and a
/// condition that failed on every attempt arrives as [`Error::Store`] holding
/// [`opossum_core::Error::ConditionFailed`].
///
/// `projections` is a [`DecisionProjection`](crate::DecisionProjection), a tuple of two or
/// three, or a `Vec` (as for [`build_decision_model`]); it is cloned for each attempt.
///
/// ```
/// use opossum_core::{DomainEvent, EventStore, InMemoryEventStore, NewEvent, Query};
/// use opossum_decision::{decide, Decision, DecisionProjection};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct InvoiceCreated { number: u64 }
/// impl DomainEvent for InvoiceCreated { const EVENT_TYPE: &'static str = "InvoiceCreated"; }
///
/// #[derive(Debug, thiserror::Error)]
/// enum InvoiceError {
///     #[error("invoice numbers are used up")]
///     Exhausted,
///     #[error(transparent)]
///     Decision(#[from] opossum_decision::Error),
/// }
///
/// async fn create_invoice(store: &impl EventStore) -> Result<u64, InvoiceError> {
///     let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])
///         .map_err(opossum_decision::Error::from)?;
///     let last = DecisionProjection::try_new(0_u64, invoices, |last, event| {
///         Ok(last.max(event.decode::<InvoiceCreated>()?.number))
///     });
///     // The decision function names its error type: `decide` returns it, and `?` converts.
///     let decided = decide(store, last, |last| -> Result<_, InvoiceError> {
///         let number = last.checked_add(1).ok_or(InvoiceError::Exhausted)?;
///         let event = NewEvent::from_typed(&InvoiceCreated { number })
///             .build()
///             .map_err(opossum_decision::Error::from)?;
///         Ok(Decision::append(vec![event]).returning(number))
///     })
///     .await?;
///     Ok(decided.outcome)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let store = InMemoryEventStore::new();
/// assert_eq!(create_invoice(&store).await?, 1);
/// assert_eq!(create_invoice(&store).await?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Backoffs sleep on Tokio's timer: run decisions inside a Tokio runtime with the time driver
/// enabled. Dropping the future cancels the decision safely (see
/// [`execute_decision_with`](crate::execute_decision_with)).
///
/// # Errors
/// `decision`'s own error, at once; otherwise [`Error`] converted into `E`: the store's failure,
/// a projection's fold rejecting an event, or the failed condition of the last attempt.
pub async fn decide<St, P, F, T, E>(
    store: &St,
    projections: P,
    decision: F,
) -> Result<Decided<T>, E>
where
    St: EventStore + ?Sized,
    P: ProjectionSet + Clone,
    F: FnMut(P::State) -> Result<Decision<T>, E>,
    E: From<Error>,
{
    decide_with(store, RetryPolicy::default(), projections, decision).await
}

/// [`decide`] under `policy`.
///
/// # Errors
/// As [`decide`].
pub async fn decide_with<St, P, F, T, E>(
    store: &St,
    policy: RetryPolicy,
    projections: P,
    mut decision: F,
) -> Result<Decided<T>, E>
where
    St: EventStore + ?Sized,
    P: ProjectionSet + Clone,
    F: FnMut(P::State) -> Result<Decision<T>, E>,
    E: From<Error>,
{
    let mut attempts = Attempts::new(policy);
    let mut attempt = 1;
    loop {
        let span = attempts.span();
        let model = build_decision_model(store, projections.clone())
            .instrument(span.clone())
            .await?;
        let (state, condition) = model.into_parts();
        let Decision { events, outcome } = span.in_scope(|| decision(state))?;
        if events.is_empty() {
            return Ok(Decided {
                outcome,
                position: None,
                attempts: attempt,
            });
        }
        match store
            .append(events, Some(condition))
            .instrument(span.clone())
            .await
        {
            Ok(position) => {
                return Ok(Decided {
                    outcome,
                    position: Some(position),
                    attempts: attempt,
                });
            }
            Err(e) if e.is_condition_failed() && attempts.again(&span).await => attempt += 1,
            Err(e) => return Err(E::from(Error::Store(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use opossum_core::{InMemoryEventStore, Payload, Query};

    use super::*;
    use crate::{DecisionProjection, Jitter};

    fn ping() -> NewEvent {
        NewEvent::builder("Ping", Payload::from_json("{}").unwrap())
            .build()
            .unwrap()
    }

    fn pings() -> DecisionProjection<u32> {
        DecisionProjection::new(0, Query::from_event_types(["Ping"]).unwrap(), |n, _| n + 1)
    }

    fn quick() -> RetryPolicy {
        RetryPolicy::default()
            .max_attempts(4)
            .initial_backoff(std::time::Duration::from_millis(1))
            .jitter(Jitter::None)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn appends_with_the_condition_and_decides_again_after_a_conflict() {
        runtime().block_on(async {
            let store = InMemoryEventStore::new();
            let calls = AtomicU32::new(0);
            let decided = decide_with(&store, quick(), pings(), |count| {
                // Another writer appends a Ping between the read and the append of the first
                // attempt only.
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    store.append_blocking(vec![ping()], None).unwrap();
                }
                Ok::<_, Error>(Decision::append(vec![ping()]).returning(count))
            })
            .await
            .unwrap();
            assert_eq!(decided.attempts, 2);
            // The second attempt saw the intruder's Ping.
            assert_eq!(decided.outcome, 1);
            assert_eq!(decided.position.map(Position::get), Some(2));
            assert_eq!(store.len(), 2);
        });
    }

    #[test]
    fn nothing_to_append_appends_nothing_and_a_rejection_is_returned_at_once() {
        runtime().block_on(async {
            let store = InMemoryEventStore::new();
            let decided = decide(&store, pings(), |_| Ok::<_, Error>(Decision::nothing()))
                .await
                .unwrap();
            assert_eq!((decided.position, decided.attempts), (None, 1));
            let rejected: Result<Decided<()>, Error> =
                decide(&store, pings(), |_| Err(Error::NoProjections)).await;
            assert!(matches!(rejected, Err(Error::NoProjections)));
            assert!(store.is_empty());
        });
    }

    #[test]
    fn a_condition_that_always_fails_gives_up_after_the_policy_attempts() {
        runtime().block_on(async {
            let store = InMemoryEventStore::new();
            let calls = AtomicU32::new(0);
            let result = decide_with(&store, quick(), pings(), |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                store.append_blocking(vec![ping()], None).unwrap();
                Ok::<_, Error>(Decision::append(vec![ping()]))
            })
            .await;
            let error = result.unwrap_err();
            assert!(error.is_condition_failed(), "{error}");
            assert_eq!(calls.load(Ordering::SeqCst), 4);
            // Only the intruder's events were appended.
            assert_eq!(store.len(), 4);
        });
    }
}
