//! [`CourseRepository`]: loading a course aggregate by its tag, and saving it with a
//! tag-scoped append condition instead of a stream lock.

use opossum::{AppendCondition, DomainEvent, EventStore, NewEvent, Position, Query, ReadOptions};
use uuid::Uuid;

use super::{CourseAggregate, CourseEvent};
use crate::courses::{CourseCreated, CourseStudentLimitModified};
use crate::enrollment::StudentEnrolledToCourse;
use crate::error::AppResult;
use crate::store::{Writer, query};
use crate::students::StudentRegistered;
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

/// The student's registration.
fn registration(student_id: Uuid) -> AppResult<Query> {
    Ok(query(
        &[StudentRegistered::EVENT_TYPE],
        &[(STUDENT_ID, &student_id)],
    )?)
}

/// A course loaded together with a student's registration, in one read, for a subscription:
/// the student's existence is decided on like the course's state, and saving with
/// [`CourseRepository::save_with_student`] guards both.
#[derive(Debug)]
pub struct CourseWithStudent {
    /// The course, or `None` when it has no event.
    pub course: Option<CourseAggregate>,
    /// True when the student is registered.
    pub student_registered: bool,
    /// The highest position read (of the course's events and the registration).
    read_up_to: Option<Position>,
    /// The union of the course's events and the student's registration.
    boundary: Query,
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

    /// The course and whether `student_id` is registered, read at once over the union of the
    /// course's events and the student's registration.
    ///
    /// # Errors
    /// The store's error.
    pub async fn load_with_student(
        &self,
        course_id: Uuid,
        student_id: Uuid,
    ) -> AppResult<CourseWithStudent> {
        let boundary = course_events(course_id)?.union(&registration(student_id)?);
        let events = self.0.store.read(&boundary, ReadOptions::new()).await?;
        let read_up_to = events.iter().map(|e| e.position).max();
        let (registrations, course): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| e.is::<StudentRegistered>());
        Ok(CourseWithStudent {
            course: CourseAggregate::reconstitute(&course)?,
            student_registered: !registrations.is_empty(),
            read_up_to,
            boundary,
        })
    }

    /// Appends the events the aggregate recorded, on condition that no event of this course
    /// was appended after the version it was loaded at (for a new course: that the course has
    /// no event at all).
    ///
    /// # Errors
    /// A failed append condition (reload and try again), or the store's error.
    pub async fn save(&self, aggregate: &mut CourseAggregate) -> AppResult<()> {
        let guard =
            AppendCondition::new(course_events(aggregate.course_id())?).after(aggregate.version());
        self.append_recorded(aggregate, guard).await
    }

    /// [`CourseRepository::save`] for a course loaded with [`load_with_student`]: the condition
    /// spans the course's events and the student's registration, after the highest position
    /// that read saw, so the decision was made on the state the append is made on.
    ///
    /// [`load_with_student`]: CourseRepository::load_with_student
    ///
    /// # Errors
    /// As [`CourseRepository::save`].
    pub async fn save_with_student(
        &self,
        aggregate: &mut CourseAggregate,
        loaded: &CourseWithStudent,
    ) -> AppResult<()> {
        let guard = AppendCondition::new(loaded.boundary.clone()).after(loaded.read_up_to);
        self.append_recorded(aggregate, guard).await
    }

    async fn append_recorded(
        &self,
        aggregate: &mut CourseAggregate,
        guard: AppendCondition,
    ) -> AppResult<()> {
        let recorded = aggregate.take_recorded();
        if recorded.is_empty() {
            return Ok(());
        }
        let course_id = aggregate.course_id();
        let events = recorded
            .iter()
            .map(|event| self.stored(course_id, event))
            .collect::<AppResult<Vec<_>>>()?;
        let last = self.0.store.append(events, Some(guard)).await?;
        aggregate.saved_at(last);
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
