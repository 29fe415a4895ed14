//! The enrolment event.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A student was enrolled in a course. Tagged `courseId` and `studentId`, so both the course's
/// and the student's decisions see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentEnrolledToCourse {
    /// The course.
    pub course_id: Uuid,
    /// The student.
    pub student_id: Uuid,
}

impl DomainEvent for StudentEnrolledToCourse {
    const EVENT_TYPE: &'static str = "StudentEnrolledToCourse";
}
