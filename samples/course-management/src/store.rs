//! How the features talk to the store: events stamped with the injected clock and attributed
//! to this machine and application, queries from types and tags, and the retry policy of
//! decisions.

use std::fmt::Display;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use opossum::{
    AppContext, AppStore, Clock, DomainEvent, EventBuilder, EventStoreError, Metadata, NewEvent,
    Query, QueryItem, RetryPolicy, Tag,
};

/// The free metadata field naming the machine an event was appended from. The app requires it
/// on every append (see [`crate::app::required_metadata`]).
pub const HOST_FIELD: &str = "host";
/// The free metadata field naming the application and its version that appended an event.
pub const APP_FIELD: &str = "app";
/// What [`APP_FIELD`] holds: `course-management/<version>`.
pub const APP_NAME: &str = concat!("course-management/", env!("CARGO_PKG_VERSION"));

static HOST: LazyLock<String> = LazyLock::new(|| {
    ["HOSTNAME", "COMPUTERNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_owned())
        // A metadata value may hold no control character; such a name is no name.
        .find(|value| !value.is_empty() && !value.chars().any(char::is_control))
        .unwrap_or_else(|| "unknown".to_owned())
});

/// The machine's name, for [`HOST_FIELD`]: the environment's `HOSTNAME` (Unix shells), else
/// `COMPUTERNAME` (Windows), else `unknown`. Read once per process.
#[must_use]
pub fn host_name() -> &'static str {
    &HOST
}

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

    /// Starts an event stamped with the clock's time and attributed with the free metadata
    /// fields [`HOST_FIELD`] ([`host_name`]) and [`APP_FIELD`] ([`APP_NAME`]).
    pub fn event<E: DomainEvent>(&self, event: &E) -> EventBuilder {
        NewEvent::from_typed(event).metadata(self.metadata())
    }

    /// Metadata stamped with the clock's time and attributed like [`Writer::event`]'s, for
    /// events the library builds itself (such as `SubjectForgotten`).
    #[must_use]
    pub fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::at(self.clock.now());
        metadata
            .fields
            .insert(HOST_FIELD.to_owned(), host_name().to_owned());
        metadata
            .fields
            .insert(APP_FIELD.to_owned(), APP_NAME.to_owned());
        metadata
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
