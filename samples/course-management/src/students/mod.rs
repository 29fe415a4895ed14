//! Students: registration with a unique email (the DCB "unique username" example, enforced by a
//! plain append condition on the email's hash), subscription tiers, the student read models,
//! and forgetting a student (their names and email are personal data, sealed under their own
//! key, and erased for good when the key is destroyed).

mod commands;
mod decisions;
mod events;
mod projections;
mod queries;
mod routes;
mod tier;

pub use commands::{
    ForgetStudent, MAX_FORGET_TEXT, PERSONAL_READ_MODELS, RegisterStudent, StudentCommands,
    StudentEraser, StudentForgotten, UpdateSubscription, email_hash,
};
pub use decisions::{current_tier, registered};
pub use events::{StudentRegistered, StudentSubscriptionUpdated};
pub use projections::{
    STUDENT_DETAILS, STUDENT_SHORT_INFO, StudentCourse, StudentDetails, StudentDetailsProjection,
    StudentShortInfo, StudentShortInfoProjection,
};
pub use queries::{GetStudent, ListStudents, StudentQueries};
pub use routes::{RouteMessages, routes};
pub use tier::{Tier, students};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the students' projections and handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .projection(StudentShortInfoProjection)
        .projection(StudentDetailsProjection)
        .handler_with::<RegisterStudent, _, _>(|app| Writer::from_context(app).map(StudentCommands))
        .handler_with::<UpdateSubscription, _, _>(|app| {
            Writer::from_context(app).map(StudentCommands)
        })
        .handler_with::<ForgetStudent, _, _>(StudentEraser::from_context)
        .handler_with::<ListStudents, _, _>(StudentQueries::from_context)
        .handler_with::<GetStudent, _, _>(StudentQueries::from_context)
}
