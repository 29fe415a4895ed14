//! The aggregate's commands, each a load → act → save loop with bounded retries.

use std::time::Duration;

use opossum::{AppContext, Handler, Message};
use serde::Serialize;
use uuid::Uuid;

use super::{CourseAggregate, CourseRepository, RuleViolation};
use crate::courses::{valid_course_text, valid_limit, valid_limit_of};
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

/// Change a course's capacity through the aggregate. The current capacity again is a no-op
/// that succeeds (idempotent).
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

/// Enrol a student through the aggregate: the student must be registered (checked with the
/// course, in one decision); capacity and duplicates are checked, not the tier.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
                return Err(no_course(course_id));
            };
            act(&mut course)?;
            match self.repository.save(&mut course).await {
                Ok(()) => return Ok(CourseAggregateView::from(&course)),
                Err(e) if e.is_condition_failed() && attempt < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`AggregateCommands::change`] for a subscription: the course is loaded with the
    /// student's registration, an unknown student is refused (404) like an unknown course, and
    /// the save's condition guards both.
    async fn subscribe(&self, course_id: Uuid, student_id: Uuid) -> AppResult<CourseAggregateView> {
        let mut attempt = 1;
        loop {
            let mut loaded = self
                .repository
                .load_with_student(course_id, student_id)
                .await?;
            let Some(mut course) = loaded.course.take() else {
                return Err(no_course(course_id));
            };
            if !loaded.student_registered {
                return Err(AppError::not_found(format!(
                    "Student {student_id} does not exist."
                )));
            }
            course.subscribe_student(student_id)?;
            match self
                .repository
                .save_with_student(&mut course, &loaded)
                .await
            {
                Ok(()) => return Ok(CourseAggregateView::from(&course)),
                Err(e) if e.is_condition_failed() && attempt < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn no_course(course_id: Uuid) -> AppError {
    AppError::not_found(format!("Course {course_id} does not exist."))
}

/// Someone changed the course since the load. Wait a moment, jittered so that the writers who
/// collided spread out, before starting over.
async fn backoff(attempt: u32) {
    let jitter = u64::try_from(Uuid::new_v4().as_u128() % 8).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(jitter << attempt.min(4))).await;
}

impl Handler<CreateAggregateCourse> for AggregateCommands {
    async fn handle(&self, command: CreateAggregateCourse) -> AppResult<Uuid> {
        // The request is checked as `/courses` checks it (invalid-request, not rule-violated).
        let (name, description) = valid_course_text(&command.name, &command.description)?;
        let capacity = valid_limit(command.max_student_count)?;
        let course_id = Uuid::new_v4();
        let mut course = CourseAggregate::create(course_id, &name, &description, capacity)?;
        self.repository.save(&mut course).await?;
        Ok(course_id)
    }
}

impl Handler<ChangeAggregateCapacity> for AggregateCommands {
    async fn handle(&self, command: ChangeAggregateCapacity) -> AppResult<CourseAggregateView> {
        valid_limit_of("newCapacity", command.new_capacity)?;
        self.change(command.course_id, |course| {
            course.change_capacity(command.new_capacity)
        })
        .await
    }
}

impl Handler<SubscribeToAggregateCourse> for AggregateCommands {
    async fn handle(&self, command: SubscribeToAggregateCourse) -> AppResult<CourseAggregateView> {
        self.subscribe(command.course_id, command.student_id).await
    }
}

impl Handler<GetAggregateCourse> for AggregateCommands {
    async fn handle(&self, query: GetAggregateCourse) -> AppResult<CourseAggregateView> {
        match self.repository.load(query.course_id).await? {
            Some(course) => Ok(CourseAggregateView::from(&course)),
            None => Err(no_course(query.course_id)),
        }
    }
}
