//! The event-sourced aggregate pattern, side by side with the decision models: a
//! `CourseAggregate` is rebuilt from its course's events, enforces its own rules, and is saved
//! with a tag-scoped append condition — "no event of this course after the version I loaded" —
//! which replaces a stream lock. Conflicts are retried a bounded number of times by reloading.
//!
//! The trade-off, compared with `enrollment`: the aggregate's boundary is one course, so it
//! cannot enforce the student's tier limit (a rule spanning students and courses). A
//! subscription does widen the boundary by the student's registration — read with the course,
//! and in the append condition — so that only registered students are enrolled.

mod aggregate;
mod commands;
mod repository;
mod routes;

pub use aggregate::{CourseAggregate, CourseEvent, RuleViolation};
pub use commands::{
    AggregateCommands, ChangeAggregateCapacity, CourseAggregateView, CreateAggregateCourse,
    GetAggregateCourse, MAX_ATTEMPTS, SubscribeToAggregateCourse,
};
pub use repository::{CourseRepository, CourseWithStudent};
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

/// Registers the aggregate handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .handler_with::<CreateAggregateCourse, _, _>(AggregateCommands::from_context)
        .handler_with::<ChangeAggregateCapacity, _, _>(AggregateCommands::from_context)
        .handler_with::<SubscribeToAggregateCourse, _, _>(AggregateCommands::from_context)
        .handler_with::<GetAggregateCourse, _, _>(AggregateCommands::from_context)
}
