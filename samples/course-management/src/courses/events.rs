//! The courses' events.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A course was created. Tagged `courseId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseCreated {
    /// The new course's id.
    pub course_id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: String,
    /// How many students it takes.
    pub max_student_count: u32,
}

impl DomainEvent for CourseCreated {
    const EVENT_TYPE: &'static str = "CourseCreated";
}

/// A course's student limit changed. Tagged `courseId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseStudentLimitModified {
    /// The course.
    pub course_id: Uuid,
    /// The new limit.
    pub new_max_student_count: u32,
}

impl DomainEvent for CourseStudentLimitModified {
    const EVENT_TYPE: &'static str = "CourseStudentLimitModified";
}
