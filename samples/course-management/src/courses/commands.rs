//! Creating a course and changing its student limit.

use opossum::{Decision, EventStore, Handler, Message, decide_with};
use uuid::Uuid;

use super::{CourseCreated, CourseStudentLimitModified, course_capacity};
use crate::error::{AppError, AppResult, MAX_BODY, MAX_NAME, optional_body, required_line};
use crate::store::{Writer, retry_policy};
use crate::students::students;
use crate::tags::COURSE_ID;

/// The largest student limit accepted.
pub const MAX_STUDENT_LIMIT: u32 = 10_000;

/// Create a course.
#[derive(Clone, Debug)]
pub struct CreateCourse {
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: String,
    /// How many students it takes (1 to 10,000).
    pub max_student_count: u32,
}

impl Message for CreateCourse {
    type Output = AppResult<Uuid>;
}

/// Change a course's student limit; it cannot drop below the students already enrolled.
/// Setting the current limit again is a no-op that succeeds (idempotent).
#[derive(Clone, Debug)]
pub struct ChangeCourseLimit {
    /// The course.
    pub course_id: Uuid,
    /// The new limit.
    pub max_student_count: u32,
}

impl Message for ChangeCourseLimit {
    type Output = AppResult<()>;
}

/// Handles the courses' commands.
#[derive(Clone)]
pub struct CourseCommands(pub Writer);

/// A student limit between 1 and [`MAX_STUDENT_LIMIT`], sent as `maxStudentCount`.
///
/// # Errors
/// [`AppError::Invalid`] (400 invalid-request) for a limit out of range, on every route.
pub fn valid_limit(limit: u32) -> AppResult<u32> {
    valid_limit_of("maxStudentCount", limit)
}

/// [`valid_limit`] for a limit sent in the field `field` (such as the aggregate's
/// `newCapacity`).
///
/// # Errors
/// As [`valid_limit`].
pub fn valid_limit_of(field: &str, limit: u32) -> AppResult<u32> {
    if (1..=MAX_STUDENT_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid(format!(
            "{field} must be between 1 and {MAX_STUDENT_LIMIT}, not {limit}."
        )))
    }
}

/// A course's name and description, checked as every route checks them: a name of 1 to
/// [`MAX_NAME`] characters on one line, a description of at most [`MAX_BODY`] characters.
///
/// # Errors
/// [`AppError::Invalid`] naming the field.
pub fn valid_course_text(name: &str, description: &str) -> AppResult<(String, String)> {
    Ok((
        required_line("name", name, MAX_NAME)?,
        optional_body("description", description, MAX_BODY)?,
    ))
}

impl Handler<CreateCourse> for CourseCommands {
    async fn handle(&self, command: CreateCourse) -> AppResult<Uuid> {
        let (name, description) = valid_course_text(&command.name, &command.description)?;
        let max_student_count = valid_limit(command.max_student_count)?;
        let course_id = Uuid::new_v4();
        let event = self
            .0
            .event(&CourseCreated {
                course_id,
                name,
                description,
                max_student_count,
            })
            .tag(COURSE_ID, course_id.to_string())
            .build()?;
        // A fresh id: no event can exist for it, so there is nothing to guard.
        self.0.store.append(vec![event], None).await?;
        Ok(course_id)
    }
}

impl Handler<ChangeCourseLimit> for CourseCommands {
    async fn handle(&self, command: ChangeCourseLimit) -> AppResult<()> {
        let limit = valid_limit(command.max_student_count)?;
        let writer = &self.0;
        let capacity = course_capacity(command.course_id)?;
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            capacity,
            |capacity| -> AppResult<Decision> {
                let Some(capacity) = capacity else {
                    return Err(AppError::not_found(format!(
                        "Course {} does not exist.",
                        command.course_id
                    )));
                };
                if limit < capacity.enrolled {
                    return Err(AppError::rule(format!(
                        "The course has {} enrolled; its limit cannot drop to {limit}.",
                        students(capacity.enrolled)
                    )));
                }
                if limit == capacity.max_students {
                    return Ok(Decision::nothing());
                }
                let event = writer
                    .event(&CourseStudentLimitModified {
                        course_id: command.course_id,
                        new_max_student_count: limit,
                    })
                    .tag(COURSE_ID, command.course_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]))
            },
        )
        .await?;
        Ok(())
    }
}
