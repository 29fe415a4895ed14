//! Opossum: an embedded event store that turns a folder into a durable, auditable,
//! multi-process-safe DCB event log — with decision models, projections and a mediator on top.
//!
//! This crate is the facade. One builder opens the store (`opossum-fs`), registers the
//! projections and starts their daemon (`opossum-projections`), and builds the mediator
//! (`opossum-mediator`) with handlers that get the store, the clock and read models through
//! their fields. Everything an application needs is re-exported here; the crates themselves are
//! re-exported too (`opossum::opossum_fs`, …) for the rest.
//!
//! - [`Opossum::builder`] / [`Opossum::from_config`] → [`OpossumBuilder`] →
//!   [`build`](OpossumBuilder::build) → [`OpossumApp`].
//! - [`Config`] comes from code, from TOML ([`Config::from_toml_str`]) or from `OPOSSUM_*`
//!   environment variables ([`Config::from_env`]), and is checked by the store's and the
//!   projections' own validation whichever way it came.
//! - [`AppStore`] is the store handlers append to: every append wakes the projection daemon and
//!   is remembered, so a [`ReadModel`] read sees this process's own writes (and everything the
//!   store held when the app opened it).
//! - [`OpossumApp::shutdown`] stops the daemon and closes the store; nothing is lost by
//!   dropping instead, but the next open is faster after a shutdown.
//!
//! # Example
//!
//! A course with a capacity, enrolments decided with [`decide`], and a read model of the
//! courses.
//!
//! ```
//! use opossum::{
//!     AppContext, AppStore, BoxError, Decision, DecisionProjection, DomainEvent, EventStore,
//!     Handler, Message, NewEvent, Opossum, Projection, Query, QueryItem, SequencedEvent, Tag,
//!     decide,
//! };
//! use serde::{Deserialize, Serialize};
//! use std::sync::Arc;
//!
//! #[derive(Serialize, Deserialize)]
//! struct CourseCreated { capacity: u32 }
//! impl DomainEvent for CourseCreated { const EVENT_TYPE: &'static str = "CourseCreated"; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct StudentEnrolled { student: String }
//! impl DomainEvent for StudentEnrolled { const EVENT_TYPE: &'static str = "StudentEnrolled"; }
//!
//! // The read side: one instance per course.
//! #[derive(Serialize, Deserialize)]
//! struct Course { capacity: u32, students: Vec<String> }
//!
//! struct Courses;
//! impl Projection for Courses {
//!     type State = Course;
//!     fn name(&self) -> &str { "Courses" }
//!     fn event_types(&self) -> Vec<&str> { vec!["CourseCreated", "StudentEnrolled"] }
//!     fn key(&self, event: &SequencedEvent) -> Option<String> {
//!         event.event.tag_value("course").map(str::to_owned)
//!     }
//!     fn apply(&self, state: Option<Course>, event: &SequencedEvent, _: &[SequencedEvent])
//!         -> Result<Option<Course>, BoxError>
//!     {
//!         Ok(match state {
//!             None => Some(Course { capacity: event.decode::<CourseCreated>()?.capacity, students: vec![] }),
//!             Some(mut course) => {
//!                 course.students.push(event.decode::<StudentEnrolled>()?.student);
//!                 Some(course)
//!             }
//!         })
//!     }
//! }
//!
//! // The write side: a command and its handler, which gets the store through a field.
//! struct Enrol { course: String, student: String }
//! impl Message for Enrol { type Output = Result<bool, opossum::DecisionError>; }
//!
//! struct EnrolHandler { store: Arc<AppStore> }
//! impl Handler<Enrol> for EnrolHandler {
//!     async fn handle(&self, command: Enrol) -> Result<bool, opossum::DecisionError> {
//!         let events = QueryItem::of_types(["CourseCreated", "StudentEnrolled"])?
//!             .with_tag(Tag::new("course", &command.course)?);
//!         let seats = DecisionProjection::try_new(None::<u32>, Query::from_items([events])?, |seats, event| {
//!             Ok(match seats {
//!                 None => Some(event.decode::<CourseCreated>()?.capacity),
//!                 Some(free) => Some(free.saturating_sub(1)),
//!             })
//!         });
//!         // Reads, decides, appends with the model's condition, and decides again when
//!         // another enrolment in this course came in between.
//!         let decided = decide(self.store.as_ref(), seats, |seats| -> Result<_, opossum::DecisionError> {
//!             if seats.unwrap_or(0) == 0 {
//!                 return Ok(Decision::nothing().returning(false)); // no such course, or full
//!             }
//!             let event = NewEvent::from_typed(&StudentEnrolled { student: command.student.clone() })
//!                 .tag("course", &command.course)
//!                 .build()?;
//!             Ok(Decision::append(vec![event]).returning(true))
//!         })
//!         .await?;
//!         Ok(decided.outcome)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let folder = tempfile::tempdir()?;
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let app = Opossum::builder()
//!     .store_path(folder.path().join("school"))
//!     .projection(Courses)
//!     .handler_with(|app: &AppContext| Ok(EnrolHandler { store: app.store() }))
//!     .require::<Enrol>() // build() fails if no handler takes it
//!     .build()
//!     .await?;
//!
//! let created = NewEvent::from_typed(&CourseCreated { capacity: 1 }).tag("course", "rust").build()?;
//! app.store().append(vec![created], None).await?;
//!
//! let enrol = |student: &str| Enrol { course: "rust".into(), student: student.into() };
//! assert!(app.mediator().send(enrol("ada")).await??);
//! assert!(!app.mediator().send(enrol("bob")).await??); // the course is full
//!
//! // The read model, asked for by its projection's type, waits until the daemon has applied
//! // this process's appends.
//! let courses = app.read_model::<Courses>()?;
//! let rust = courses.read(|store| store.get("rust")).await?;
//! assert_eq!(rust.map(|c| c.students), Some(vec!["ada".to_owned()]));
//!
//! app.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # Errors
//!
//! Every error of every Opossum crate has a `kind()`, an [`ErrorKind`]: the case to act on
//! (a failed condition, invalid input, a full disk, a lock timeout, …), the same whichever crate
//! the error came through. Match on it; the error's message and source chain say what
//! happened.
//!
//! # Configuration from a file or the environment
//!
//! ```no_run
//! # async fn run() -> Result<(), opossum::Error> {
//! let config = opossum::Config::from_toml_str(&std::fs::read_to_string("opossum.toml").unwrap_or_default())?
//!     .with_vars(std::env::vars())?; // OPOSSUM_STORE_PATH and friends override the file
//! let app = opossum::Opossum::from_config(config).build().await?;
//! # app.shutdown().await }
//! ```

