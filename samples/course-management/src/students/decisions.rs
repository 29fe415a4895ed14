//! Decision projections about students, shared by the features that need them.

use opossum::{DecisionProjection, DomainEvent, EventStoreError};
use uuid::Uuid;

use super::{StudentRegistered, StudentSubscriptionUpdated, Tier};
use crate::store::query;
use crate::tags::STUDENT_ID;

/// Is the student registered? Registrations are never undone, so a `true` stays true.
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn registered(student: Uuid) -> Result<DecisionProjection<bool>, EventStoreError> {
    let registrations = query(&[StudentRegistered::EVENT_TYPE], &[(STUDENT_ID, &student)])?;
    Ok(DecisionProjection::new(false, registrations, |_, _| true))
}

/// The student's tier; `None` until the student is registered.
///
/// # Errors
/// As [`registered`].
pub fn current_tier(student: Uuid) -> Result<DecisionProjection<Option<Tier>>, EventStoreError> {
    let events = query(
        &[
            StudentRegistered::EVENT_TYPE,
            StudentSubscriptionUpdated::EVENT_TYPE,
        ],
        &[(STUDENT_ID, &student)],
    )?;
    Ok(DecisionProjection::try_new(None, events, |tier, event| {
        Ok(match (tier, event.is::<StudentRegistered>()) {
            (_, true) => Some(Tier::Basic),
            (None, false) => None,
            (Some(_), false) => Some(
                event
                    .decode::<StudentSubscriptionUpdated>()?
                    .enrollment_tier,
            ),
        })
    }))
}
