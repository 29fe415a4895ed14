//! How the features talk to the store: events stamped with the injected clock, queries from
//! types and tags, and the retry policy of decisions.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use opossum::{
    AppContext, AppStore, Clock, DomainEvent, EventBuilder, EventStoreError, NewEvent, Query,
    QueryItem, RetryPolicy, Tag,
};

/// What every command handler holds: the store to decide on and append to, and the clock that
/// stamps its events (a `ManualClock` in tests, so time rules are tested without sleeping).
#[derive(Clone)]
pub struct Writer {
    /// The application's store.
    pub store: Arc<AppStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Writer {
    /// The store and clock of the app being built.
    ///
    /// # Errors
    /// Never; the signature fits `OpossumBuilder::handler_with`.
    pub fn from_context(app: &AppContext) -> Result<Writer, opossum::Error> {
        Ok(Writer {
            store: app.store(),
            clock: app.clock(),
        })
    }

    /// Starts an event stamped with the clock's time.
    pub fn event<E: DomainEvent>(&self, event: &E) -> EventBuilder {
        NewEvent::from_typed(event).timestamp(self.clock.now())
    }
}

/// A tag whose value is anything displayable.
///
/// # Errors
/// The validation error of an empty key or a control character.
pub fn tag(key: &str, value: impl Display) -> Result<Tag, EventStoreError> {
    Tag::new(key, value.to_string())
}

/// Events of any of `types` carrying every tag of `tags`.
///
/// # Errors
/// The validation error of an invalid type or tag.
pub fn query(types: &[&str], tags: &[(&str, &dyn Display)]) -> Result<Query, EventStoreError> {
    let mut item = QueryItem::of_types(types)?;
    for (key, value) in tags {
        item = item.with_tag(tag(key, value)?);
    }
    Query::from_items([item])
}

/// The retry policy of the sample's decisions: patient enough that a burst of requests on one
/// course or one invoice sequence resolves, bounded so that a request never hangs.
#[must_use]
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(12)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(200))
}

/// Tags for a projection state; pairs that do not make a valid tag are left out (the sample's
/// keys are constants and its values never hold control characters).
#[must_use]
pub fn state_tags(pairs: &[(&str, &dyn Display)]) -> Vec<Tag> {
    pairs
        .iter()
        .filter_map(|(key, value)| tag(key, value).ok())
        .collect()
}
