//! Creating a course and changing its student limit.

use opossum::{Decision, EventStore, Handler, Message, decide_with};
use uuid::Uuid;

use super::{CourseCreated, CourseStudentLimitModified, course_capacity};
use crate::error::{AppError, AppResult};
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

/// A student limit between 1 and [`MAX_STUDENT_LIMIT`].
pub fn valid_limit(limit: u32) -> AppResult<u32> {
    if (1..=MAX_STUDENT_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid(format!(
            "maxStudentCount must be between 1 and {MAX_STUDENT_LIMIT}, not {limit}."
        )))
    }
}

impl Handler<CreateCourse> for CourseCommands {
    async fn handle(&self, command: CreateCourse) -> AppResult<Uuid> {
        let name = command.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::invalid(
                "name must not be empty nor longer than 200 characters.",
            ));
        }
        let max_student_count = valid_limit(command.max_student_count)?;
        let course_id = Uuid::new_v4();
        let event = self
            .0
            .event(&CourseCreated {
                course_id,
                name: name.to_owned(),
                description: command.description.trim().to_owned(),
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
