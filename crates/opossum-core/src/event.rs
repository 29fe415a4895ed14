//! Events: what callers append ([`NewEvent`]) and what stores return ([`SequencedEvent`]).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::tag::{reject_control_characters, reject_duplicate_tags};
use crate::{Error, EventType, Position, Tag};

/// A JSON payload, kept as the exact compact JSON text that is stored.
///
/// Stores write these bytes verbatim and hand the same bytes back, so a payload round-trips
/// byte for byte. The text never contains a raw line break (JSON strings escape theirs), which
/// keeps one event per line in line-oriented logs.
#[derive(Clone)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Encodes any serializable value.
    ///
    /// # Errors
    /// [`Error::InvalidPayload`] when serde cannot encode the value (for example a map with
    /// non-string keys).
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Payload, Error> {
        serde_json::value::to_raw_value(value)
            .map(Payload)
            .map_err(|source| Error::InvalidPayload { source })
    }

    /// Takes JSON text as it is, byte for byte, except that line breaks become spaces.
    ///
    /// In valid JSON a line break can only be whitespace between tokens (inside strings it must
    /// be escaped), so replacing it changes no value, no key order and no number spelling.
    ///
    /// # Errors
    /// [`Error::InvalidPayload`] when the text is not one JSON value.
    pub fn from_json(text: &str) -> Result<Payload, Error> {
        let text = text.trim();
        let text = if text.contains(['\n', '\r']) {
            text.replace(['\n', '\r'], " ")
        } else {
            text.to_owned()
        };
        RawValue::from_string(text)
            .map(Payload)
            .map_err(|source| Error::InvalidPayload { source })
    }

    /// The JSON text.
    #[must_use]
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// Decodes the payload into `T`.
    ///
    /// # Errors
    /// The decoder's error when the JSON does not fit `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        // A raw value taken from pretty-printed JSON may span lines; keep payloads single-line.
        if raw.get().contains(['\n', '\r']) {
            return Payload::from_json(raw.get()).map_err(serde::de::Error::custom);
        }
        Ok(Payload(raw))
    }
}

/// When, why and by whom an event happened: a timestamp, optional ids that link events
/// together, and free text fields for audit attribution.
///
/// The fixed ids and the free [`fields`](Metadata::fields) are what a store's required-metadata
/// option ([`RequiredMetadata`](crate::RequiredMetadata)) can insist on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// When the event was created (UTC), by the client's clock. Set by the builder unless given.
    /// The store's own commit time is [`SequencedEvent::stored_at`].
    pub timestamp: Timestamp,
    /// Groups every event caused by one original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the message or event that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The id of the business operation (for example one HTTP request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Who caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Free audit fields, such as `reason`, `host` or `client`: names are non-empty, not one of
    /// the fixed names above, and neither names nor values hold control characters. Kept in
    /// name order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// The names of [`Metadata`]'s fixed fields, which a free field may not take.
pub(crate) const FIXED_METADATA_NAMES: [&str; 9] = [
    "timestamp",
    "correlation_id",
    "causation_id",
    "operation_id",
    "user_id",
    "fields",
    "stored_at",
    "version",
    "personal",
];

impl Metadata {
    /// Metadata with the given timestamp and no ids.
    #[must_use]
    pub fn at(timestamp: Timestamp) -> Metadata {
        Metadata {
            timestamp,
            correlation_id: None,
            causation_id: None,
            operation_id: None,
            user_id: None,
            fields: BTreeMap::new(),
        }
    }

    /// The value of a fixed id or free field by name (`"user_id"`, `"reason"`, …).
    ///
    /// ```
    /// use opossum_core::{Metadata, Timestamp};
    ///
    /// let mut m = Metadata::at(Timestamp::UNIX_EPOCH);
    /// m.user_id = Some("u-7".into());
    /// m.fields.insert("reason".into(), "correction of a typo".into());
    /// assert_eq!(m.get("user_id"), Some("u-7"));
    /// assert_eq!(m.get("reason"), Some("correction of a typo"));
    /// assert_eq!(m.get("host"), None);
    /// ```
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "correlation_id" => self.correlation_id.as_deref(),
            "causation_id" => self.causation_id.as_deref(),
            "operation_id" => self.operation_id.as_deref(),
            "user_id" => self.user_id.as_deref(),
            _ => self.fields.get(name).map(String::as_str),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        for id in [
            &self.correlation_id,
            &self.causation_id,
            &self.operation_id,
            &self.user_id,
        ]
        .into_iter()
        .flatten()
        {
            reject_control_characters("metadata", id)?;
        }
        for (name, value) in &self.fields {
            if name.is_empty() || FIXED_METADATA_NAMES.contains(&name.as_str()) {
                return Err(Error::InvalidMetadataField { name: name.clone() });
            }
            reject_control_characters("metadata field name", name)?;
            reject_control_characters("metadata", value)?;
        }
        Ok(())
    }
}

