//! Read models for Opossum: projections kept current by a daemon, rebuilt from the log without
//! ever showing a half-built result, and stored as one human-readable JSON-lines file per
//! projection with an in-memory tag index.
//!
//! - A [`Projection`] says which event types it consumes, which instance each event belongs to
//!   (its key), and how an instance's state folds over its events; returning `None` deletes the
//!   instance. It may ask for **related events** per event (read for it, strictly before the
//!   event) and compute **tags** from a state, which are indexed for
//!   [`ProjectionStore::query_by_tags`].
//! - The [`ProjectionManager`] opens the projections' folder and registers the projections; its
//!   [`ProjectionStore`]s read them (`get`, `get_all`, `query`, `query_by_tag(s)`). A store is
//!   asked for by the projection's type — `manager.store::<Courses>()` — so the compiler checks
//!   its state type; the projection's name is the name of its folder on disk. Reads come in
//!   [`Page`]s with a stable [`Cursor`] (`list`, `query_by_tags`), or stream every instance in
//!   bounded memory (`iter`).
//! - The [`ProjectionDaemon`] keeps them current: woken by the store as soon as an event is
//!   committed past the head it caught up to
//!   ([`EventStore::wait_for_append`](opossum_core::EventStore::wait_for_append) — the file
//!   store also reports other processes' commits, through file-change notifications or
//!   polling), by [`notify_appended`](ProjectionDaemon::notify_appended), and by a slow
//!   [polling interval](ProjectionOptions::polling_interval) as the fallback. It works in
//!   bounded batches, and a projection that fails stops alone while the others go on.
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
//! use opossum_projections::{BoxError, Page, Projection, ProjectionManager};
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
//! // Tag values match in any case; pages come with the cursor of the next one.
//! let full = courses.query_by_tag(&Tag::new("IsFull", "true")?, &Page::first(20))?;
//! assert_eq!(full.items.len(), 1);
//! assert!(full.next.is_none());
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
//! [`ProjectionManager::builder`] (conventionally `<store folder>/projections/`), holding a
//! constant number of files whatever the number of instances or tags:
//!
//! ```text
//! <root>/.lock                        held by the one process that maintains the projections (below)
//! <root>/<name>/current.json          {"generation": 2}: the live generation
//! <root>/<name>/gen-000002.jsonl      the live generation: instance records and commits
//! <root>/<name>/gen-000003.jsonl      a rebuild's or a compaction's generation, while it runs
//! <root>/<name>/rebuild.json          the journal of a rebuild in progress
//! ```
//!
//! A generation file is JSON lines, appended to and never rewritten: a header line, then for
//! each committed batch the records of the instances it changed (key, position of the last
//! event applied, tags, state — or `"deleted": true`) and a commit line with the checkpoint and
//! the SHA-256 of the batch's records. `grep` finds an instance; the newest record of a key is
//! its state. [`ProjectionStore::export`] writes a projection as one JSON document.
//!
//! On open the file is read once into an index in memory (where each instance's newest record
//! is, and the instances of each tag); a read is a lookup and one positional read. When dead
//! records (replaced or deleted instances) outweigh live ones the file is **compacted**: the
//! live records are copied into a new generation that replaces the old one like a rebuild's.
//! Folders in the one-file-per-instance layout of earlier versions are cleared and rebuilt
//! from the event log on first open (a log line says so).
//!
//! # Guarantees
//!
//! - **Atomic batches.** A batch of changed instances and its checkpoint are one commit: one
//!   write and, with [`Durability::Immediate`](opossum_core::Durability) (the default
//!   [`durability`](ProjectionOptions::durability)), one `fdatasync`. A commit line counts only
//!   when it is complete and its hash matches the records before it.
//! - **No event applied twice, none skipped, after a crash.** Whatever a crash left after the
//!   last complete commit is cut off when the maintainer opens the file; the events after the
//!   checkpoint are applied again. Each record also carries the position of the last event
//!   applied to it, and an event at or below it is skipped.
//! - **Atomic rebuilds.** A rebuild writes a new generation and commits by replacing
//!   `current.json` in one rename; the old generation is deleted only afterwards, once its last
//!   reader lets go. A read sees one generation as of one commit, never a mix.
//! - **Bounded memory.** The daemon holds one batch; a rebuild holds one read batch plus at
//!   most about twice the flush interval of states. The index holds a few dozen bytes per
//!   instance and tag, never states.
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
//! themselves once the maintainer's daemon has applied them — it is woken by the store when any
//! process commits ([`ProjectionManager::wait_for`] waits for that). A follower builds its own index from the file and reads the commits appended since its
//! last read at every read (one `fstat` when nothing changed); a read that a rebuild's generation
//! swap overtakes finishes on the generation it started on, so a follower never sees a mix of two
//! generations. Followers apply nothing and refuse to rebuild
//! ([`Error::NotMaintainer`]); a follower's daemon tries the lock at every polling interval and takes over —
//! tidying the folder, resuming an interrupted rebuild — as soon as the maintainer exits or is
//! killed.

mod daemon;
mod definition;
mod error;
mod files;
mod generation;
mod inspect;
mod instance;
mod lock;
mod manager;
mod naming;
mod options;
mod packed;
mod page;
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
pub use inspect::{ProjectionFolder, RebuildJournal, inspect};
pub use manager::{ProjectionManager, ProjectionManagerBuilder, Role};
pub use options::{AutoRebuild, ProjectionOptions};
pub use page::{Cursor, Page, Paged};
pub use rebuild::Rebuilder;
pub use report::{
    CatchUpReport, ProjectionFailure, ProjectionStats, ProjectionStatus, RebuildProgress,
    RebuildReport, RebuildStatus, RebuiltProjection,
};
pub use store::{Instances, ProjectionStore};
