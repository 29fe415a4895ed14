//! The one error type of `opossum-core`, shared by every [`EventStore`](crate::EventStore), and
//! the [`ErrorKind`] every Opossum crate's error reports.

use std::fmt;

use crate::Position;

/// Everything that can go wrong in the core types and through the [`EventStore`](crate::EventStore)
/// trait.
///
/// Validation variants are raised where a value is built, so a store never sees an invalid event.
/// [`Error::ConditionFailed`] is the DCB concurrency signal: callers re-read and decide again.
/// Storage back ends report their own failures through [`Error::Storage`], which carries the
/// back end's error with its [`ErrorKind`].
///
/// To decide what to do about an error, match on [`Error::kind`]: it is the same
/// [`ErrorKind`] whichever crate the error came through, so no downcast is needed.
///
/// ```
/// use opossum_core::{Error, ErrorKind};
///
/// fn status(error: &Error) -> u16 {
///     match error.kind() {
///         ErrorKind::ConditionFailed => 409,
///         ErrorKind::InvalidInput => 400,
///         ErrorKind::DiskFull => 507,
///         _ => 500,
///     }
/// }
/// assert_eq!(status(&Error::EmptyAppend), 400);
/// assert_eq!(status(&Error::ConditionFailed { after: None }), 409);
/// ```
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

    /// Read options that a read cannot follow (for example a descending streaming read).
    #[error("invalid read options: {problem}")]
    InvalidReadOptions {
        /// What is wrong, and what to do instead.
        problem: String,
    },
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

    /// A typed decode found another version of the event's payload schema than the Rust type
    /// reads, and no upcaster path led from one to the other.
    #[error(
        "event at position {position} of type {event_type:?} is version {found}, but the code \
         reads version {expected}, and no upcasters lead from {found} to {expected}: register \
         an upcaster for every step (or read it as its own version's type)"
    )]
    EventVersion {
        /// The position of the event.
        position: Position,
        /// The event type name.
        event_type: String,
        /// The version the event has (after any upcasters that applied).
        found: u32,
        /// The version the Rust type reads ([`DomainEvent::VERSION`](crate::DomainEvent::VERSION)).
        expected: u32,
    },

    /// A typed decode of an event whose personal fields are sealed: it was read from a store
    /// directly, not through a shredding layer with the key store.
    #[error(
        "the {event_type:?} event at position {position} holds sealed personal data of subject \
         {subject:?}: read it through opossum_core::records::Records with the key store to \
         decode it"
    )]
    Sealed {
        /// The position of the event.
        position: Position,
        /// The event type name.
        event_type: String,
        /// The data subject.
        subject: String,
    },

    /// Version 0 was given for an event; versions start at 1.
    #[error("event type {event_type:?} was given version 0; versions start at 1")]
    ZeroVersion {
        /// The event type name.
        event_type: String,
    },

    /// Upcasters that cannot be registered: a step given twice, version 0, a rename loop.
    #[error("invalid upcaster: {problem}")]
    InvalidUpcaster {
        /// What is wrong.
        problem: String,
    },

    /// An upcaster failed on a stored payload.
    #[error("upcasting {event_type:?} from version {version} failed: {problem}")]
    Upcast {
        /// The event type name.
        event_type: String,
        /// The version the upcaster reads.
        version: u32,
        /// What went wrong.
        problem: String,
    },

    /// A free metadata field had an empty name or one of the fixed names.
    #[error(
        "metadata field name {name:?} is empty or one of the fixed names (timestamp, \
         correlation_id, causation_id, operation_id, user_id, …): choose another name"
    )]
    InvalidMetadataField {
        /// The rejected name.
        name: String,
    },

    /// An event lacked a metadata field that the store requires on every append; nothing was
    /// appended.
    #[error(
        "event {index} of the append (type {event_type:?}) has no {field:?} in its metadata, \
         which this store requires on every event; set it (nothing was appended)"
    )]
    MissingMetadata {
        /// The event's index in the append, from 0.
        index: usize,
        /// The event type name.
        event_type: String,
        /// The required field that is missing or empty.
        field: String,
    },

    /// Personal data marked on an event was not usable.
    #[error("invalid personal data: {problem}")]
    InvalidPersonalData {
        /// What is wrong.
        problem: String,
    },

    /// An event marked personal data, but was appended to a store directly rather than through
    /// a shredding layer that seals it; nothing was appended.
    #[error(
        "event {index} of the append (type {event_type:?}) holds personal data of subject \
         {subject:?}, which is only stored sealed: append it through \
         opossum_core::records::Records with a key store (nothing was appended)"
    )]
    UnsealedPersonalData {
        /// The event's index in the append, from 0.
        index: usize,
        /// The event type name.
        event_type: String,
        /// The data subject.
        subject: String,
    },

    /// A sealed personal field did not open with its subject's key: the line or the key was
    /// changed.
    #[error(
        "the sealed field {field:?} of subject {subject:?} in the event at position {position} \
         does not open with the subject's key: the record or its key was altered; run verify"
    )]
    SealBroken {
        /// The position of the event.
        position: Position,
        /// The data subject.
        subject: String,
        /// The field that did not open.
        field: String,
    },

    /// The key store failed.
    #[error("key store: {0}")]
    KeyStore(StorageError),

    /// New personal data was appended for a subject who was forgotten; nothing was appended.
    #[error(
        "subject {subject:?} was forgotten (its key is destroyed): new personal data for it \
         cannot be stored; nothing was appended"
    )]
    SubjectForgotten {
        /// The forgotten subject.
        subject: String,
    },

    /// A typed decode of an event whose subject was forgotten failed, because the Rust type
    /// needs the erased fields.
    #[error(
        "the personal data of subject {subject:?} in the {event_type:?} event at position \
         {position} was erased (fields {fields:?}); make those fields Option or \
         #[serde(default)] to read such events: {source}"
    )]
    Erased {
        /// The position of the event.
        position: Position,
        /// The event type name.
        event_type: String,
        /// The forgotten subject.
        subject: String,
        /// The erased fields.
        fields: Vec<String>,
        /// What the JSON decoder said.
        #[source]
        source: serde_json::Error,
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

    /// The storage back end failed. It carries the back end's own error (for the file store,
    /// `opossum_fs::Error`), which says what happened and what to do, and its [`ErrorKind`].
    #[error(transparent)]
    Storage(StorageError),
}