/// Which top-level payload fields of an event are personal data of one data subject, sealed
/// with that subject's key when a shredding store appends the event (see
/// [`records`](crate::records)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    /// The data subject (for example a student id): whose key seals the fields, and what
    /// `forget` names.
    pub subject: String,
    /// The top-level payload fields that hold the subject's personal data, in the order given.
    pub fields: Vec<String>,
    /// Set by a read when the subject was forgotten: the fields are then absent from the
    /// payload. Never set on an event being appended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

impl PersonalData {
    fn validate(&self) -> Result<(), Error> {
        if self.subject.is_empty() {
            return Err(Error::InvalidPersonalData {
                problem: "the data subject is empty: name whose personal data this is".into(),
            });
        }
        reject_control_characters("data subject", &self.subject)?;
        if self.fields.is_empty() {
            return Err(Error::InvalidPersonalData {
                problem: format!(
                    "no personal fields are named for subject {:?}: list at least one",
                    self.subject
                ),
            });
        }
        for (i, field) in self.fields.iter().enumerate() {
            if field.is_empty() || self.fields[..i].contains(field) {
                return Err(Error::InvalidPersonalData {
                    problem: format!(
                        "personal field {field:?} is empty or named twice: name each field once"
                    ),
                });
            }
            reject_control_characters("personal field", field)?;
        }
        Ok(())
    }
}

/// An event to append: type, tags, JSON payload and metadata, already validated.
///
/// Build one with [`NewEvent::builder`] or, from a typed event, [`NewEvent::from_typed`].
///
/// ```
/// use opossum_core::{NewEvent, Payload};
///
/// let event = NewEvent::builder("CourseCreated", Payload::from_json(r#"{"name":"Rust"}"#)?)
///     .tag("courseId", "c-1")
///     .correlation_id("req-17")
///     .build()?;
/// assert_eq!(event.event_type().as_str(), "CourseCreated");
/// assert_eq!(event.tags()[0].value(), "c-1");
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedEvent")]
pub struct NewEvent {
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: Metadata,
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    personal: Option<PersonalData>,
    /// True when the personal fields hold ciphertext (sealed by a shredding layer, or read
    /// from a stored line); a store refuses personal data that is not sealed.
    #[serde(skip)]
    sealed: bool,
}

pub(crate) fn first_version() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
pub(crate) fn is_first_version(version: &u32) -> bool {
    *version == 1
}

#[derive(Deserialize)]
struct UncheckedEvent {
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: Metadata,
    #[serde(default = "first_version")]
    version: u32,
    #[serde(default)]
    personal: Option<PersonalData>,
}

impl TryFrom<UncheckedEvent> for NewEvent {
    type Error = Error;
    fn try_from(e: UncheckedEvent) -> Result<Self, Error> {
        NewEvent::from_parts(e.event_type, e.tags, e.payload, e.metadata)?
            .with_version(e.version)?
            .with_personal_data(e.personal)
    }
}

impl NewEvent {
    /// Starts a builder for an event of the given type name and payload. The timestamp defaults
    /// to now.
    pub fn builder(event_type: impl AsRef<str>, payload: Payload) -> EventBuilder {
        EventBuilder {
            event_type: EventType::new(event_type),
            payload: Ok(payload),
            tags: Vec::new(),
            tag_error: None,
            metadata: None,
            version: 1,
            personal: None,
        }
    }

