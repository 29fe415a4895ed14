//! Events: what callers append ([`NewEvent`]) and what stores return ([`SequencedEvent`]).

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

/// When and why an event happened: a timestamp plus optional ids that link events together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// When the event was created (UTC). Set by the builder unless given.
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
}

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
}

#[derive(Deserialize)]
struct UncheckedEvent {
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: Metadata,
}

impl TryFrom<UncheckedEvent> for NewEvent {
    type Error = Error;
    fn try_from(e: UncheckedEvent) -> Result<Self, Error> {
        NewEvent::from_parts(e.event_type, e.tags, e.payload, e.metadata)
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
        }
    }

    /// Starts a builder from a typed event: its type name is [`DomainEvent::EVENT_TYPE`] and its
    /// payload is its JSON encoding.
    pub fn from_typed<E: DomainEvent>(event: &E) -> EventBuilder {
        EventBuilder {
            event_type: EventType::new(E::EVENT_TYPE),
            payload: Payload::from_value(event),
            tags: Vec::new(),
            tag_error: None,
            metadata: None,
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
        })
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

/// A stored event: a [`NewEvent`] plus the position the store gave it.
///
/// In JSON it is one flat object: `{"position":…,"type":…,"tags":…,"payload":…,"metadata":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FlatEvent", try_from = "FlatEvent")]
pub struct SequencedEvent {
    /// The event's sequence position.
    pub position: Position,
    /// The event itself.
    pub event: NewEvent,
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
}

impl From<SequencedEvent> for FlatEvent {
    fn from(s: SequencedEvent) -> Self {
        FlatEvent {
            position: s.position,
            event_type: s.event.event_type,
            tags: s.event.tags,
            payload: s.event.payload,
            metadata: s.event.metadata,
        }
    }
}

impl TryFrom<FlatEvent> for SequencedEvent {
    type Error = Error;
    fn try_from(f: FlatEvent) -> Result<Self, Error> {
        Ok(SequencedEvent {
            position: f.position,
            event: NewEvent::from_parts(f.event_type, f.tags, f.payload, f.metadata)?,
        })
    }
}

impl SequencedEvent {
    /// Decodes the payload into the typed event `E`.
    ///
    /// # Errors
    /// [`Error::EventTypeMismatch`] when the stored type is not `E::EVENT_TYPE`;
    /// [`Error::PayloadDecode`] when the payload does not fit `E`.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, Error> {
        let found = self.event.event_type.as_str();
        if found != E::EVENT_TYPE {
            return Err(Error::EventTypeMismatch {
                position: self.position,
                expected: E::EVENT_TYPE.to_owned(),
                found: found.to_owned(),
            });
        }
        self.event
            .payload
            .decode()
            .map_err(|source| Error::PayloadDecode {
                position: self.position,
                event_type: found.to_owned(),
                source,
            })
    }

    /// True when the event has type `E::EVENT_TYPE`.
    #[must_use]
    pub fn is<E: DomainEvent>(&self) -> bool {
        self.event.event_type.as_str() == E::EVENT_TYPE
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
/// let stored = SequencedEvent { position: Position::FIRST, event: new };
/// assert_eq!(stored.decode::<StudentRegistered>()?.name, "Ada");
/// # Ok::<(), opossum_core::Error>(())
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The stored type name, such as `"StudentRegistered"`.
    const EVENT_TYPE: &'static str;
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

    /// Replaces the whole metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Validates everything and returns the event.
    ///
    /// # Errors
    /// The first problem found: an invalid type name, payload, tag, duplicate tag or metadata id.
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
        NewEvent::from_parts(event_type, self.tags, payload, metadata)
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
        SequencedEvent {
            position: Position::FIRST,
            event,
        }
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