impl Error {
    /// What kind of error this is: the case a caller acts on.
    ///
    /// Validation errors are [`ErrorKind::InvalidInput`], a payload that does not decode (or an
    /// event of another type) is [`ErrorKind::Decode`], and a storage failure has the kind its
    /// back end gave it.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::EmptyEventType
            | Error::EmptyTagKey { .. }
            | Error::ControlCharacter { .. }
            | Error::DuplicateTag { .. }
            | Error::EmptyAppend
            | Error::EmptyQuery
            | Error::InvalidReadOptions { .. }
            | Error::ZeroPosition
            | Error::InvalidPayload { .. }
            | Error::ZeroVersion { .. }
            | Error::InvalidMetadataField { .. }
            | Error::MissingMetadata { .. }
            | Error::InvalidPersonalData { .. }
            | Error::InvalidUpcaster { .. }
            | Error::SubjectForgotten { .. }
            | Error::UnsealedPersonalData { .. } => ErrorKind::InvalidInput,
            Error::SealBroken { .. } => ErrorKind::Corrupt,
            Error::KeyStore(e) => e.kind(),
            Error::EventTypeMismatch { .. }
            | Error::PayloadDecode { .. }
            | Error::EventVersion { .. }
            | Error::Upcast { .. }
            | Error::Erased { .. }
            | Error::Sealed { .. } => ErrorKind::Decode,
            Error::ConditionFailed { .. } => ErrorKind::ConditionFailed,
            Error::Storage(e) => e.kind(),
        }
    }

    /// True when this is [`Error::ConditionFailed`], the only error a decide-and-retry loop should
    /// retry. The same as `self.kind() == ErrorKind::ConditionFailed`.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        self.kind() == ErrorKind::ConditionFailed
    }

    /// A storage back end's failure, of kind `kind`.
    pub fn storage(
        kind: ErrorKind,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        Error::Storage(StorageError::new(kind, error))
    }
}