    /// Starts a builder from a typed event: its type name is [`DomainEvent::EVENT_TYPE`], its
    /// version [`DomainEvent::VERSION`], its payload its JSON encoding, and, when the type names
    /// [`DomainEvent::PERSONAL_FIELDS`] and the value a [`DomainEvent::data_subject`], the
    /// personal data to seal.
    pub fn from_typed<E: DomainEvent>(event: &E) -> EventBuilder {
        let personal = match event.data_subject() {
            Some(subject) if !E::PERSONAL_FIELDS.is_empty() => Some(PersonalData {
                subject,
                fields: E::PERSONAL_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
                erased: false,
            }),
            _ => None,
        };
        EventBuilder {
            event_type: EventType::new(E::EVENT_TYPE),
            payload: Payload::from_value(event),
            tags: Vec::new(),
            tag_error: None,
            metadata: None,
            version: E::VERSION,
            personal,
        }
    }

    /// Assembles an event from parts, validating the tags.
    ///
    /// # Errors
    /// [`Error::DuplicateTag`] or [`Error::ControlCharacter`] (in metadata ids).
    pub fn from_parts(
        event_type: EventType,
        tags: Vec<Tag>,
        payload: Payload,
        metadata: Metadata,
    ) -> Result<NewEvent, Error> {
        reject_duplicate_tags(&tags)?;
        metadata.validate()?;
        Ok(NewEvent {
            event_type,
            tags,
            payload,
            metadata,
            version: 1,
            personal: None,
            sealed: false,
        })
    }

    /// The same event with another payload schema version (1 when never set).
    ///
    /// # Errors
    /// [`Error::ZeroVersion`] for 0: versions start at 1.
    pub fn with_version(mut self, version: u32) -> Result<NewEvent, Error> {
        if version == 0 {
            return Err(Error::ZeroVersion {
                event_type: self.event_type.as_str().to_owned(),
            });
        }
        self.version = version;
        Ok(self)
    }

    /// The same event with (or without) personal data to seal.
    ///
    /// # Errors
    /// [`Error::InvalidPersonalData`] for an empty subject or field list, or a field named
    /// twice; [`Error::ControlCharacter`] in a subject or field name.
    pub fn with_personal_data(mut self, personal: Option<PersonalData>) -> Result<NewEvent, Error> {
        if let Some(p) = &personal {
            p.validate()?;
        }
        self.personal = personal;
        Ok(self)
    }

    /// The same event with another payload (used by upcasting and sealing; the type, tags and
    /// metadata stay).
    #[must_use]
    pub fn with_payload(mut self, payload: Payload) -> NewEvent {
        self.payload = payload;
        self
    }

    /// The same event under another type name, at `version` (used by upcasting).
    pub(crate) fn retyped(mut self, event_type: EventType, version: u32) -> NewEvent {
        self.event_type = event_type;
        self.version = version;
        self
    }

    /// The version of the payload's schema: 1 unless the event's type says otherwise (see
    /// [`DomainEvent::VERSION`]). Reads through [`Upcasters`](crate::Upcasters) give the
    /// version the upcasters reached.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The personal data the event carries, if any.
    #[must_use]
    pub fn personal_data(&self) -> Option<&PersonalData> {
        self.personal.as_ref()
    }

    /// True when the event's personal fields hold ciphertext: as a shredding layer hands it
    /// to a store, and as a store reads it back before the layer opens it.
    #[must_use]
    pub fn is_sealed(&self) -> bool {
        self.sealed && self.personal.is_some()
    }

    /// Marks the personal fields as sealed (or opened) ciphertext.
    pub(crate) fn set_sealed(&mut self, sealed: bool) {
        self.sealed = sealed;
    }

    /// The personal data, to mark erased or narrow (used by the shredding layer).
    pub(crate) fn personal_data_mut(&mut self) -> &mut Option<PersonalData> {
        &mut self.personal
    }

    /// The event type.
    #[must_use]
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    /// The tags, in the order given.
    #[must_use]
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// True when the event carries `tag`.
    #[must_use]
    pub fn has_tag(&self, tag: &Tag) -> bool {
        self.tags.contains(tag)
    }

    /// The value of the first tag with `key`, if any.
    ///
    /// ```
    /// use opossum_core::{NewEvent, Payload};
    ///
    /// let e = NewEvent::builder("T", Payload::from_json("{}")?).tag("studentId", "s-1").build()?;
    /// assert_eq!(e.tag_value("studentId"), Some("s-1"));
    /// assert_eq!(e.tag_value("courseId"), None);
    /// # Ok::<(), opossum_core::Error>(())
    /// ```
    #[must_use]
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key() == key).map(Tag::value)
    }

    /// The JSON payload.
    #[must_use]
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The metadata.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// A stored event: a [`NewEvent`] plus the position the store gave it and the store's own
/// commit time.
///
/// In JSON it is one flat object:
/// `{"position":…,"type":…,"tags":…,"payload":…,"metadata":…,"stored_at":…}` (`version` and
/// `personal` as well, when the event has them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FlatEvent", try_from = "FlatEvent")]
pub struct SequencedEvent {
    /// The event's sequence position.
    pub position: Position,
    /// The event itself.
    pub event: NewEvent,
    /// When the store committed the event, by the store's clock (the writer's clock when it
    /// wrote the line); `None` for events stored before stores recorded it. The client's own
    /// time is the event's [`Metadata::timestamp`].
    pub stored_at: Option<Timestamp>,
}

