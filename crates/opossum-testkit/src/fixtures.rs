//! Small builders for events, tags and queries, and a comparable view of stored events.
//!
//! Every builder panics on invalid input: they exist to keep tests short, and a bad literal in
//! a test is a bug in that test.

use opossum_core::{Metadata, NewEvent, Payload, Position, Query, QueryItem, SequencedEvent, Tag};

/// A tag; panics when `key` is empty or either part holds a control character.
#[must_use]
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::new(key, value).expect("test tag must be valid")
}

/// A position; panics on 0.
#[must_use]
pub fn pos(value: u64) -> Position {
    Position::new(value).expect("test position must be at least 1")
}

/// An event of type `event_type` with the given tags and the payload `{}`.
#[must_use]
pub fn event(event_type: &str, tags: &[(&str, &str)]) -> NewEvent {
    event_with_payload(event_type, tags, "{}")
}

/// An event of type `event_type` with the given tags and JSON payload text.
#[must_use]
pub fn event_with_payload(event_type: &str, tags: &[(&str, &str)], payload: &str) -> NewEvent {
    let payload = Payload::from_json(payload).expect("test payload must be JSON");
    tags.iter()
        .fold(NewEvent::builder(event_type, payload), |b, (k, v)| {
            b.tag(*k, *v)
        })
        .build()
        .expect("test event must be valid")
}

/// An event of type `event_type` with the given tags and payload `{"n":n}`, so tests can tell
/// events of the same type apart.
#[must_use]
pub fn numbered(event_type: &str, tags: &[(&str, &str)], n: u64) -> NewEvent {
    event_with_payload(event_type, tags, &format!(r#"{{"n":{n}}}"#))
}

/// The query for events of any of `types`.
#[must_use]
pub fn types_query(types: &[&str]) -> Query {
    Query::from_event_types(types).expect("test query needs at least one valid type")
}

/// The query for events that carry all of `tags`.
#[must_use]
pub fn tags_query(tags: &[(&str, &str)]) -> Query {
    Query::from_tags(tags.iter().map(|(k, v)| tag(k, v))).expect("test query needs a tag")
}

/// One query item: any of `types` (if any) and all of `tags` (if any).
#[must_use]
pub fn item(types: &[&str], tags: &[(&str, &str)]) -> QueryItem {
    let with_types = QueryItem::of_types(types).expect("test types must be valid");
    tags.iter()
        .fold(with_types, |item, (k, v)| item.with_tag(tag(k, v)))
}

/// The query matching any of `items`.
#[must_use]
pub fn items_query(items: impl IntoIterator<Item = QueryItem>) -> Query {
    Query::from_items(items).expect("test query needs at least one item")
}

/// The positions of `events`, as numbers, in the order given.
#[must_use]
pub fn positions(events: &[SequencedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.get()).collect()
}

/// Everything a store must hand back for one event, as plain values, so assertions compare
/// (and print) exactly what a reader sees: position, type, tags in order, payload text and
/// metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The sequence position.
    pub position: u64,
    /// The event type name.
    pub event_type: String,
    /// The tags as `(key, value)`, in stored order.
    pub tags: Vec<(String, String)>,
    /// The payload's JSON text.
    pub payload: String,
    /// The metadata.
    pub metadata: Metadata,
}

impl EventRecord {
    /// The record of a stored event.
    #[must_use]
    pub fn of(event: &SequencedEvent) -> EventRecord {
        EventRecord {
            position: event.position.get(),
            event_type: event.event.event_type().as_str().to_owned(),
            tags: event
                .event
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            payload: event.event.payload().as_json().to_owned(),
            metadata: event.event.metadata().clone(),
        }
    }

    /// The record an event appended as `event` must have once stored at `position`; panics on
    /// position 0.
    #[must_use]
    pub fn expected(position: u64, event: &NewEvent) -> EventRecord {
        EventRecord::of(&SequencedEvent::new(pos(position), event.clone()))
    }
}

/// The records of `events`, in the order given.
#[must_use]
pub fn records(events: &[SequencedEvent]) -> Vec<EventRecord> {
    events.iter().map(EventRecord::of).collect()
}
