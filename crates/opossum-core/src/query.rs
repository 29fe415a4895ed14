//! DCB queries, append conditions and read options.

use serde::{Deserialize, Serialize};

use crate::{Error, EventType, NewEvent, Position, Tag};

/// One alternative of a [`Query`]: events of any of `types` (when any are given) that carry
/// **all** of `tags` (when any are given).
///
/// An item with neither types nor tags constrains nothing, so it matches every event. A query
/// holding such an item is therefore the same as [`Query::all`], and [`Query::from_items`]
/// turns it into exactly that, so every store sees one spelling of "everything".
///
/// ```
/// use opossum_core::{QueryItem, Tag};
///
/// let item = QueryItem::new()
///     .with_type("StudentEnrolled")?
///     .with_tag(Tag::new("courseId", "c-1")?);
/// assert_eq!(item.types().len(), 1);
/// assert_eq!(item.tags().len(), 1);
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryItem {
    #[serde(default)]
    types: Vec<EventType>,
    #[serde(default)]
    tags: Vec<Tag>,
}

impl QueryItem {
    /// An item with no constraints yet.
    #[must_use]
    pub fn new() -> QueryItem {
        QueryItem::default()
    }

    /// An item matching events of any of the given types.
    ///
    /// # Errors
    /// The validation error of the first invalid type name.
    pub fn of_types<I, S>(types: I) -> Result<QueryItem, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let types = types
            .into_iter()
            .map(EventType::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QueryItem {
            types,
            tags: Vec::new(),
        })
    }

    /// An item matching events that carry all of the given tags.
    #[must_use]
    pub fn of_tags(tags: impl IntoIterator<Item = Tag>) -> QueryItem {
        QueryItem {
            types: Vec::new(),
            tags: tags.into_iter().collect(),
        }
    }

    /// Adds an accepted event type (types are alternatives: OR).
    ///
    /// # Errors
    /// The validation error of the type name.
    pub fn with_type(mut self, event_type: impl AsRef<str>) -> Result<QueryItem, Error> {
        let t = EventType::new(event_type)?;
        if !self.types.contains(&t) {
            self.types.push(t);
        }
        Ok(self)
    }

    /// Adds an accepted, already validated event type.
    pub(crate) fn with_event_type(mut self, t: EventType) -> QueryItem {
        if !self.types.contains(&t) {
            self.types.push(t);
        }
        self
    }

    /// Adds a required tag (tags are all required: AND).
    #[must_use]
    pub fn with_tag(mut self, tag: Tag) -> QueryItem {
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// The accepted event types; empty means any type.
    #[must_use]
    pub fn types(&self) -> &[EventType] {
        &self.types
    }

    /// The required tags; empty means no tag is required.
    #[must_use]
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// True when the item has neither types nor tags and so matches every event.
    #[must_use]
    pub fn is_unconstrained(&self) -> bool {
        self.types.is_empty() && self.tags.is_empty()
    }

    /// The DCB rule for one item.
    #[must_use]
    pub fn matches(&self, event_type: &EventType, tags: &[Tag]) -> bool {
        (self.types.is_empty() || self.types.contains(event_type))
            && self.tags.iter().all(|t| tags.contains(t))
    }
}

/// Which events a read returns or an append condition guards: either every event, or the events
/// matching **any** of a non-empty list of [`QueryItem`]s.
///
/// ```
/// use opossum_core::{Query, QueryItem, Tag};
///
/// let all = Query::all();
/// assert!(all.is_all());
///
/// let by_type = Query::from_event_types(["InvoiceCreated"])?;
/// let by_tag = Query::from_tags([Tag::new("courseId", "c-1")?])?;
/// let either = Query::from_items([
///     QueryItem::of_types(["CourseCreated"])?,
///     QueryItem::of_tags([Tag::new("courseId", "c-1")?]),
/// ])?;
/// assert_eq!(either.items().map(<[_]>::len), Some(2));
/// # let _ = (by_type, by_tag);
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedQuery", into = "UncheckedQuery")]
pub struct Query(Kind);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    All,
    Items(Vec<QueryItem>),
}

/// The wire form of a query: `{"items": null}` is "all".
#[derive(Serialize, Deserialize)]
struct UncheckedQuery {
    items: Option<Vec<QueryItem>>,
}

impl TryFrom<UncheckedQuery> for Query {
    type Error = Error;
    fn try_from(q: UncheckedQuery) -> Result<Self, Error> {
        match q.items {
            None => Ok(Query::all()),
            Some(items) => Query::from_items(items),
        }
    }
}

impl From<Query> for UncheckedQuery {
    fn from(q: Query) -> Self {
        match q.0 {
            Kind::All => UncheckedQuery { items: None },
            Kind::Items(items) => UncheckedQuery { items: Some(items) },
        }
    }
}

