//! Enrolling a student in a course.

use opossum::{Decision, Handler, Message, decide_with};
use uuid::Uuid;

use super::{StudentEnrolledToCourse, already_enrolled, student_limit};
use crate::courses::course_capacity;
use crate::error::{AppError, AppResult};
use crate::store::{Writer, retry_policy};
use crate::students::students;
use crate::tags::{COURSE_ID, STUDENT_ID};

/// Enrol a student in a course: the course must exist and have a free seat, the student must
/// exist and be below their tier's limit, and must not be enrolled in it already.
#[derive(Clone, Copy, Debug)]
pub struct EnrollStudent {
    /// The course.
    pub course_id: Uuid,
    /// The student.
    pub student_id: Uuid,
}

impl Message for EnrollStudent {
    type Output = AppResult<()>;
}

/// Handles [`EnrollStudent`].
#[derive(Clone)]
pub struct EnrollmentCommands(pub Writer);

impl Handler<EnrollStudent> for EnrollmentCommands {
    async fn handle(&self, command: EnrollStudent) -> AppResult<()> {
        let EnrollStudent {
            course_id,
            student_id,
        } = command;
        let writer = &self.0;
        // One read for three rules; the condition spans all three queries, so a concurrent
        // enrolment in this course, or of this student anywhere, makes the append fail and
        // the whole decision run again.
        let rules = (
            course_capacity(course_id)?,
            student_limit(student_id)?,
            already_enrolled(course_id, student_id)?,
        );
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            rules,
            |(capacity, limit, enrolled)| -> AppResult<Decision> {
                let Some(capacity) = capacity else {
                    return Err(AppError::not_found(format!(
                        "Course {course_id} does not exist."
                    )));
                };
                let Some(limit) = limit else {
                    return Err(AppError::not_found(format!(
                        "Student {student_id} does not exist."
                    )));
                };
                if enrolled {
                    return Err(AppError::rule(
                        "The student is already enrolled in this course.",
                    ));
                }
                if capacity.is_full() {
                    return Err(AppError::rule(format!(
                        "The course is at its maximum capacity ({}).",
                        students(capacity.max_students)
                    )));
                }
                if limit.is_at_limit() {
                    return Err(AppError::rule(format!(
                        "The student has reached their enrolment limit ({} courses for the {} tier).",
                        limit.tier.max_courses(),
                        limit.tier
                    )));
                }
                let event = writer
                    .event(&StudentEnrolledToCourse {
                        course_id,
                        student_id,
                    })
                    .tag(COURSE_ID, course_id.to_string())
                    .tag(STUDENT_ID, student_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]))
            },
        )
        .await?;
        Ok(())
    }
}
