//! The aggregate's commands, each a load → act → save loop with bounded retries.

use std::time::Duration;

use opossum::{AppContext, Handler, Message};
use serde::Serialize;
use uuid::Uuid;

use super::{CourseAggregate, CourseRepository, RuleViolation};
use crate::error::{AppError, AppResult};
use crate::store::Writer;

/// How many times a command loads, acts and saves before a conflict is reported (409).
pub const MAX_ATTEMPTS: u32 = 6;

/// Create a course through the aggregate.
#[derive(Clone, Debug)]
pub struct CreateAggregateCourse {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity.
    pub max_student_count: u32,
}

impl Message for CreateAggregateCourse {
    type Output = AppResult<Uuid>;
}

/// Change a course's capacity through the aggregate.
#[derive(Clone, Copy, Debug)]
pub struct ChangeAggregateCapacity {
    /// The course.
    pub course_id: Uuid,
    /// The new capacity.
    pub new_capacity: u32,
}

impl Message for ChangeAggregateCapacity {
    type Output = AppResult<CourseAggregateView>;
}

/// Enrol a student through the aggregate (checks capacity and duplicates, not the tier).
#[derive(Clone, Copy, Debug)]
pub struct SubscribeToAggregateCourse {
    /// The course.
    pub course_id: Uuid,
    /// The student.
    pub student_id: Uuid,
}

impl Message for SubscribeToAggregateCourse {
    type Output = AppResult<CourseAggregateView>;
}

/// The aggregate's current state.
#[derive(Clone, Copy, Debug)]
pub struct GetAggregateCourse {
    /// The course.
    pub course_id: Uuid,
}

impl Message for GetAggregateCourse {
    type Output = AppResult<CourseAggregateView>;
}

/// What the aggregate holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseAggregateView {
    /// The course.
    pub course_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capacity.
    pub capacity: u32,
    /// Students enrolled.
    pub enrollment_count: usize,
    /// The students, in order.
    pub enrolled_students: Vec<Uuid>,
    /// The store position of its last event.
    pub version: Option<u64>,
}

impl From<&CourseAggregate> for CourseAggregateView {
    fn from(course: &CourseAggregate) -> Self {
        CourseAggregateView {
            course_id: course.course_id(),
            name: course.name().to_owned(),
            description: course.description().to_owned(),
            capacity: course.capacity(),
            enrollment_count: course.enrolled().len(),
            enrolled_students: course.enrolled().to_vec(),
            version: course.version().map(|p| p.get()),
        }
    }
}

impl From<RuleViolation> for AppError {
    fn from(violation: RuleViolation) -> AppError {
        AppError::Rule(violation.0)
    }
}

/// Handles the aggregate's commands.
#[derive(Clone)]
pub struct AggregateCommands {
    repository: CourseRepository,
}

impl AggregateCommands {
    /// The repository of the app being built.
    ///
    /// # Errors
    /// Never; the signature fits `OpossumBuilder::handler_with`.
    pub fn from_context(app: &AppContext) -> Result<AggregateCommands, opossum::Error> {
        Ok(AggregateCommands {
            repository: CourseRepository(Writer::from_context(app)?),
        })
    }

    /// Load, act, save; on a conflict reload and act again, at most [`MAX_ATTEMPTS`] times. A
    /// broken rule is never retried.
    async fn change(
        &self,
        course_id: Uuid,
        act: impl Fn(&mut CourseAggregate) -> Result<(), RuleViolation>,
    ) -> AppResult<CourseAggregateView> {
        let mut attempt = 1;
        loop {
            let Some(mut course) = self.repository.load(course_id).await? else {
                return Err(AppError::not_found(format!(
                    "Course {course_id} does not exist."
                )));
            };
            act(&mut course)?;
            match self.repository.save(&mut course).await {
                Ok(()) => return Ok(CourseAggregateView::from(&course)),
                Err(e) if e.is_condition_failed() && attempt < MAX_ATTEMPTS => {
                    // Someone changed the course since the load. Wait a moment, jittered so
                    // that the writers who collided spread out, then start over.
                    let jitter = u64::try_from(Uuid::new_v4().as_u128() % 8).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(jitter << attempt.min(4))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Handler<CreateAggregateCourse> for AggregateCommands {
    async fn handle(&self, command: CreateAggregateCourse) -> AppResult<Uuid> {
        let course_id = Uuid::new_v4();
        let mut course = CourseAggregate::create(
            course_id,
            &command.name,
            &command.description,
            command.max_student_count,
        )?;
        self.repository.save(&mut course).await?;
        Ok(course_id)
    }
}

impl Handler<ChangeAggregateCapacity> for AggregateCommands {
    async fn handle(&self, command: ChangeAggregateCapacity) -> AppResult<CourseAggregateView> {
        self.change(command.course_id, |course| {
            course.change_capacity(command.new_capacity)
        })
        .await
    }
}

impl Handler<SubscribeToAggregateCourse> for AggregateCommands {
    async fn handle(&self, command: SubscribeToAggregateCourse) -> AppResult<CourseAggregateView> {
        self.change(command.course_id, |course| {
            course.subscribe_student(command.student_id)
        })
        .await
    }
}

impl Handler<GetAggregateCourse> for AggregateCommands {
    async fn handle(&self, query: GetAggregateCourse) -> AppResult<CourseAggregateView> {
        match self.repository.load(query.course_id).await? {
            Some(course) => Ok(CourseAggregateView::from(&course)),
            None => Err(AppError::not_found(format!(
                "Course {} does not exist.",
                query.course_id
            ))),
        }
    }
}