impl Query {
    /// The query matching every event.
    #[must_use]
    pub fn all() -> Query {
        Query(Kind::All)
    }

    /// A query matching events that match any of `items`. Duplicate items are dropped; an
    /// unconstrained item makes the query [`Query::all`].
    ///
    /// # Errors
    /// [`Error::EmptyQuery`] when `items` is empty.
    pub fn from_items(items: impl IntoIterator<Item = QueryItem>) -> Result<Query, Error> {
        let mut unique: Vec<QueryItem> = Vec::new();
        for item in items {
            if item.is_unconstrained() {
                return Ok(Query::all());
            }
            if !unique.contains(&item) {
                unique.push(item);
            }
        }
        if unique.is_empty() {
            return Err(Error::EmptyQuery);
        }
        Ok(Query(Kind::Items(unique)))
    }

    /// A query matching events of any of the given types.
    ///
    /// # Errors
    /// [`Error::EmptyQuery`] for no types, or the validation error of an invalid type name.
    pub fn from_event_types<I, S>(types: I) -> Result<Query, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let item = QueryItem::of_types(types)?;
        if item.types.is_empty() {
            return Err(Error::EmptyQuery);
        }
        Query::from_items([item])
    }

    /// A query matching events that carry all of the given tags.
    ///
    /// # Errors
    /// [`Error::EmptyQuery`] for no tags.
    pub fn from_tags(tags: impl IntoIterator<Item = Tag>) -> Result<Query, Error> {
        let item = QueryItem::of_tags(tags);
        if item.tags.is_empty() {
            return Err(Error::EmptyQuery);
        }
        Query::from_items([item])
    }

    /// True for [`Query::all`].
    #[must_use]
    pub fn is_all(&self) -> bool {
        matches!(self.0, Kind::All)
    }

    /// The items, or `None` for [`Query::all`]. Never an empty slice.
    #[must_use]
    pub fn items(&self) -> Option<&[QueryItem]> {
        match &self.0 {
            Kind::All => None,
            Kind::Items(items) => Some(items),
        }
    }

    /// The union of two queries: events matching either. `all` absorbs everything.
    #[must_use]
    pub fn union(&self, other: &Query) -> Query {
        match (&self.0, &other.0) {
            (Kind::All, _) | (_, Kind::All) => Query::all(),
            (Kind::Items(a), Kind::Items(b)) => {
                let mut items = a.clone();
                for item in b {
                    if !items.contains(item) {
                        items.push(item.clone());
                    }
                }
                Query(Kind::Items(items))
            }
        }
    }

    /// The DCB match rule, in the one place every store uses: true when the event matches
    /// any item (or the query is `all`).
    #[must_use]
    pub fn matches(&self, event: &NewEvent) -> bool {
        self.matches_parts(event.event_type(), event.tags())
    }

    /// [`Query::matches`] on an event's type and tags alone.
    #[must_use]
    pub fn matches_parts(&self, event_type: &EventType, tags: &[Tag]) -> bool {
        match &self.0 {
            Kind::All => true,
            Kind::Items(items) => items.iter().any(|i| i.matches(event_type, tags)),
        }
    }
}

/// The DCB consistency check of an append: fail if any event matching `fail_if_events_match`
/// exists at a position after `after` (or at all, when `after` is `None`).
///
/// `after` is normally the highest position the decision read, so only events the decision did
/// not see can fail it. Note that `Query::all()` with no `after` fails as soon as the store holds
/// any event at all.
///
/// ```
/// use opossum_core::{AppendCondition, Position, Query, Tag};
///
/// let guard = AppendCondition::new(Query::from_tags([Tag::new("invoice", "next")?])?)
///     .after(Some(Position::new(41)?));
/// assert_eq!(guard.after.map(|p| p.get()), Some(41));
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCondition {
    /// Events that must not exist after `after`.
    pub fail_if_events_match: Query,
    /// Only events after this position count; `None` means every event counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Position>,
}

impl AppendCondition {
    /// A condition over `query` with no `after`: any matching event fails the append.
    #[must_use]
    pub fn new(query: Query) -> AppendCondition {
        AppendCondition {
            fail_if_events_match: query,
            after: None,
        }
    }

    /// Sets `after`.
    #[must_use]
    pub fn after(mut self, after: Option<Position>) -> AppendCondition {
        self.after = after;
        self
    }

    /// True when the event at `position` violates this condition.
    #[must_use]
    pub fn is_violated_by(&self, position: Position, event: &NewEvent) -> bool {
        self.after.is_none_or(|after| position > after) && self.fail_if_events_match.matches(event)
    }
}

