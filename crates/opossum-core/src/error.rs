//! The one error type of `opossum-core`, shared by every [`EventStore`](crate::EventStore).

use crate::Position;

/// Everything that can go wrong in the core types and through the [`EventStore`](crate::EventStore)
/// trait.
///
/// Validation variants are raised where a value is built, so a store never sees an invalid event.
/// [`Error::ConditionFailed`] is the DCB concurrency signal: callers re-read and decide again.
/// Storage back ends report their own failures through [`Error::Storage`]; downcast its source to
/// the back end's error type for details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event type was the empty string.
    #[error(
        "event type is empty: give every event a non-empty type name such as \"CourseCreated\""
    )]
    EmptyEventType,

    /// A tag key was the empty string.
    #[error("tag key is empty (value {value:?}): every tag needs a non-empty key")]
    EmptyTagKey {
        /// The value of the offending tag.
        value: String,
    },

    /// A name or tag contained a control character (such as a newline or NUL), which would make
    /// records ambiguous for people reading them.
    #[error("{what} {text:?} contains the control character U+{code:04X}; remove it")]
    ControlCharacter {
        /// Which kind of text was rejected: "event type", "tag key", "tag value" or "metadata".
        what: &'static str,
        /// The rejected text.
        text: String,
        /// The code point of the first control character found.
        code: u32,
    },

    /// The same tag (key and value) was given twice on one event.
    #[error("tag {key:?}={value:?} appears twice on one event; give each tag once")]
    DuplicateTag {
        /// The key of the repeated tag.
        key: String,
        /// The value of the repeated tag.
        value: String,
    },

    /// `append` was called with no events.
    #[error("append was called with no events: pass at least one event")]
    EmptyAppend,

    /// A query was built from an empty list of items. Use [`Query::all`](crate::Query::all) to
    /// match every event.
    #[error("a query needs at least one item; use Query::all() to match every event")]
    EmptyQuery,

    /// Position 0 was given where a sequence position was expected; positions start at 1.
    #[error(
        "sequence positions start at 1; 0 is not a position (use `None` for \"from the start\")"
    )]
    ZeroPosition,

    /// A payload could not be turned into JSON, or was not valid JSON.
    #[error("event payload is not valid JSON: {source}")]
    InvalidPayload {
        /// What the JSON encoder or parser said.
        #[source]
        source: serde_json::Error,
    },

    /// A typed decode was asked for one event type but the event has another.
    #[error("event at position {position} has type {found:?}, not {expected:?}")]
    EventTypeMismatch {
        /// The position of the event.
        position: Position,
        /// The type name the caller asked for.
        expected: String,
        /// The type name the event has.
        found: String,
    },

    /// The payload of a stored event did not decode into the requested Rust type.
    #[error("payload of {event_type:?} event at position {position} does not decode: {source}")]
    PayloadDecode {
        /// The position of the event.
        position: Position,
        /// The event type name.
        event_type: String,
        /// What the JSON decoder said.
        #[source]
        source: serde_json::Error,
    },

    /// The append condition failed: an event matching `fail_if_events_match` exists after the
    /// condition's `after` position. Nothing was appended. Re-read, decide again, and retry.
    #[error(
        "append condition failed: an event matching the condition's query exists{}; nothing was appended",
        after.map(|p| format!(" after position {p}")).unwrap_or_default()
    )]
    ConditionFailed {
        /// The `after` position of the failed condition.
        after: Option<Position>,
    },

    /// The storage back end failed. The source is the back end's own error type (for the file
    /// store, `opossum_fs::Error`), which says what happened and what to do.
    #[error(transparent)]
    Storage(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// True when this is [`Error::ConditionFailed`], the only error a decide-and-retry loop should
    /// retry.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, Error::ConditionFailed { .. })
    }
}
