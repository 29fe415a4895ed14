//! Courses: creating them, changing their student limit (a decision model), and the course
//! read models — details enriched with student names from related events, tagged "is full".

mod commands;
mod decisions;
mod events;
mod projections;
mod queries;
mod routes;

pub use commands::{
    ChangeCourseLimit, CourseCommands, CreateCourse, MAX_STUDENT_LIMIT, valid_course_text,
    valid_limit, valid_limit_of,
};
pub use decisions::{CourseCapacity, course_capacity, course_exists};
pub use events::{CourseCreated, CourseStudentLimitModified, course_created_v1_to_v2};
pub use projections::{
    COURSE_DETAILS, COURSE_SHORT_INFO, CourseDetails, CourseDetailsProjection, CourseShortInfo,
    CourseShortInfoProjection, EnrolledStudent,
};
pub use queries::{CourseQueries, GetCourse, ListCourses};
pub use routes::{CreateRequest, Created, RouteMessages, routes};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the courses' projections and handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .projection(CourseShortInfoProjection)
        .projection(CourseDetailsProjection)
        .handler_with::<CreateCourse, _, _>(|app| Writer::from_context(app).map(CourseCommands))
        .handler_with::<ChangeCourseLimit, _, _>(|app| {
            Writer::from_context(app).map(CourseCommands)
        })
        .handler_with::<ListCourses, _, _>(CourseQueries::from_context)
        .handler_with::<GetCourse, _, _>(CourseQueries::from_context)
}
