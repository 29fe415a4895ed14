//! Paged reads: [`Page`] asks for one, [`Paged`] is one, [`Cursor`] says where the next starts.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Which instances a paged read returns: at most [`limit`](Page::first) of them, ordered by
/// key, after the [`Cursor`] of the previous page.
///
/// Cursors are keys, not offsets: paging through a projection while it changes returns every
/// instance that exists throughout exactly once, and never repeats one, whatever is added,
/// changed, deleted or rebuilt in between (instances added or deleted meanwhile may or may not
/// appear).
///
/// ```
/// use opossum_projections::Page;
///
/// let first = Page::first(50);
/// assert_eq!(first.get_limit(), 50);
/// assert!(first.get_after().is_none());
/// assert_eq!(Page::all().get_limit(), usize::MAX);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    limit: usize,
    after: Option<Cursor>,
}

impl Page {
    /// The first `limit` instances. A limit of 0 is refused by the read
    /// ([`Error::InvalidPage`]).
    #[must_use]
    pub fn first(limit: usize) -> Page {
        Page { limit, after: None }
    }

    /// Every instance, in one page.
    #[must_use]
    pub fn all() -> Page {
        Page::first(usize::MAX)
    }

    /// The page after `cursor` (from [`Paged::next`]), with the same limit.
    #[must_use]
    pub fn after(mut self, cursor: Cursor) -> Page {
        self.after = Some(cursor);
        self
    }

    /// The page after `cursor` when there is one, the first page otherwise: what a web route
    /// does with an optional `?cursor=`.
    #[must_use]
    pub fn after_opt(mut self, cursor: Option<Cursor>) -> Page {
        self.after = cursor;
        self
    }

    /// See [`Page::first`].
    #[must_use]
    pub fn get_limit(&self) -> usize {
        self.limit
    }

    /// See [`Page::after`].
    #[must_use]
    pub fn get_after(&self) -> Option<&Cursor> {
        self.after.as_ref()
    }

    /// The limit, checked.
    pub(crate) fn checked_limit(&self) -> Result<usize, Error> {
        if self.limit == 0 {
            return Err(Error::InvalidPage {
                problem: "the limit is 0; ask for at least one instance".to_owned(),
            });
        }
        Ok(self.limit)
    }

    /// The key the page starts after.
    pub(crate) fn after_key(&self) -> Option<&str> {
        self.after.as_ref().map(|c| c.key.as_str())
    }
}

/// Where a page ended: give it to [`Page::after`] for the next one.
///
/// Its text form (`Display` / `FromStr`) uses only `0`–`9` and `a`–`f`, so it goes into a URL
/// as it is.
///
/// ```
/// use opossum_projections::Cursor;
///
/// let cursor = Cursor::after_key("student/42");
/// let text = cursor.to_string();
/// assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
/// assert_eq!(text.parse::<Cursor>()?, cursor);
/// assert!("not a cursor".parse::<Cursor>().is_err());
/// # Ok::<(), opossum_projections::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    key: String,
}

impl Cursor {
    /// The cursor of a page that ended at instance `key`.
    #[must_use]
    pub fn after_key(key: impl Into<String>) -> Cursor {
        Cursor { key: key.into() }
    }

    /// The key of the last instance of the page it ends.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.key.bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Cursor, Error> {
        let invalid = |why: &str| Error::InvalidPage {
            problem: format!("the cursor {text:?} {why}; pass the cursor a page returned"),
        };
        if text.len() % 2 != 0 {
            return Err(invalid("has an odd length"));
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| invalid("is not hexadecimal"))?;
        let key = String::from_utf8(bytes).map_err(|_| invalid("is not a key"))?;
        Ok(Cursor { key })
    }
}

/// One page of instances, ordered by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged<S> {
    /// The instances' keys and states.
    pub items: Vec<(String, S)>,
    /// The cursor of the next page; `None` when this page is the last.
    pub next: Option<Cursor>,
}

impl<S> Paged<S> {
    /// The states, without their keys.
    #[must_use]
    pub fn into_states(self) -> Vec<S> {
        self.items.into_iter().map(|(_, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_key_round_trips_through_its_text() -> Result<(), Error> {
        for key in ["", "a", "Ä/ö ü", "line\nbreak", "😀", "%00"] {
            let cursor = Cursor::after_key(key);
            assert_eq!(cursor.to_string().parse::<Cursor>()?, cursor);
        }
        assert!("0".parse::<Cursor>().is_err());
        assert!("zz".parse::<Cursor>().is_err());
        assert!("ff".parse::<Cursor>().is_err(), "not UTF-8");
        assert!(Page::first(0).checked_limit().is_err());
        Ok(())
    }
}