/// The order of a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// How to read: from after a position, at most `limit` events, in a direction.
///
/// `after` always means "positions greater than", whatever the direction. With
/// [`Direction::Descending`] and a `limit` of N, a read returns the **newest** N matching events,
/// newest first.
///
/// ```
/// use opossum_core::{Position, ReadOptions};
///
/// let newest_ten = ReadOptions::new().descending().limit(10);
/// let page = ReadOptions::new().after(Position::new(100)?).limit(500);
/// # let _ = (newest_ten, page);
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReadOptions {
    /// Only events at positions greater than this.
    pub after: Option<Position>,
    /// Only events at positions at or before this.
    pub until: Option<Position>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// The order of the result.
    pub direction: Direction,
}

impl ReadOptions {
    /// Everything, oldest first.
    #[must_use]
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Only events after `position`.
    #[must_use]
    pub fn after(mut self, position: Position) -> ReadOptions {
        self.after = Some(position);
        self
    }

    /// Only events at or before `position`: a read of the log as it was then, whatever is
    /// appended meanwhile.
    #[must_use]
    pub fn until(mut self, position: Position) -> ReadOptions {
        self.until = Some(position);
        self
    }

    /// At most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> ReadOptions {
        self.limit = Some(limit);
        self
    }

    /// Newest first.
    #[must_use]
    pub fn descending(mut self) -> ReadOptions {
        self.direction = Direction::Descending;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    fn event(t: &str, tags: &[(&str, &str)]) -> NewEvent {
        tags.iter()
            .fold(
                NewEvent::builder(t, Payload::from_json("{}").unwrap()),
                |b, (k, v)| b.tag(*k, *v),
            )
            .build()
            .unwrap()
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag::new(k, v).unwrap()
    }

    #[test]
    fn types_are_or_and_tags_are_and() {
        let item = QueryItem::of_types(["A", "B"])
            .unwrap()
            .with_tag(tag("x", "1"))
            .with_tag(tag("y", "2"));
        let q = Query::from_items([item]).unwrap();
        assert!(q.matches(&event("A", &[("x", "1"), ("y", "2")])));
        assert!(q.matches(&event("B", &[("y", "2"), ("x", "1"), ("z", "3")])));
        assert!(!q.matches(&event("C", &[("x", "1"), ("y", "2")])));
        assert!(!q.matches(&event("A", &[("x", "1")])));
    }

    #[test]
    fn items_are_or() {
        let q = Query::from_items([
            QueryItem::of_types(["A"]).unwrap(),
            QueryItem::of_tags([tag("x", "1")]),
        ])
        .unwrap();
        assert!(q.matches(&event("A", &[])));
        assert!(q.matches(&event("Z", &[("x", "1")])));
        assert!(!q.matches(&event("Z", &[("x", "2")])));
    }

    #[test]
    fn unconstrained_items_mean_all() {
        assert!(QueryItem::new().matches(&EventType::new("Q").unwrap(), &[]));
        let q = Query::from_items([QueryItem::of_types(["A"]).unwrap(), QueryItem::new()]).unwrap();
        assert!(q.is_all());
    }

    #[test]
    fn empty_lists_are_errors() {
        assert!(matches!(Query::from_items([]), Err(Error::EmptyQuery)));
        assert!(matches!(
            Query::from_event_types(Vec::<&str>::new()),
            Err(Error::EmptyQuery)
        ));
        assert!(matches!(Query::from_tags([]), Err(Error::EmptyQuery)));
    }

    #[test]
    fn union_merges_and_all_absorbs() {
        let a = Query::from_event_types(["A"]).unwrap();
        let b = Query::from_event_types(["B"]).unwrap();
        let ab = a.union(&b);
        assert_eq!(ab.items().unwrap().len(), 2);
        assert_eq!(ab.union(&a), ab);
        assert!(ab.union(&Query::all()).is_all());
    }

    #[test]
    fn conditions_respect_after() {
        let c = AppendCondition::new(Query::from_event_types(["A"]).unwrap())
            .after(Some(Position::new(5).unwrap()));
        let e = event("A", &[]);
        assert!(!c.is_violated_by(Position::new(5).unwrap(), &e));
        assert!(c.is_violated_by(Position::new(6).unwrap(), &e));
        let none = AppendCondition::new(Query::all());
        assert!(none.is_violated_by(Position::FIRST, &e));
    }

    #[test]
    fn queries_round_trip_through_json() {
        let q = Query::from_items([QueryItem::of_types(["A"]).unwrap().with_tag(tag("k", "v"))])
            .unwrap();
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(serde_json::from_str::<Query>(&json).unwrap(), q);
        let all = serde_json::to_string(&Query::all()).unwrap();
        assert!(serde_json::from_str::<Query>(&all).unwrap().is_all());
        assert!(serde_json::from_str::<Query>(r#"{"items":[]}"#).is_err());
    }
}
