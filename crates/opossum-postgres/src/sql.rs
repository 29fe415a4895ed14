//! Queries as SQL: the `WHERE` clause a [`Query`] becomes, with its parameters.

use opossum_core::{Query, Tag};
use tokio_postgres::types::ToSql;

/// Separates a tag's key from its value in the `tags` column. Tags hold no control
/// characters, so it can never be part of either.
const TAG_SEPARATOR: char = '\u{1f}';

/// How a tag is stored in the `tags` column (`text[]`, indexed with GIN).
pub(crate) fn tag_text(tag: &Tag) -> String {
    format!("{}{TAG_SEPARATOR}{}", tag.key(), tag.value())
}

/// Parameters of a statement, in order (`$1`, `$2`, …).
#[derive(Default)]
pub(crate) struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Adds `value` and returns its placeholder.
    pub(crate) fn push(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    /// The parameters as the client takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
    }
}

/// The condition `query` puts on a row, or `None` for [`Query::all`]: one alternative per query
/// item, each an exact type match (`type = ANY(…)`, on the `(type, position)` index) and
/// containment of its tags (`tags @> …`, on the GIN index).
pub(crate) fn filter(query: &Query, params: &mut Params) -> Option<String> {
    let items = query.items()?;
    let mut alternatives = Vec::with_capacity(items.len());
    for item in items {
        let mut parts = Vec::new();
        match item.types() {
            [] => {}
            // One type: an equality, so the `(type, position)` index also gives the order.
            [one] => parts.push(format!("type = {}", params.push(one.as_str().to_owned()))),
            many => {
                let types: Vec<String> = many.iter().map(|t| t.as_str().to_owned()).collect();
                parts.push(format!("type = ANY({}::text[])", params.push(types)));
            }
        }
        if !item.tags().is_empty() {
            let tags: Vec<String> = item.tags().iter().map(tag_text).collect();
            parts.push(format!("tags @> {}::text[]", params.push(tags)));
        }
        if parts.is_empty() {
            // An item without types or tags matches every event.
            return None;
        }
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    Some(format!("({})", alternatives.join(" OR ")))
}
