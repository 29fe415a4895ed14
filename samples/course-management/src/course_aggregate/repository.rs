//! [`CourseRepository`]: loading a course aggregate by its tag, and saving it with a
//! tag-scoped append condition instead of a stream lock.

use opossum::{AppendCondition, DomainEvent, EventStore, NewEvent, Query, ReadOptions};
use uuid::Uuid;

use super::{CourseAggregate, CourseEvent};
use crate::courses::{CourseCreated, CourseStudentLimitModified};
use crate::enrollment::StudentEnrolledToCourse;
use crate::error::AppResult;
use crate::store::{Writer, query};
use crate::tags::{COURSE_ID, STUDENT_ID};

/// Loads and saves course aggregates.
#[derive(Clone)]
pub struct CourseRepository(pub Writer);

/// The aggregate's events: the course's own types with its tag. (Other events tagged with the
/// course — announcements, book purchases — are not the aggregate's business, so they neither
/// load into it nor conflict with its saves.)
fn course_events(course_id: Uuid) -> AppResult<Query> {
    Ok(query(
        &[
            CourseCreated::EVENT_TYPE,
            CourseStudentLimitModified::EVENT_TYPE,
            StudentEnrolledToCourse::EVENT_TYPE,
        ],
        &[(COURSE_ID, &course_id)],
    )?)
}

impl CourseRepository {
    /// The course rebuilt from its events, or `None` when it has none.
    ///
    /// # Errors
    /// The store's error.
    pub async fn load(&self, course_id: Uuid) -> AppResult<Option<CourseAggregate>> {
        let events = self
            .0
            .store
            .read(&course_events(course_id)?, ReadOptions::new())
            .await?;
        Ok(CourseAggregate::reconstitute(&events)?)
    }

    /// Appends the events the aggregate recorded, on condition that no event of this course
    /// was appended after the version it was loaded at (for a new course: that the course has
    /// no event at all).
    ///
    /// # Errors
    /// A failed append condition (reload and try again), or the store's error.
    pub async fn save(&self, aggregate: &mut CourseAggregate) -> AppResult<()> {
        let recorded = aggregate.take_recorded();
        if recorded.is_empty() {
            return Ok(());
        }
        let course_id = aggregate.course_id();
        let events = recorded
            .iter()
            .map(|event| self.stored(course_id, event))
            .collect::<AppResult<Vec<_>>>()?;
        let guard = AppendCondition::new(course_events(course_id)?).after(aggregate.version());
        self.0.store.append(events, Some(guard)).await?;
        Ok(())
    }

    fn stored(&self, course_id: Uuid, event: &CourseEvent) -> AppResult<NewEvent> {
        let builder = match event {
            CourseEvent::Created(e) => self.0.event(e),
            CourseEvent::LimitModified(e) => self.0.event(e),
            // Tagged with the student too, so the decision-model side (the student's tier
            // limit) sees enrolments made through the aggregate.
            CourseEvent::Enrolled(e) => self.0.event(e).tag(STUDENT_ID, e.student_id.to_string()),
        };
        Ok(builder.tag(COURSE_ID, course_id.to_string()).build()?)
    }
}
