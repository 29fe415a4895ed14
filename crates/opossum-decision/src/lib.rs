//! DCB decision models for Opossum: decide on the state of several business rules from one
//! read, and guard the resulting append with one condition.
//!
//! A decision follows the DCB cycle **read → decide → append**. This crate gives each part a
//! name:
//!
//! - a [`DecisionProjection`] is the state one rule needs: an initial state, a
//!   [`Query`](opossum_core::Query) for
//!   the events the rule depends on, and a fold over those events (optionally reading a
//!   [`Clock`], so time rules are testable with a [`ManualClock`]);
//! - [`build_decision_model`] takes one, two or three projections (each with its own state
//!   type) or a list of projections of one type, reads the store **once** over the union of
//!   their queries, folds each projection over the events its own query matches (in position
//!   order), and returns the states with one [`AppendCondition`](opossum_core::AppendCondition)
//!   spanning them all;
//! - [`decide`] runs the whole cycle: it builds the model, hands its state to your pure
//!   function, appends the [`Decision`]'s events **with the model's condition** — you cannot
//!   forget it — and, when another writer changed something the decision depended on, reads and
//!   decides again after an exponential, jittered backoff ([`RetryPolicy`]);
//! - [`execute_decision`] is the same retry loop around an operation of your own, for the rare
//!   decision that must do more than one read; append there with
//!   [`DecisionModel::append`], which also brings the condition along.
//!
//! The condition is as narrow as the projections: writes to events none of the queries match
//! never fail the append, so unrelated decisions never contend.
//!
//! Everything works on any [`EventStore`](opossum_core::EventStore): the in-memory store in
//! unit tests, the file store (`opossum-fs`) in production.
//!
//! # Example
//!
//! Enrol a student in a course only if the course exists, has a free seat, and the student is
//! not enrolled yet — three rules, one read, one atomic check at append time.
//!
//! ```
//! use opossum_core::{
//!     DomainEvent, EventStore, InMemoryEventStore, NewEvent, Query, QueryItem, Tag,
//! };
//! use opossum_decision::{decide, Decision, DecisionProjection};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct CourseCreated { capacity: u32 }
//! impl DomainEvent for CourseCreated { const EVENT_TYPE: &'static str = "CourseCreated"; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct StudentEnrolled {}
//! impl DomainEvent for StudentEnrolled { const EVENT_TYPE: &'static str = "StudentEnrolled"; }
//!
//! /// Capacity and enrolment count of a course; `None` until it is created.
//! fn course_capacity(course: &str) -> Result<DecisionProjection<Option<(u32, u32)>>, opossum_core::Error> {
//!     let query = Query::from_items([QueryItem::of_types(["CourseCreated", "StudentEnrolled"])?
//!         .with_tag(Tag::new("course", course)?)])?;
//!     Ok(DecisionProjection::try_new(None, query, |state, event| {
//!         Ok(match state {
//!             None => Some((event.decode::<CourseCreated>()?.capacity, 0)),
//!             Some((capacity, enrolled)) => Some((capacity, enrolled + 1)),
//!         })
//!     }))
//! }
//!
//! /// Is this student already enrolled in this course?
//! fn already_enrolled(course: &str, student: &str) -> Result<DecisionProjection<bool>, opossum_core::Error> {
//!     let query = Query::from_items([QueryItem::of_types(["StudentEnrolled"])?
//!         .with_tag(Tag::new("course", course)?)
//!         .with_tag(Tag::new("student", student)?)])?;
//!     Ok(DecisionProjection::new(false, query, |_, _| true))
//! }
//!
//! #[derive(Debug, PartialEq)]
//! enum Enrolment { Enrolled, NoSuchCourse, CourseFull, AlreadyEnrolled }
//!
//! async fn enrol(store: &impl EventStore, course: &str, student: &str)
//!     -> Result<Enrolment, opossum_decision::Error>
//! {
//!     let rules = (course_capacity(course)?, already_enrolled(course, student)?);
//!     // One read for both rules; the append is guarded by one condition spanning both queries,
//!     // and the decision runs again if anything either depends on was written since the read.
//!     let decided = decide(store, rules, |(capacity, enrolled)| -> Result<_, opossum_decision::Error> {
//!         Ok(match capacity {
//!             None => Decision::nothing().returning(Enrolment::NoSuchCourse),
//!             Some(_) if enrolled => Decision::nothing().returning(Enrolment::AlreadyEnrolled),
//!             Some((capacity, count)) if count >= capacity => {
//!                 Decision::nothing().returning(Enrolment::CourseFull)
//!             }
//!             Some(_) => {
//!                 let event = NewEvent::from_typed(&StudentEnrolled {})
//!                     .tag("course", course)
//!                     .tag("student", student)
//!                     .build()?;
//!                 Decision::append(vec![event]).returning(Enrolment::Enrolled)
//!             }
//!         })
//!     })
//!     .await?;
//!     Ok(decided.outcome)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = InMemoryEventStore::new();
//! assert_eq!(enrol(&store, "rust-101", "ada").await?, Enrolment::NoSuchCourse);
//!
//! let created = NewEvent::from_typed(&CourseCreated { capacity: 1 }).tag("course", "rust-101").build()?;
//! store.append(vec![created], None).await?;
//!
//! assert_eq!(enrol(&store, "rust-101", "ada").await?, Enrolment::Enrolled);
//! assert_eq!(enrol(&store, "rust-101", "ada").await?, Enrolment::AlreadyEnrolled);
//! assert_eq!(enrol(&store, "rust-101", "bob").await?, Enrolment::CourseFull);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(run())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A domain rejection can be an outcome with nothing appended (as here) or an error of your own
//! returned by the decision function; either way it is never retried, only a failed append
//! condition is. A decision function's error type needs only `From<opossum_decision::Error>`;
//! [`execute_decision`] also needs to tell a failed condition apart ([`ConditionFailure`]).

mod clock;
mod decide;
mod error;
mod model;
mod projection;
mod retry;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decide::{Decided, Decision, decide, decide_with};
pub use error::Error;
pub use model::{DecisionModel, ProjectionSet, build_decision_model, build_decision_model_many};
pub use projection::DecisionProjection;
pub use retry::{ConditionFailure, Jitter, RetryPolicy, execute_decision, execute_decision_with};
