//! What a projection is: the [`Projection`] trait a read model implements.

use opossum_core::{Query, SequencedEvent, Tag};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxError;

/// A read model: which events it consumes, which instance each event belongs to, and how an
/// instance's state folds over its events.
///
/// The framework reads the events of [`event_types`](Projection::event_types) in position
/// order, asks [`key`](Projection::key) which instance each belongs to, and calls
/// [`apply`](Projection::apply) with that instance's current state (`None` when it does not
/// exist yet). Returning `None` deletes the instance.
///
/// Two optional capabilities have default implementations that do nothing:
///
/// - **related events** — [`related_events`](Projection::related_events) names, per event, a
///   query for other events the fold needs (the student's name when a student enrols in a
///   course). The framework reads the events it matches **that come before the event** and
///   passes them to `apply`, so a rebuild sees exactly what the live update saw.
/// - **tags** — [`tags`](Projection::tags) computes tags from a state. They are indexed on
///   disk, so [`ProjectionStore::query_by_tags`](crate::ProjectionStore::query_by_tags) reads
///   only the instances that carry them.
///
/// `key`, `apply` and `tags` must be deterministic functions of their arguments: a rebuild
/// replays them and must reach the states the live updates reached. They run on a blocking
/// thread, never on the async runtime's workers. A panic in them is caught and treated as a
/// failure of this projection alone.
///
/// ```
/// use opossum_core::{DomainEvent, SequencedEvent};
/// use opossum_projections::{BoxError, Projection};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct StudentRegistered { name: String }
/// impl DomainEvent for StudentRegistered { const EVENT_TYPE: &'static str = "StudentRegistered"; }
///
/// #[derive(Serialize, Deserialize)]
/// struct StudentLeft {}
/// impl DomainEvent for StudentLeft { const EVENT_TYPE: &'static str = "StudentLeft"; }
///
/// #[derive(Debug, Serialize, Deserialize, PartialEq)]
/// struct Student { name: String }
///
/// struct Students;
///
/// impl Projection for Students {
///     type State = Student;
///
///     fn name(&self) -> &str { "Students" }
///
///     fn event_types(&self) -> Vec<&str> {
///         vec![StudentRegistered::EVENT_TYPE, StudentLeft::EVENT_TYPE]
///     }
///
///     fn key(&self, event: &SequencedEvent) -> Option<String> {
///         event.event.tag_value("studentId").map(str::to_owned)
///     }
///
///     fn apply(&self, state: Option<Student>, event: &SequencedEvent, _related: &[SequencedEvent])
///         -> Result<Option<Student>, BoxError>
///     {
///         Ok(if event.is::<StudentRegistered>() {
///             Some(Student { name: event.decode::<StudentRegistered>()?.name })
///         } else {
///             None // StudentLeft deletes the instance
///         })
///     }
/// }
/// ```
pub trait Projection: Send + Sync + 'static {
    /// The state of one instance. It is stored as JSON, one line per version of an instance in
    /// the projection's generation file.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The projection's name: unique among the registered projections (case is ignored), and
    /// the name of its folder, so it must be a portable folder name (no `/ \ : * ? " < > |`, no
    /// control characters, not a Windows device name such as `CON`, at most 100 bytes).
    fn name(&self) -> &str;

    /// The event types this projection consumes; at least one.
    fn event_types(&self) -> Vec<&str>;

    /// The key of the instance `event` belongs to, or `None` when the event concerns no
    /// instance (it is then skipped). Any UTF-8 string is a valid key.
    fn key(&self, event: &SequencedEvent) -> Option<String>;

    /// A query for the related events `apply` needs along with `event`, or `None` (the
    /// default) when it needs none.
    ///
    /// The framework reads the events the query matches at positions **before** `event`'s,
    /// in position order, and passes them to `apply` as `related`.
    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        let _ = event;
        None
    }

    /// Folds `event` into an instance's state: `state` is `None` when the instance does not
    /// exist; returning `Ok(None)` deletes it. `related` holds what
    /// [`related_events`](Projection::related_events) asked for (empty when nothing was
    /// asked).
    ///
    /// # Errors
    /// Any error stops this projection at this event (the events before it stay applied) and
    /// is reported by the daemon; the other projections go on.
    fn apply(
        &self,
        state: Option<Self::State>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<Self::State>, BoxError>;

    /// The tags of a state, indexed for
    /// [`ProjectionStore::query_by_tags`](crate::ProjectionStore::query_by_tags). Default:
    /// none. Tag values are matched without regard to case; keys exactly.
    fn tags(&self, state: &Self::State) -> Vec<Tag> {
        let _ = state;
        Vec::new()
    }
}
