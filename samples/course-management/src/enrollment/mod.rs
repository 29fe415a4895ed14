//! Enrolment: the "course subscriptions" example. One decision over three projections — the
//! course's capacity, the student's tier limit, and whether this pair is already enrolled — is
//! read at once and guarded by one append condition, decided with `decide`.

mod decisions;
mod enroll;
mod events;
mod routes;

pub use decisions::{StudentLimit, already_enrolled, student_limit};
pub use enroll::{EnrollStudent, EnrollmentCommands};
pub use events::StudentEnrolledToCourse;
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the enrolment handler.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder.handler_with(|app| Writer::from_context(app).map(EnrollmentCommands))
}
