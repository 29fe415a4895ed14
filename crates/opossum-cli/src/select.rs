//! Opening a store for reading, and selecting its events by the shared [`Filters`].

use std::path::Path;

use opossum_core::{Position, Query, QueryItem, ReadOptions, Tag, Timestamp};
use opossum_fs::{FileEventStore, StoreOptions, StoredEvent};

use crate::Error;
use crate::cli::Filters;

/// Events read per step while filtering by time.
const STEP: usize = 1024;

/// Opens the store in `dir` for reading only: nothing is created, locked or changed.
///
/// # Errors
/// [`Error::Store`]: `NotAStore` when `dir` holds no store, or what opening found.
pub fn open_read_only(dir: &Path) -> Result<FileEventStore, Error> {
    Ok(FileEventStore::open_with(
        dir,
        StoreOptions::new().read_only(true),
    )?)
}

/// The filters, checked and turned into what the store reads by.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The types and tags.
    pub query: Query,
    /// Events after this position only.
    pub after: Option<Position>,
    /// Events before this position only.
    pub before: Option<u64>,
    /// Events at or after this time only.
    pub since: Option<Timestamp>,
    /// Events before this time only.
    pub until: Option<Timestamp>,
}

impl Selection {
    /// Checks `filters`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the filter that is not valid.
    pub fn new(filters: &Filters) -> Result<Selection, Error> {
        let mut item = if filters.types.is_empty() {
            QueryItem::new()
        } else {
            QueryItem::of_types(&filters.types).map_err(|e| Error::InvalidArgument {
                argument: "--type",
                reason: e.to_string(),
            })?
        };
        for text in &filters.tags {
            let Some((key, value)) = text.split_once('=') else {
                return Err(Error::InvalidArgument {
                    argument: "--tag",
                    reason: format!("{text:?} has no `=`; write the tag as key=value"),
                });
            };
            let tag = Tag::new(key, value).map_err(|e| Error::InvalidArgument {
                argument: "--tag",
                reason: e.to_string(),
            })?;
            item = item.with_tag(tag);
        }
        let query = if item.is_unconstrained() {
            Query::all()
        } else {
            Query::from_items([item]).map_err(|e| Error::InvalidArgument {
                argument: "--type",
                reason: e.to_string(),
            })?
        };
        let after = match filters.after {
            None | Some(0) => None,
            Some(n) => Some(Position::new(n).map_err(|e| Error::InvalidArgument {
                argument: "--after",
                reason: e.to_string(),
            })?),
        };
        let time = |argument: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    t.parse::<Timestamp>().map_err(|e| Error::InvalidArgument {
                        argument,
                        reason: format!(
                            "{t:?} is not an RFC 3339 time ({e}); write it as 2026-01-31T08:00:00Z"
                        ),
                    })
                })
                .transpose()
        };
        let since = time("--since", &filters.since)?;
        let until = time("--until", &filters.until)?;
        if let (Some(after), Some(before)) = (filters.after, filters.before) {
            if before <= after.saturating_add(1) {
                return Err(Error::InvalidArgument {
                    argument: "--before",
                    reason: format!("no position is after {after} and before {before}"),
                });
            }
        }
        if filters.before == Some(0) {
            return Err(Error::InvalidArgument {
                argument: "--before",
                reason: "no position is before 0; positions start at 1".to_owned(),
            });
        }
        Ok(Selection {
            query,
            after,
            before: filters.before,
            since,
            until,
        })
    }

    /// True when the event's timestamp is within the time filters.
    #[must_use]
    pub fn in_time(&self, event: &StoredEvent) -> bool {
        let at = event.event.event.metadata().timestamp;
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }

    /// True when only types, tags and positions filter (no time filter).
    fn is_indexed(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// At most `limit` of the selected events of `store`, after `after` (or before `before`,
    /// for `descending`) as well as the selection's own bounds, oldest first unless
    /// `descending`.
    ///
    /// # Errors
    /// [`Error::Store`] when the store cannot be read.
    pub fn read(
        &self,
        store: &FileEventStore,
        limit: Option<usize>,
        descending: bool,
    ) -> Result<Vec<StoredEvent>, Error> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut after = self.after;
        let mut until = self.before.and_then(|b| Position::new(b - 1).ok());
        if self.before == Some(1) {
            return Ok(out);
        }
        loop {
            let wanted = limit - out.len();
            if wanted == 0 {
                break;
            }
            let step = if self.is_indexed() {
                wanted
            } else {
                STEP.min(wanted)
            };
            let mut options = ReadOptions::new().limit(step);
            if let Some(after) = after {
                options = options.after(after);
            }
            if let Some(until) = until {
                options = options.until(until);
            }
            if descending {
                options = options.descending();
            }
            let batch = store.read_stored(&self.query, options)?;
            let done = batch.len() < step;
            let Some(last) = batch.last().map(|e| e.event.position) else {
                break;
            };
            out.extend(batch.into_iter().filter(|e| self.in_time(e)));
            if done || self.is_indexed() {
                break;
            }
            if descending {
                match last.previous() {
                    Some(p) => until = Some(p),
                    None => break,
                }
            } else {
                after = Some(last);
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