/// The flat JSON shape of a [`SequencedEvent`]. (`#[serde(flatten)]` cannot carry a raw payload.)
#[derive(Serialize, Deserialize)]
struct FlatEvent {
    position: Position,
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: Metadata,
    #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    personal: Option<PersonalData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stored_at: Option<Timestamp>,
}

impl From<SequencedEvent> for FlatEvent {
    fn from(s: SequencedEvent) -> Self {
        FlatEvent {
            position: s.position,
            event_type: s.event.event_type,
            tags: s.event.tags,
            payload: s.event.payload,
            metadata: s.event.metadata,
            version: s.event.version,
            personal: s.event.personal,
            stored_at: s.stored_at,
        }
    }
}

impl TryFrom<FlatEvent> for SequencedEvent {
    type Error = Error;
    fn try_from(f: FlatEvent) -> Result<Self, Error> {
        Ok(SequencedEvent {
            position: f.position,
            event: NewEvent::from_parts(f.event_type, f.tags, f.payload, f.metadata)?
                .with_version(f.version)?
                .with_personal_data(f.personal)?,
            stored_at: f.stored_at,
        })
    }
}

impl SequencedEvent {
    /// A stored event without a recorded commit time (what tests and in-memory fixtures build).
    #[must_use]
    pub fn new(position: Position, event: NewEvent) -> SequencedEvent {
        SequencedEvent {
            position,
            event,
            stored_at: None,
        }
    }

    /// Decodes the payload into the typed event `E`.
    ///
    /// # Errors
    /// - [`Error::EventTypeMismatch`] when the stored type is not `E::EVENT_TYPE`;
    /// - [`Error::Sealed`] when the event's personal fields are still sealed (it was read from a
    ///   store directly rather than through [`Records`](crate::records::Records) with the key
    ///   store), so that ciphertext is never taken for a value;
    /// - [`Error::EventVersion`] when the event's version is not `E::VERSION` (read through
    ///   [`Upcasters`](crate::Upcasters) to bring older versions up to date);
    /// - [`Error::Erased`] when the subject's personal data was erased and `E` cannot do
    ///   without those fields (make them `Option` or `#[serde(default)]` to read such events);
    /// - [`Error::PayloadDecode`] when the payload does not fit `E`.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, Error> {
        let found = self.event.event_type.as_str();
        if found != E::EVENT_TYPE {
            return Err(Error::EventTypeMismatch {
                position: self.position,
                expected: E::EVENT_TYPE.to_owned(),
                found: found.to_owned(),
            });
        }
        if self.event.is_sealed() {
            let subject = self
                .event
                .personal
                .as_ref()
                .map(|p| p.subject.clone())
                .unwrap_or_default();
            return Err(Error::Sealed {
                position: self.position,
                event_type: found.to_owned(),
                subject,
            });
        }
        if self.event.version != E::VERSION {
            return Err(Error::EventVersion {
                position: self.position,
                event_type: found.to_owned(),
                found: self.event.version,
                expected: E::VERSION,
            });
        }
        self.event.payload.decode().map_err(|source| {
            match self.event.personal.as_ref().filter(|p| p.erased) {
                Some(p) => Error::Erased {
                    position: self.position,
                    event_type: found.to_owned(),
                    subject: p.subject.clone(),
                    fields: p.fields.clone(),
                    source,
                },
                None => Error::PayloadDecode {
                    position: self.position,
                    event_type: found.to_owned(),
                    source,
                },
            }
        })
    }

    /// True when the event has type `E::EVENT_TYPE`.
    #[must_use]
    pub fn is<E: DomainEvent>(&self) -> bool {
        self.event.event_type.as_str() == E::EVENT_TYPE
    }

    /// True when the event held personal data of a subject who was since forgotten: those
    /// fields are absent from its payload.
    #[must_use]
    pub fn is_erased(&self) -> bool {
        self.event.personal.as_ref().is_some_and(|p| p.erased)
    }
}

