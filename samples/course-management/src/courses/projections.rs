//! The courses' read models: a list entry tagged `isFull`, and the details with the enrolled
//! students' names, which come from each student's registration, read as a related event.

use opossum::{BoxError, DomainEvent, Projection, Query, SequencedEvent, Tag};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CourseCreated, CourseStudentLimitModified};
use crate::enrollment::StudentEnrolledToCourse;
use crate::store::{query, state_tags};
use crate::students::StudentRegistered;
use crate::tags::{COURSE_ID, STUDENT_ID};

/// The name of the course list projection.
pub const COURSE_SHORT_INFO: &str = "CourseShortInfo";
/// The name of the course details projection.
pub const COURSE_DETAILS: &str = "CourseDetails";

/// One course in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseShortInfo {
    /// The course's id.
    pub course_id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: String,
    /// Its student limit.
    pub max_student_count: u32,
    /// Students enrolled.
    pub current_enrollment_count: u32,
    /// True when no seat is free.
    pub is_full: bool,
}

impl CourseShortInfo {
    fn update(mut self, event: &SequencedEvent) -> Result<CourseShortInfo, BoxError> {
        if event.is::<CourseStudentLimitModified>() {
            self.max_student_count = event
                .decode::<CourseStudentLimitModified>()?
                .new_max_student_count;
        } else {
            self.current_enrollment_count += 1;
        }
        self.is_full = self.current_enrollment_count >= self.max_student_count;
        Ok(self)
    }
}

fn course_key(event: &SequencedEvent) -> Option<String> {
    event.event.tag_value(COURSE_ID).map(str::to_owned)
}

fn course_events() -> Vec<&'static str> {
    vec![
        CourseCreated::EVENT_TYPE,
        CourseStudentLimitModified::EVENT_TYPE,
        StudentEnrolledToCourse::EVENT_TYPE,
    ]
}

fn created(event: &SequencedEvent) -> Result<CourseShortInfo, BoxError> {
    let e = event.decode::<CourseCreated>()?;
    Ok(CourseShortInfo {
        course_id: e.course_id,
        name: e.name,
        description: e.description,
        max_student_count: e.max_student_count,
        current_enrollment_count: 0,
        is_full: false,
    })
}

/// The course list: one instance per course, tagged `isFull`.
#[derive(Debug)]
pub struct CourseShortInfoProjection;

impl Projection for CourseShortInfoProjection {
    type State = CourseShortInfo;

    fn name(&self) -> &str {
        COURSE_SHORT_INFO
    }

    fn event_types(&self) -> Vec<&str> {
        course_events()
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        course_key(event)
    }

    fn apply(
        &self,
        state: Option<CourseShortInfo>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<CourseShortInfo>, BoxError> {
        if event.is::<CourseCreated>() {
            return Ok(Some(created(event)?));
        }
        state.map(|course| course.update(event)).transpose()
    }

    fn tags(&self, course: &CourseShortInfo) -> Vec<Tag> {
        state_tags(&[("isFull", &course.is_full)])
    }
}

/// A student enrolled in a course.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrolledStudent {
    /// The student.
    pub student_id: Uuid,
    /// First name (empty for a student who was never registered, or was forgotten).
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
    /// True when the student was forgotten: the names and the email are erased.
    #[serde(default)]
    pub personal_data_erased: bool,
}

/// Everything about one course.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseDetails {
    /// The list entry's fields.
    #[serde(flatten)]
    pub info: CourseShortInfo,
    /// The students, in enrolment order.
    pub enrolled_students: Vec<EnrolledStudent>,
}

/// The course details, tagged `isFull`.
#[derive(Debug)]
pub struct CourseDetailsProjection;

impl Projection for CourseDetailsProjection {
    type State = CourseDetails;

    fn name(&self) -> &str {
        COURSE_DETAILS
    }

    fn event_types(&self) -> Vec<&str> {
        course_events()
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        course_key(event)
    }

    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        if !event.is::<StudentEnrolledToCourse>() {
            return None;
        }
        let student = event.event.tag_value(STUDENT_ID)?;
        query(&[StudentRegistered::EVENT_TYPE], &[(STUDENT_ID, &student)]).ok()
    }

    fn apply(
        &self,
        state: Option<CourseDetails>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<CourseDetails>, BoxError> {
        if event.is::<CourseCreated>() {
            return Ok(Some(CourseDetails {
                info: created(event)?,
                enrolled_students: Vec::new(),
            }));
        }
        let Some(mut course) = state else {
            return Ok(None);
        };
        course.info = course.info.update(event)?;
        if event.is::<StudentEnrolledToCourse>() {
            let student_id = event.decode::<StudentEnrolledToCourse>()?.student_id;
            let registration = related.iter().find(|e| e.is::<StudentRegistered>());
            // A forgotten student's registration reads with the names and email erased (empty):
            // forgetting a student rebuilds this projection, so no copy of them stays here.
            let erased = registration.is_some_and(SequencedEvent::is_erased);
            let registration = registration
                .map(SequencedEvent::decode::<StudentRegistered>)
                .transpose()?;
            course.enrolled_students.push(match registration {
                Some(r) => EnrolledStudent {
                    student_id,
                    first_name: r.first_name,
                    last_name: r.last_name,
                    email: r.email,
                    personal_data_erased: erased,
                },
                None => EnrolledStudent {
                    student_id,
                    first_name: String::new(),
                    last_name: String::new(),
                    email: String::new(),
                    personal_data_erased: false,
                },
            });
        }
        Ok(Some(course))
    }

    fn tags(&self, course: &CourseDetails) -> Vec<Tag> {
        state_tags(&[("isFull", &course.info.is_full)])
    }
}
