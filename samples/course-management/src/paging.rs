//! Paged lists: the bounds of a page's size, and [`Listing`], the reply of every list route.
//!
//! A list route reads one page of its projection in key order ([`Page`]) and replies with the
//! items and the cursor of the next page. Cursors are keys, not offsets: paging through a list
//! while it changes returns every item that exists throughout exactly once (items added or
//! removed meanwhile may or may not appear). Every filter of a list route is a tag of its
//! projection, so a filtered page is one tag-index lookup and a page is never short because
//! items were dropped after reading.

use opossum::{Cursor, Page, Paged};
use serde::Serialize;

use crate::error::{AppError, AppResult};

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;

/// The largest `limit` a request may name.
pub const MAX_LIMIT: usize = 500;

/// A checked page request from the text of `?limit=` and `?cursor=`: `limit` items (default
/// [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`]) after `cursor` (the `nextCursor` of the previous
/// page), or from the start. An empty parameter counts as a missing one.
///
/// # Errors
/// [`AppError::Invalid`] for a limit that is not a whole number from 1 to [`MAX_LIMIT`], or a
/// cursor that is not one a page returned.
pub fn page(limit: Option<&str>, cursor: Option<&str>) -> AppResult<Page> {
    let limit = match limit.filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not {text:?}; leave it \
                     out for {DEFAULT_LIMIT} items per page."
                ))
            })?,
    };
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(str::parse::<Cursor>)
        .transpose()
        .map_err(|e| {
            AppError::invalid(format!(
                "cursor is not one a page returned ({e}); pass the nextCursor of the previous \
                 page, or leave it out for the first page."
            ))
        })?;
    Ok(Page::first(limit).after_opt(cursor))
}

/// One page of a list: its items in the list's order, and the cursor of the next page
/// (`null` on the last one). Serialised as `{"items": [...], "nextCursor": "…" | null}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listing<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Pass it as `?cursor=` (with the same filters) for the next page; null when this page is
    /// the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> From<Paged<T>> for Listing<T> {
    fn from(paged: Paged<T>) -> Listing<T> {
        let next_cursor = paged.next.as_ref().map(ToString::to_string);
        Listing {
            items: paged.into_states(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_request_defaults_and_bounds_its_limit() {
        for absent in [None, Some("")] {
            let first = page(absent, absent).unwrap();
            assert_eq!(first.get_limit(), DEFAULT_LIMIT);
            assert!(first.get_after().is_none());
        }
        assert_eq!(page(Some("500"), None).unwrap().get_limit(), MAX_LIMIT);
        assert_eq!(page(Some("1"), None).unwrap().get_limit(), 1);
        for refused in ["0", "501", "-1", "ten", "1.5", "99999999999999999999999"] {
            let error = page(Some(refused), None).unwrap_err();
            assert!(matches!(error, AppError::Invalid(_)), "{error}");
            assert!(error.to_string().contains("limit must be"), "{error}");
        }
    }

    #[test]
    fn a_cursor_round_trips_and_a_foreign_one_is_refused() {
        let cursor = Cursor::after_key("0000000042").to_string();
        let next = page(Some("2"), Some(&cursor)).unwrap();
        assert_eq!(next.get_limit(), 2);
        assert_eq!(next.get_after().map(Cursor::key), Some("0000000042"));
        for bad in ["zz", "abc", "not a cursor", "ff"] {
            let error = page(None, Some(bad)).unwrap_err();
            assert!(matches!(error, AppError::Invalid(_)), "{error}");
            assert!(error.to_string().contains("cursor"), "{error}");
        }
    }

    #[test]
    fn a_listing_carries_the_next_cursor_as_text() {
        let paged = Paged {
            items: vec![("a".to_owned(), 1), ("b".to_owned(), 2)],
            next: Some(Cursor::after_key("b")),
        };
        let listing = Listing::from(paged);
        assert_eq!(listing.items, [1, 2]);
        assert_eq!(listing.next_cursor.as_deref(), Some("62"));
        let json = serde_json::to_value(&listing).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"items": [1, 2], "nextCursor": "62"})
        );
        let last = Listing::from(Paged::<u8> {
            items: Vec::new(),
            next: None,
        });
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            serde_json::json!({"items": [], "nextCursor": null})
        );
    }
}