/// A Rust type that is stored as an event, with a stable type name.
///
/// The name is part of the stored data: renaming the Rust type must not change it, which is why
/// it is spelled out rather than derived from the type's path.
///
/// ```
/// use opossum_core::{DomainEvent, NewEvent, Position, SequencedEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct StudentRegistered { name: String }
///
/// impl DomainEvent for StudentRegistered {
///     const EVENT_TYPE: &'static str = "StudentRegistered";
/// }
///
/// let new = NewEvent::from_typed(&StudentRegistered { name: "Ada".into() })
///     .tag("studentId", "s-1")
///     .build()?;
/// let stored = SequencedEvent::new(Position::FIRST, new);
/// assert_eq!(stored.decode::<StudentRegistered>()?.name, "Ada");
/// # Ok::<(), opossum_core::Error>(())
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The stored type name, such as `"StudentRegistered"`.
    const EVENT_TYPE: &'static str;

    /// The version of this type's payload schema, stored with every event. Raise it when the
    /// payload's shape changes, and register an upcaster from the previous version (see
    /// [`Upcasters`](crate::Upcasters)); events already stored keep their version and bytes.
    const VERSION: u32 = 1;

    /// The top-level payload fields that hold personal data of the event's
    /// [`data_subject`](DomainEvent::data_subject). A store that shreds (see
    /// [`records`](crate::records)) seals them with the subject's key; once the subject is
    /// forgotten, reads give the event without them.
    const PERSONAL_FIELDS: &'static [&'static str] = &[];

    /// Whose personal data this event holds (for example the student's id), or `None` when it
    /// holds none. Only consulted when [`PERSONAL_FIELDS`](DomainEvent::PERSONAL_FIELDS) is
    /// not empty.
    fn data_subject(&self) -> Option<String> {
        None
    }
}

/// Fluent builder for a [`NewEvent`]. Errors are collected and reported by [`EventBuilder::build`].
#[derive(Debug)]
#[must_use = "call .build() to get the event"]
pub struct EventBuilder {
    event_type: Result<EventType, Error>,
    payload: Result<Payload, Error>,
    tags: Vec<Tag>,
    tag_error: Option<Error>,
    metadata: Option<Metadata>,
    version: u32,
    personal: Option<PersonalData>,
}

impl EventBuilder {
    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        match Tag::new(key, value) {
            Ok(tag) => self.tags.push(tag),
            Err(e) => {
                self.tag_error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds tags that are already validated.
    pub fn tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self
    }

    fn metadata_mut(&mut self) -> &mut Metadata {
        self.metadata
            .get_or_insert_with(|| Metadata::at(Timestamp::now()))
    }

    /// Sets the timestamp (default: now).
    pub fn timestamp(mut self, timestamp: Timestamp) -> Self {
        self.metadata_mut().timestamp = timestamp;
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata_mut().correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata_mut().causation_id = Some(id.into());
        self
    }

    /// Sets the operation id.
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.metadata_mut().operation_id = Some(id.into());
        self
    }

    /// Sets the user id.
    pub fn user_id(mut self, id: impl Into<String>) -> Self {
        self.metadata_mut().user_id = Some(id.into());
        self
    }

