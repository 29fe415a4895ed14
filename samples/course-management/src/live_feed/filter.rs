//! [`FeedFilter`]: the query string (and `Last-Event-ID`) of a live feed, checked.

use opossum::{EventType, Position, Query, QueryItem, Tag};

use crate::error::{AppError, AppResult};

/// What a feed streams: the events `query` matches, from `start` on.
#[derive(Clone, Debug)]
pub struct FeedFilter {
    /// Events of any of the `type` parameters (any type without one) carrying every `tag`
    /// parameter.
    pub query: Query,
    /// Where the feed starts.
    pub start: Start,
}

/// Where a feed starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the events committed after the store's head when the feed opens.
    Now,
    /// With the stored events after this position (`None`: from the first event), then the
    /// new ones.
    After(Option<Position>),
}

/// The parameters a feed accepts.
const PARAMETERS: &str = "type (repeatable), tag=key:value (repeatable) and after";

impl FeedFilter {
    /// Checks the query-string pairs of a feed and the `Last-Event-ID` header, if any; the
    /// header, which a reconnecting client sends, wins over `?after=`.
    ///
    /// # Errors
    /// [`AppError::Invalid`] naming the parameter: an empty or invalid `type`, a `tag` that is
    /// not `key:value` or has an empty key, an `after` or `Last-Event-ID` that is not a
    /// position (0 means before the first event), `after` given twice, an unknown parameter.
    pub fn parse(pairs: &[(String, String)], last_event_id: Option<&str>) -> AppResult<FeedFilter> {
        let mut types = Vec::new();
        let mut tags = Vec::new();
        let mut after = None;
        for (name, value) in pairs {
            match name.as_str() {
                "type" => types.push(event_type(value)?),
                "tag" => tags.push(tag(value)?),
                "after" => {
                    if after.is_some() {
                        return Err(AppError::invalid("after is given twice; give it once"));
                    }
                    after = Some(position("after", value)?);
                }
                other => {
                    return Err(AppError::invalid(format!(
                        "{other} is not a parameter of the live feed; it takes {PARAMETERS}"
                    )));
                }
            }
        }
        let resumed = match last_event_id.filter(|id| !id.is_empty()) {
            Some(id) => Some(position("Last-Event-ID", id)?),
            None => None,
        };
        let start = resumed.or(after).map_or(Start::Now, Start::After);
        Ok(FeedFilter {
            query: query(types, tags)?,
            start,
        })
    }
}

fn event_type(value: &str) -> AppResult<EventType> {
    if value.is_empty() {
        return Err(AppError::invalid(
            "type is empty; name an event type, such as type=StudentRegistered",
        ));
    }
    EventType::new(value).map_err(|e| AppError::invalid(format!("type {value:?}: {e}")))
}

fn tag(value: &str) -> AppResult<Tag> {
    let Some((key, tag_value)) = value.split_once(':') else {
        return Err(AppError::invalid(format!(
            "tag {value:?} is not key:value; write it as tag=studentId:<id>"
        )));
    };
    Tag::new(key, tag_value).map_err(|e| AppError::invalid(format!("tag {value:?}: {e}")))
}

/// A position parameter; 0 is before the first event.
fn position(name: &str, value: &str) -> AppResult<Option<Position>> {
    let number: u64 = value.parse().map_err(|_| {
        AppError::invalid(format!(
            "{name} {value:?} is not a position; give the id of the last event received (0 for \
             every event)"
        ))
    })?;
    Ok(Position::new(number).ok())
}

fn query(types: Vec<EventType>, tags: Vec<Tag>) -> AppResult<Query> {
    if types.is_empty() && tags.is_empty() {
        return Ok(Query::all());
    }
    let names: Vec<&str> = types.iter().map(EventType::as_str).collect();
    let mut item = QueryItem::of_types(names)?;
    for tag in tags {
        item = item.with_tag(tag);
    }
    Ok(Query::from_items([item])?)
}

#[cfg(test)]
mod tests {
    use opossum::{NewEvent, Payload};

    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn event(event_type: &str, tags: &[(&str, &str)]) -> NewEvent {
        let mut builder = NewEvent::builder(event_type, Payload::from_json("{}").unwrap());
        for (key, value) in tags {
            builder = builder.tag(*key, *value);
        }
        builder.build().unwrap()
    }

    fn invalid(list: &[(&str, &str)], last_event_id: Option<&str>) -> String {
        match FeedFilter::parse(&pairs(list), last_event_id) {
            Err(AppError::Invalid(message)) => message,
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn types_are_alternatives_and_tags_all_apply() {
        let filter = FeedFilter::parse(
            &pairs(&[
                ("type", "StudentRegistered"),
                ("type", "CourseCreated"),
                ("tag", "studentId:1"),
                ("tag", "tier:basic"),
            ]),
            None,
        )
        .unwrap();
        let both = [("studentId", "1"), ("tier", "basic")];
        assert!(filter.query.matches(&event("StudentRegistered", &both)));
        assert!(filter.query.matches(&event("CourseCreated", &both)));
        assert!(!filter.query.matches(&event("StudentEnrolled", &both)));
        assert!(
            !filter
                .query
                .matches(&event("StudentRegistered", &[("studentId", "1")]))
        );
        assert_eq!(filter.start, Start::Now);
    }

    #[test]
    fn no_filter_is_every_event_and_a_tag_value_may_hold_colons() {
        let all = FeedFilter::parse(&[], None).unwrap();
        assert!(all.query.is_all());
        let tagged = FeedFilter::parse(&pairs(&[("tag", "url:http://x")]), None).unwrap();
        assert!(tagged.query.matches(&event("Any", &[("url", "http://x")])));
    }

    #[test]
    fn last_event_id_wins_over_after_and_zero_is_from_the_first() {
        let after = |list: &[(&str, &str)], id| FeedFilter::parse(&pairs(list), id).unwrap().start;
        let at = |n| Start::After(Some(Position::new(n).unwrap()));
        assert_eq!(after(&[("after", "3")], None), at(3));
        assert_eq!(after(&[("after", "3")], Some("7")), at(7));
        assert_eq!(after(&[("after", "0")], None), Start::After(None));
        assert_eq!(after(&[], Some("")), Start::Now);
    }

    #[test]
    fn bad_parameters_are_invalid_and_say_which() {
        assert!(invalid(&[("type", "")], None).contains("type is empty"));
        assert!(invalid(&[("tag", "studentId")], None).contains("not key:value"));
        assert!(invalid(&[("tag", ":1")], None).contains("tag \":1\""));
        assert!(invalid(&[("after", "x")], None).contains("after \"x\""));
        assert!(invalid(&[("after", "-1")], None).contains("not a position"));
        assert!(invalid(&[("after", "1"), ("after", "2")], None).contains("twice"));
        assert!(invalid(&[], Some("abc")).contains("Last-Event-ID"));
        assert!(invalid(&[("types", "A")], None).contains("types is not a parameter"));
        assert!(invalid(&[("type", "A\u{7}")], None).contains("type"));
    }
}