/// A storage back end's error, as [`Error::Storage`] carries it: the back end's own error, which
/// the message and the source chain come from, and its [`ErrorKind`].
///
/// Its `Display` and `source` are those of the back end's error. To read the back end's
/// details (such as the file a file store could not write), use
/// [`downcast_ref`](StorageError::downcast_ref); to decide what to do, the kind is enough.
pub struct StorageError {
    kind: ErrorKind,
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl StorageError {
    /// Wraps a back end's error of kind `kind`.
    pub fn new(
        kind: ErrorKind,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> StorageError {
        StorageError {
            kind,
            inner: error.into(),
        }
    }

    /// What kind of failure it is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The back end's error.
    #[must_use]
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The back end's error as a `T`, when it is one.
    #[must_use]
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }

    /// The back end's error.
    #[must_use]
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.inner
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageError")
            .field("kind", &self.kind)
            .field("error", &self.inner)
            .finish()
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// The cases a caller acts on, shared by the errors of every Opossum crate: each has a
/// `kind()` that returns one.
///
/// Like [`std::io::ErrorKind`], it says what to *do*; the error's message and source chain say
/// what happened. New kinds may be added, so a `match` needs a catch-all arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A DCB append condition failed: an event the decision depended on was appended since it
    /// read. Nothing was appended. Read again, decide again.
    ConditionFailed,
    /// The caller gave something invalid: an event, a query, options, a configuration, a path,
    /// a projection definition. Nothing was changed. Fix the input.
    InvalidInput,
    /// What was asked for does not exist: a projection that is not registered, a message with
    /// no handler.
    NotFound,
    /// A stored event's payload does not decode into the Rust type asked for, or the event has
    /// another type: the code and the stored data disagree.
    Decode,
    /// The disk holding the data is full, or the disk quota is used up. Nothing stored was
    /// lost. Free space, then retry.
    DiskFull,
    /// The folder, file or mount cannot be written. Reads work.
    ReadOnly,
    /// Another process held the store's lock for longer than the lock timeout. Retry later.
    LockTimeout,
    /// The work conflicts with work in progress: another process maintains the projections, a
    /// rebuild is running, the store is still in use. Retry later, or do it elsewhere.
    Busy,
    /// Stored data is damaged or was edited outside Opossum. Nothing was changed; run verify and
    /// restore from a backup, or rebuild the projection.
    Corrupt,
    /// The handle can no longer be used: it was closed, the store was deleted by another handle
    /// or process, or it stopped after a write failure it could not undo. Open it again.
    Closed,
    /// The file system does not provide what the store needs (it did not honour the lock).
    /// Nothing was acknowledged. Move the store, or mount the share as documented.
    Unsupported,
    /// An operation did not finish in time: a handler outran the mediator's timeout, a read
    /// model had not caught up. Retry later.
    Timeout,
    /// A projection's own code failed (returned an error or panicked) and the projection is
    /// stopped at that event. Fix the projection or the event's data.
    ProjectionFailed,
    /// Any other operating-system I/O error. The message names the file.
    Io,
    /// Anything else: a background task that ended unexpectedly, an error of the caller's own
    /// code.
    Other,
}

impl ErrorKind {
    /// A short description, as [`Display`](fmt::Display) shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConditionFailed => "append condition failed",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::Decode => "payload does not decode",
            ErrorKind::DiskFull => "disk full",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::LockTimeout => "lock timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::Closed => "closed",
            ErrorKind::Unsupported => "unsupported file system",
            ErrorKind::Timeout => "timed out",
            ErrorKind::ProjectionFailed => "projection failed",
            ErrorKind::Io => "I/O error",
            ErrorKind::Other => "other error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the back end failed")]
    struct BackEnd(#[source] std::io::Error);

    #[test]
    fn a_storage_error_keeps_its_kind_message_and_chain() {
        let error = Error::storage(
            ErrorKind::DiskFull,
            BackEnd(std::io::Error::other("no space")),
        );
        assert_eq!(error.kind(), ErrorKind::DiskFull);
        assert_eq!(error.to_string(), "the back end failed");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("no space"));
        let Error::Storage(storage) = &error else {
            panic!("not a storage error");
        };
        assert!(storage.downcast_ref::<BackEnd>().is_some());
        assert!(!error.is_condition_failed());
    }

    #[test]
    fn validation_and_decode_errors_have_their_kinds() {
        assert_eq!(Error::EmptyQuery.kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::ZeroPosition.kind(), ErrorKind::InvalidInput);
        let mismatch = Error::EventTypeMismatch {
            position: Position::FIRST,
            expected: "A".into(),
            found: "B".into(),
        };
        assert_eq!(mismatch.kind(), ErrorKind::Decode);
        assert!(Error::ConditionFailed { after: None }.is_condition_failed());
        assert_eq!(ErrorKind::DiskFull.to_string(), "disk full");
    }
}