    /// Sets a free metadata field, such as `reason` or `host` (see [`Metadata::fields`]).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata_mut().fields.insert(name.into(), value.into());
        self
    }

    /// Sets the payload schema version (default 1, or [`DomainEvent::VERSION`]).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Marks top-level payload fields as personal data of `subject`, to be sealed by a store
    /// that shreds (typed events say this through [`DomainEvent::PERSONAL_FIELDS`]).
    pub fn personal_data<I, F>(mut self, subject: impl Into<String>, fields: I) -> Self
    where
        I: IntoIterator<Item = F>,
        F: Into<String>,
    {
        self.personal = Some(PersonalData {
            subject: subject.into(),
            fields: fields.into_iter().map(Into::into).collect(),
            erased: false,
        });
        self
    }

    /// Replaces the whole metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Validates everything and returns the event.
    ///
    /// # Errors
    /// The first problem found: an invalid type name, payload, tag, duplicate tag, metadata id
    /// or field, version 0, or invalid personal data.
    pub fn build(mut self) -> Result<NewEvent, Error> {
        let event_type = self.event_type?;
        let payload = self.payload?;
        if let Some(e) = self.tag_error {
            return Err(e);
        }
        let metadata = self
            .metadata
            .take()
            .unwrap_or_else(|| Metadata::at(Timestamp::now()));
        NewEvent::from_parts(event_type, self.tags, payload, metadata)?
            .with_version(self.version)?
            .with_personal_data(self.personal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Opened {
        id: u32,
    }
    impl DomainEvent for Opened {
        const EVENT_TYPE: &'static str = "Opened";
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Closed {
        reason: String,
    }
    impl DomainEvent for Closed {
        const EVENT_TYPE: &'static str = "Closed";
    }

    fn sequenced(event: NewEvent) -> SequencedEvent {
        SequencedEvent::new(Position::FIRST, event)
    }

    #[test]
    fn typed_round_trip() {
        let e = NewEvent::from_typed(&Opened { id: 3 }).build().unwrap();
        assert_eq!(e.payload().as_json(), r#"{"id":3}"#);
        let s = sequenced(e);
        assert!(s.is::<Opened>());
        assert_eq!(s.decode::<Opened>().unwrap(), Opened { id: 3 });
    }

    #[test]
    fn decoding_the_wrong_type_is_a_clear_error() {
        let s = sequenced(NewEvent::from_typed(&Opened { id: 3 }).build().unwrap());
        match s.decode::<Closed>() {
            Err(Error::EventTypeMismatch {
                expected, found, ..
            }) => {
                assert_eq!(expected, "Closed");
                assert_eq!(found, "Opened");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_payload_that_does_not_fit_is_a_decode_error() {
        let e = NewEvent::builder("Closed", Payload::from_json(r#"{"reason":5}"#).unwrap())
            .build()
            .unwrap();
        assert!(matches!(
            sequenced(e).decode::<Closed>(),
            Err(Error::PayloadDecode { .. })
        ));
    }

    #[test]
    fn builder_reports_bad_tags_and_types() {
        let p = Payload::from_json("{}").unwrap();
        assert!(matches!(
            NewEvent::builder("", p.clone()).build(),
            Err(Error::EmptyEventType)
        ));
        assert!(matches!(
            NewEvent::builder("T", p.clone()).tag("", "x").build(),
            Err(Error::EmptyTagKey { .. })
        ));
        assert!(matches!(
            NewEvent::builder("T", p.clone())
                .tag("a", "1")
                .tag("a", "1")
                .build(),
            Err(Error::DuplicateTag { .. })
        ));
        assert!(
            NewEvent::builder("T", p.clone())
                .tag("a", "1")
                .tag("a", "2")
                .build()
                .is_ok()
        );
        assert!(matches!(
            NewEvent::builder("T", p).user_id("bob\n").build(),
            Err(Error::ControlCharacter {
                what: "metadata",
                ..
            })
        ));
    }

    #[test]
    fn multi_line_json_is_made_single_line() {
        let p = Payload::from_json("{\n  \"b\": \"x\\ny\",\r\n \"a\": 1E2\n}").unwrap();
        assert_eq!(p.as_json(), r#"{   "b": "x\ny",   "a": 1E2 }"#);
        assert!(Payload::from_json("{").is_err());
        assert!(Payload::from_json("1 2").is_err());
    }

    #[test]
    fn metadata_ids_are_kept() {
        let ts: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let e = NewEvent::builder("T", Payload::from_json("null").unwrap())
            .timestamp(ts)
            .correlation_id("c")
            .causation_id("k")
            .operation_id("o")
            .user_id("u")
            .build()
            .unwrap();
        let m = e.metadata();
        assert_eq!(m.timestamp, ts);
        assert_eq!(
            (m.correlation_id.as_deref(), m.causation_id.as_deref()),
            (Some("c"), Some("k"))
        );
        assert_eq!(
            (m.operation_id.as_deref(), m.user_id.as_deref()),
            (Some("o"), Some("u"))
        );
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = NewEvent::builder("T", Payload::from_json(r#"{"x":[1,2.5,"é"]}"#).unwrap())
            .tag("k", "v/..")
            .build()
            .unwrap();
        let s = sequenced(e);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SequencedEvent>(&json).unwrap(), s);
    }
}
