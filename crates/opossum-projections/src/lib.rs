//! Read models for Opossum: projections kept current by a daemon, rebuilt from the log without
//! ever showing a half-built result, and stored as human-readable JSON files with a tag index.
//!
//! - A [`Projection`] says which event types it consumes, which instance each event belongs to
//!   (its key), and how an instance's state folds over its events; returning `None` deletes the
//!   instance. It may ask for **related events** per event (read for it, strictly before the
//!   event) and compute **tags** from a state, which are indexed for
//!   [`ProjectionStore::query_by_tags`].
//! - The [`ProjectionManager`] opens the projections' folder and registers the projections; its
//!   [`ProjectionStore`]s read them (`get`, `get_all`, `query`, `query_by_tag(s)`). A store is
//!   asked for by the projection's type — `manager.store::<Courses>()` — so the compiler checks
//!   its state type; the projection's name is the name of its folder on disk.
//! - The [`ProjectionDaemon`] keeps them current: woken at once by
//!   [`notify_appended`](ProjectionDaemon::notify_appended) for appends in this process, and by
//!   polling for appends from other processes. It works in bounded batches, and a projection
//!   that fails stops alone while the others go on.
//! - The [`Rebuilder`] rebuilds one, several or all projections from the log, in parallel up to
//!   a limit, into a new generation that replaces the live one atomically; a journal lets a
//!   rebuild that a crash interrupted resume from its last flush point.
//!
//! Everything works on any [`EventStore`](opossum_core::EventStore): the in-memory store in
//! unit tests, `opossum-fs`'s `FileEventStore` in production.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use opossum_core::{DomainEvent, EventStore, InMemoryEventStore, NewEvent, SequencedEvent, Tag};
//! use opossum_projections::{BoxError, Projection, ProjectionManager};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct CourseCreated { name: String, capacity: u32 }
//! impl DomainEvent for CourseCreated { const EVENT_TYPE: &'static str = "CourseCreated"; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct StudentEnrolled {}
//! impl DomainEvent for StudentEnrolled { const EVENT_TYPE: &'static str = "StudentEnrolled"; }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Course { name: String, capacity: u32, enrolled: u32 }
//!
//! /// One instance per course, keyed by the `courseId` tag, tagged with whether it is full.
//! struct Courses;
//!
//! impl Projection for Courses {
//!     type State = Course;
//!     fn name(&self) -> &str { "Courses" }
//!     fn event_types(&self) -> Vec<&str> {
//!         vec![CourseCreated::EVENT_TYPE, StudentEnrolled::EVENT_TYPE]
//!     }
//!     fn key(&self, event: &SequencedEvent) -> Option<String> {
//!         event.event.tag_value("courseId").map(str::to_owned)
//!     }
//!     fn apply(&self, state: Option<Course>, event: &SequencedEvent, _related: &[SequencedEvent])
//!         -> Result<Option<Course>, BoxError>
//!     {
//!         Ok(match state {
//!             None => {
//!                 let created = event.decode::<CourseCreated>()?;
//!                 Some(Course { name: created.name, capacity: created.capacity, enrolled: 0 })
//!             }
//!             Some(course) => Some(Course { enrolled: course.enrolled + 1, ..course }),
//!         })
//!     }
//!     fn tags(&self, course: &Course) -> Vec<Tag> {
//!         let full = if course.enrolled >= course.capacity { "True" } else { "False" };
//!         vec![Tag::new("IsFull", full).expect("a valid tag")]
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let folder = tempfile::tempdir()?;
//! # let root = folder.path().join("projections");
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
//! let manager = ProjectionManager::builder(Arc::clone(&store), &root)
//!     .register(Courses)
//!     .open()?;
//! let daemon = manager.start_daemon();
//!
//! let created = NewEvent::from_typed(&CourseCreated { name: "Rust".into(), capacity: 1 })
//!     .tag("courseId", "c-1")
//!     .build()?;
//! let enrolled = NewEvent::from_typed(&StudentEnrolled {}).tag("courseId", "c-1").build()?;
//! let position = store.append(vec![created, enrolled], None).await?;
//! daemon.notify_appended();
//! manager.wait_for("Courses", position).await?; // read your own writes
//!
//! let courses = manager.store::<Courses>()?; // a ProjectionStore<Course>
//! assert_eq!(courses.get("c-1")?.map(|c| c.enrolled), Some(1));
//! // Tag values match in any case; the index is on disk and survives restarts.
//! let full = courses.query_by_tag(&Tag::new("IsFull", "true")?)?;
//! assert_eq!(full.len(), 1);
//!
//! // Rebuild from the log; readers see the old generation until the new one is committed.
//! let rebuilt = manager.rebuilder().rebuild("Courses").await?;
//! assert_eq!(rebuilt.events_applied, 2);
//! daemon.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # The folder
//!
//! Each projection has a folder named after it inside the root given to
//! [`ProjectionManager::builder`] (conventionally `<store folder>/projections/`):
//!
//! ```text
//! <root>/.lock                       held by the one process that maintains the projections (below)
//! <root>/<name>/current.json         {"generation": 2}: the live generation
//! <root>/<name>/rebuild.json         the journal of a rebuild in progress
//! <root>/<name>/gen-000002/checkpoint.json   every event up to "position" is applied
//! <root>/<name>/gen-000002/state/<key>.json  one instance: key, position, tags, state
//! <root>/<name>/gen-000002/tags/<tag key>/<value>/<key>   the tag index (empty files)
//! <root>/<name>/.trash-gen-000001-…   a replaced generation, moved aside while it is deleted
//! ```
//!
//! Keys and tag values are encoded into file names injectively and portably: `a`–`z`, `0`–`9`,
//! `_` and `-` stay as they are, an upper-case letter becomes `^` and the letter (`Course` →
//! `^course`), any other byte becomes `%XX`; so any UTF-8 key works, and two keys never differ
//! only in case on disk (Windows and macOS compare names without case). Very long keys are
//! shortened with their SHA-256.
//!
//! # Guarantees
//!
//! - **Atomic writes.** Every file is written to a temporary file and renamed into place.
//!   With [`Durability::Immediate`](opossum_core::Durability) (the default
//!   [`durability`](ProjectionOptions::durability)) the files of a batch are synced before the checkpoint that covers them is
//!   written — one `syncfs` per batch on Linux rather than one `fsync` per file.
//! - **No event applied twice, none skipped, after a crash.** Each instance file records the
//!   position of the last event applied to it; deleted instances stay as tombstones until the
//!   checkpoint covers them. After a crash the events after the checkpoint are replayed and an
//!   event at or below its instance's position is skipped.
//! - **Atomic rebuilds.** A rebuild writes a new generation and commits by replacing
//!   `current.json` in one rename; the old generation is deleted only afterwards.
//! - **Bounded memory.** The daemon holds one batch; a rebuild holds one read batch plus at
//!   most about twice the flush interval of states, whatever the number of instances. No lock
//!   or map grows with the number of keys.
//! - **Isolated failures.** A projection whose code fails or panics stops at that event
//!   (reported in [`ProjectionManager::status`]); the others go on.
//!
//! # Several processes
//!
//! One process at a time *maintains* a projections folder: it holds `<root>/.lock`, and only its
//! daemon applies events and only it rebuilds. Other processes using the same store folder (on the
//! same machine, or PCs sharing a network folder) open it with
//! [`ProjectionManagerBuilder::open_or_follow`] and become *followers* ([`Role::Follower`]): they
//! read the same files, so they see what the maintainer applied, including events they appended
//! themselves once the maintainer's polling finds them ([`ProjectionManager::wait_for`] waits for
//! that). A read that a rebuild's generation swap overtakes is read again from the new generation,
//! so a follower never sees a mix of two generations. Followers apply nothing and refuse to rebuild
//! ([`Error::NotMaintainer`]); a follower's daemon tries the lock at every poll and takes over —
//! tidying the folder, resuming an interrupted rebuild — as soon as the maintainer exits or is
//! killed.

mod daemon;
mod definition;
mod error;
mod files;
mod generation;
mod instance;
mod lock;
mod manager;
mod naming;
mod options;
mod read;
mod rebuild;
mod report;
mod runner;
mod store;
mod tags;
mod update;

pub use daemon::ProjectionDaemon;
pub use definition::Projection;
pub use error::{BoxError, Error};
pub use manager::{ProjectionManager, ProjectionManagerBuilder, Role};
pub use options::{AutoRebuild, ProjectionOptions};
pub use rebuild::Rebuilder;
pub use report::{
    CatchUpReport, ProjectionFailure, ProjectionStatus, RebuildProgress, RebuildReport,
    RebuildStatus, RebuiltProjection,
};
pub use store::ProjectionStore;
