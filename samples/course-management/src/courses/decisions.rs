//! Decision projections about courses, shared by the features that need them.

use opossum::{DecisionProjection, DomainEvent, EventStoreError};
use uuid::Uuid;

use super::{CourseCreated, CourseStudentLimitModified};
use crate::enrollment::StudentEnrolledToCourse;
use crate::store::query;
use crate::tags::COURSE_ID;

/// A course's limit and how many students it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CourseCapacity {
    /// The student limit.
    pub max_students: u32,
    /// Students enrolled.
    pub enrolled: u32,
}

impl CourseCapacity {
    /// True when no seat is free.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.enrolled >= self.max_students
    }
}

/// Does the course exist? Courses are never deleted, so a `true` stays true.
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn course_exists(course: Uuid) -> Result<DecisionProjection<bool>, EventStoreError> {
    let created = query(&[CourseCreated::EVENT_TYPE], &[(COURSE_ID, &course)])?;
    Ok(DecisionProjection::new(false, created, |_, _| true))
}

/// The course's capacity; `None` until it is created.
///
/// # Errors
/// As [`course_exists`].
pub fn course_capacity(
    course: Uuid,
) -> Result<DecisionProjection<Option<CourseCapacity>>, EventStoreError> {
    let events = query(
        &[
            CourseCreated::EVENT_TYPE,
            CourseStudentLimitModified::EVENT_TYPE,
            StudentEnrolledToCourse::EVENT_TYPE,
        ],
        &[(COURSE_ID, &course)],
    )?;
    Ok(DecisionProjection::try_new(
        None,
        events,
        |state: Option<CourseCapacity>, event| {
            if event.is::<CourseCreated>() {
                let created = event.decode::<CourseCreated>()?;
                return Ok(Some(CourseCapacity {
                    max_students: created.max_student_count,
                    enrolled: 0,
                }));
            }
            let Some(mut capacity) = state else {
                return Ok(None);
            };
            if event.is::<CourseStudentLimitModified>() {
                capacity.max_students = event
                    .decode::<CourseStudentLimitModified>()?
                    .new_max_student_count;
            } else {
                capacity.enrolled += 1;
            }
            Ok(Some(capacity))
        },
    ))
}