mod app;
mod config;
mod error;
mod read_model;
mod store;

pub use app::{AppContext, ForgetReport, Opossum, OpossumApp, OpossumBuilder};
pub use config::{
    Config, ENV_PREFIX, PROJECTIONS_FOLDER, ProjectionsConfig, StoreConfig, Validated,
};
pub use error::Error;
pub use read_model::ReadModel;
pub use store::AppStore;

// The DCB vocabulary and the event store trait.
/// The core crate's error: validation, a failed append condition, storage failures.
pub use opossum_core::Error as EventStoreError;
/// Records kept for years: crypto-shredding of personal data (`SubjectForgotten`,
/// `Forgotten`, key stores) and reads through upcasters (see
/// [`OpossumBuilder::shred_personal_data`] and [`AppStore::forget`]).
pub use opossum_core::records;
pub use opossum_core::{
    AppendCondition, Direction, DomainEvent, Durability, ErrorKind, EventBuilder, EventStore,
    EventType, InMemoryEventStore, Metadata, NewEvent, Payload, Position, Query, QueryItem,
    ReadOptions, RequiredMetadata, SequencedEvent, StorageError, Tag, Timestamp, Upcasters,
};

// The file store.
pub use opossum_fs::{FileEventStore, StoreOptions, StoreStats, VerifyReport};

// Decisions.
/// The decision crate's error, which a decision function can return (it converts from
/// [`EventStoreError`]; [`decide`] converts store failures into a decision's own error type
/// through it).
pub use opossum_decision::Error as DecisionError;
pub use opossum_decision::{
    Clock, ConditionFailure, Decided, Decision, DecisionModel, DecisionProjection, Jitter,
    ManualClock, ProjectionSet, RetryPolicy, SystemClock, build_decision_model,
    build_decision_model_many, decide, decide_with, execute_decision, execute_decision_with,
};

// The mediator.
pub use opossum_mediator::{
    Handler, Mediator, MediatorBuilder, MediatorError, Message, MessageList,
};

// Projections.
/// The projection crate's error.
pub use opossum_projections::Error as ProjectionError;
/// One projection's size on disk and number of instances, from
/// [`ProjectionManager::stats`].
pub use opossum_projections::ProjectionStats;
pub use opossum_projections::{
    AutoRebuild, BoxError, CatchUpReport, Projection, ProjectionFailure, ProjectionManager,
    ProjectionOptions, ProjectionStatus, ProjectionStore, RebuildProgress, RebuildReport,
    RebuildStatus, Rebuilder, RebuiltProjection, Role,
};
/// Paged reads of a [`ProjectionStore`] (or a [`ReadModel`]): [`Page::first`] asks for the first
/// `limit` instances in key order, [`Page::after`] for those after a [`Cursor`], and a
/// [`Paged`] holds one page and the cursor of the next (`None` on the last page). A cursor's
/// text form (`Display` / `FromStr`) is URL-safe, for a `?cursor=` parameter; text that is not a
/// cursor, or a limit of 0, is [`ProjectionError::InvalidPage`]
/// ([`ErrorKind::InvalidInput`]).
pub use opossum_projections::{Cursor, Page, Paged};

// The crates themselves, for everything not re-exported above.
pub use opossum_core;
pub use opossum_decision;
pub use opossum_fs;
pub use opossum_mediator;
pub use opossum_projections;
