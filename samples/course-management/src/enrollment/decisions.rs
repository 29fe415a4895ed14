//! The student-side decision projections of an enrolment (the course side is
//! `courses::course_capacity`).

use opossum::{DecisionProjection, DomainEvent, EventStoreError};
use uuid::Uuid;

use super::StudentEnrolledToCourse;
use crate::store::query;
use crate::students::{StudentRegistered, StudentSubscriptionUpdated, Tier};
use crate::tags::{COURSE_ID, STUDENT_ID};

/// A student's tier and how many courses they take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StudentLimit {
    /// The tier.
    pub tier: Tier,
    /// Courses enrolled in.
    pub courses: u32,
}

impl StudentLimit {
    /// True when the tier allows no more courses.
    #[must_use]
    pub fn is_at_limit(&self) -> bool {
        self.courses >= self.tier.max_courses()
    }
}

/// The student's tier limit; `None` until the student is registered.
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn student_limit(
    student: Uuid,
) -> Result<DecisionProjection<Option<StudentLimit>>, EventStoreError> {
    let events = query(
        &[
            StudentRegistered::EVENT_TYPE,
            StudentSubscriptionUpdated::EVENT_TYPE,
            StudentEnrolledToCourse::EVENT_TYPE,
        ],
        &[(STUDENT_ID, &student)],
    )?;
    Ok(DecisionProjection::try_new(
        None,
        events,
        |state: Option<StudentLimit>, event| {
            if event.is::<StudentRegistered>() {
                return Ok(Some(StudentLimit {
                    tier: Tier::Basic,
                    courses: 0,
                }));
            }
            let Some(mut limit) = state else {
                return Ok(None);
            };
            if event.is::<StudentSubscriptionUpdated>() {
                limit.tier = event
                    .decode::<StudentSubscriptionUpdated>()?
                    .enrollment_tier;
            } else {
                limit.courses += 1;
            }
            Ok(Some(limit))
        },
    ))
}

/// Is this exact student enrolled in this exact course? Both tags are required, so only the
/// pair's own enrolment matches.
///
/// # Errors
/// As [`student_limit`].
pub fn already_enrolled(
    course: Uuid,
    student: Uuid,
) -> Result<DecisionProjection<bool>, EventStoreError> {
    let pair = query(
        &[StudentEnrolledToCourse::EVENT_TYPE],
        &[(COURSE_ID, &course), (STUDENT_ID, &student)],
    )?;
    Ok(DecisionProjection::new(false, pair, |_, _| true))
}
