//! The students' read models: a short list entry (filterable by tier and "is maxed out") and
//! the details with the names of the student's courses (from related events).
//!
//! Both forget: a registration whose personal data was erased makes an entry with empty names
//! and email and `personalDataErased: true`, and a `SubjectForgotten` event about a student
//! blanks the entry the same way.

use opossum::records::{SUBJECT_TAG, SubjectForgotten};
use opossum::{BoxError, DomainEvent, Projection, Query, SequencedEvent, Tag};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{StudentRegistered, StudentSubscriptionUpdated, Tier};
use crate::courses::CourseCreated;
use crate::enrollment::StudentEnrolledToCourse;
use crate::store::{query, state_tags};
use crate::tags::{COURSE_ID, STUDENT_ID};

/// The name of the student list projection.
pub const STUDENT_SHORT_INFO: &str = "StudentShortInfo";
/// The name of the student details projection.
pub const STUDENT_DETAILS: &str = "StudentDetails";

/// One student in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentShortInfo {
    /// The student's id.
    pub student_id: Uuid,
    /// First name (empty once erased).
    pub first_name: String,
    /// Last name (empty once erased).
    pub last_name: String,
    /// Email (empty once erased).
    pub email: String,
    /// True when the student was forgotten: the names and the email are erased.
    #[serde(default)]
    pub personal_data_erased: bool,
    /// Subscription tier.
    pub enrollment_tier: Tier,
    /// Courses enrolled in.
    pub course_count: u32,
    /// The tier's course limit.
    pub max_courses: u32,
    /// True when the student has reached the limit.
    pub is_maxed_out: bool,
}

impl StudentShortInfo {
    fn registered(event: &SequencedEvent) -> Result<StudentShortInfo, BoxError> {
        let e = event.decode::<StudentRegistered>()?;
        let mut student = StudentShortInfo {
            student_id: e.student_id,
            first_name: e.first_name,
            last_name: e.last_name,
            email: e.email,
            personal_data_erased: false,
            enrollment_tier: Tier::Basic,
            course_count: 0,
            max_courses: Tier::Basic.max_courses(),
            is_maxed_out: false,
        };
        if event.is_erased() {
            student.forget();
        }
        Ok(student)
    }

    /// Drops the personal data.
    fn forget(&mut self) {
        self.first_name.clear();
        self.last_name.clear();
        self.email.clear();
        self.personal_data_erased = true;
    }

    fn set_tier(&mut self, tier: Tier) {
        self.enrollment_tier = tier;
        self.max_courses = tier.max_courses();
        self.is_maxed_out = self.course_count >= self.max_courses;
    }

    fn enrolled(&mut self) {
        self.course_count += 1;
        self.is_maxed_out = self.course_count >= self.max_courses;
    }
}

/// The student list: one instance per student, tagged `tier` and `isMaxedOut`.
#[derive(Debug)]
pub struct StudentShortInfoProjection;

/// The student an event is about: its `studentId` tag, or for a `SubjectForgotten` its
/// `dataSubject` tag (the sample's data subjects are students).
fn student_key(event: &SequencedEvent) -> Option<String> {
    let key = if event.is::<SubjectForgotten>() {
        SUBJECT_TAG
    } else {
        STUDENT_ID
    };
    event.event.tag_value(key).map(str::to_owned)
}

impl Projection for StudentShortInfoProjection {
    type State = StudentShortInfo;

    fn name(&self) -> &str {
        STUDENT_SHORT_INFO
    }

    fn event_types(&self) -> Vec<&str> {
        vec![
            StudentRegistered::EVENT_TYPE,
            StudentSubscriptionUpdated::EVENT_TYPE,
            StudentEnrolledToCourse::EVENT_TYPE,
            SubjectForgotten::EVENT_TYPE,
        ]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        student_key(event)
    }

    fn apply(
        &self,
        state: Option<StudentShortInfo>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<StudentShortInfo>, BoxError> {
        if event.is::<StudentRegistered>() {
            return Ok(Some(StudentShortInfo::registered(event)?));
        }
        // Events about a student who was never registered (the aggregate pattern does not
        // check students) make no entry.
        let Some(mut student) = state else {
            return Ok(None);
        };
        if event.is::<StudentSubscriptionUpdated>() {
            student.set_tier(
                event
                    .decode::<StudentSubscriptionUpdated>()?
                    .enrollment_tier,
            );
        } else if event.is::<SubjectForgotten>() {
            student.forget();
        } else {
            student.enrolled();
        }
        Ok(Some(student))
    }

    fn tags(&self, student: &StudentShortInfo) -> Vec<Tag> {
        state_tags(&[
            ("tier", &student.enrollment_tier),
            ("isMaxedOut", &student.is_maxed_out),
        ])
    }
}

/// A course a student is enrolled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentCourse {
    /// The course.
    pub course_id: Uuid,
    /// Its name (empty when the course was never created).
    pub name: String,
}

/// Everything about one student.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentDetails {
    /// The list entry's fields.
    #[serde(flatten)]
    pub info: StudentShortInfo,
    /// The courses, in enrolment order.
    pub courses: Vec<StudentCourse>,
}

/// The student details: the list entry plus the courses with their names, which come from each
/// course's `CourseCreated` event, read as a related event.
#[derive(Debug)]
pub struct StudentDetailsProjection;

impl Projection for StudentDetailsProjection {
    type State = StudentDetails;

    fn name(&self) -> &str {
        STUDENT_DETAILS
    }

    fn event_types(&self) -> Vec<&str> {
        StudentShortInfoProjection.event_types()
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        student_key(event)
    }

    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        let course = event.event.tag_value(COURSE_ID)?;
        if !event.is::<StudentEnrolledToCourse>() {
            return None;
        }
        query(&[CourseCreated::EVENT_TYPE], &[(COURSE_ID, &course)]).ok()
    }

    fn apply(
        &self,
        state: Option<StudentDetails>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<StudentDetails>, BoxError> {
        let courses = state
            .as_ref()
            .map(|s| s.courses.clone())
            .unwrap_or_default();
        let Some(info) = StudentShortInfoProjection.apply(state.map(|s| s.info), event, related)?
        else {
            return Ok(None);
        };
        let mut details = StudentDetails { info, courses };
        if event.is::<StudentEnrolledToCourse>() {
            let enrolled = event.decode::<StudentEnrolledToCourse>()?;
            let name = match related.iter().find(|e| e.is::<CourseCreated>()) {
                Some(created) => created.decode::<CourseCreated>()?.name,
                None => String::new(),
            };
            details.courses.push(StudentCourse {
                course_id: enrolled.course_id,
                name,
            });
        }
        Ok(Some(details))
    }
}
