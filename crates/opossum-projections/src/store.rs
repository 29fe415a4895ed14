//! [`ProjectionStore`]: typed reads of one projection's instances.

use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;

use opossum_core::Tag;
use serde::de::DeserializeOwned;

use crate::generation::Generation;
use crate::manager::Tracked;
use crate::packed::{Located, Table};
use crate::page::{Cursor, Page, Paged};
use crate::tags::{self, IndexTag};
use crate::{Error, instance};

/// Instances read per step by [`ProjectionStore::iter`] and the whole-projection reads.
const SCAN_PAGE: usize = 512;

/// Reads the instances of one projection, with state type `S`.
///
/// Get one from [`ProjectionManager::store`](crate::ProjectionManager::store). Reads see every
/// batch the daemon committed, and a rebuild's result from the moment it is committed; each
/// call reads one consistent state of the projection, never a mix of two batches or two
/// generations.
///
/// Each instance read is one lookup in memory and one positional read of the projection's
/// file (neighbouring records are read together): [`get`](Self::get) reads one record, a
/// [`list`](Self::list) or [`query_by_tags`](Self::query_by_tags) page reads the records it
/// returns, and [`iter`](Self::iter) streams every instance a page at a time, in bounded memory.
/// [`get_all`](Self::get_all) and [`query`](Self::query) read every instance; in async code
/// with many instances call them through `tokio::task::spawn_blocking`. Results are ordered by
/// key.
pub struct ProjectionStore<S> {
    tracked: Arc<Tracked>,
    _state: PhantomData<fn() -> S>,
}

impl<S> Clone for ProjectionStore<S> {
    fn clone(&self) -> Self {
        ProjectionStore {
            tracked: Arc::clone(&self.tracked),
            _state: PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for ProjectionStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionStore")
            .field("projection", &self.tracked.name())
            .finish()
    }
}

impl<S: DeserializeOwned> ProjectionStore<S> {
    pub(crate) fn new(tracked: Arc<Tracked>) -> ProjectionStore<S> {
        ProjectionStore {
            tracked,
            _state: PhantomData,
        }
    }

    /// The projection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.tracked.name()
    }

    /// The state of instance `key`, or `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when its record does not decode into `S`, [`Error::Io`].
    pub fn get(&self, key: &str) -> Result<Option<S>, Error> {
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(None);
            };
            let located = generation
                .table()
                .get(key)
                .map(|l| (key.to_owned(), (l.offset, l.len)));
            let mut found = decode_all::<S>(generation, located.into_iter().collect())?;
            Ok(found.pop().map(|(_, s)| s))
        })
    }

    /// How many instances the projection holds.
    ///
    /// # Errors
    /// In a follower, [`Error::Corrupt`] or [`Error::Io`] when the maintainer's files cannot
    /// be read.
    pub fn count(&self) -> Result<usize, Error> {
        self.tracked
            .read_live(|live| Ok(live.map_or(0, |g| g.table().len())))
    }

    /// One page of instances, ordered by key: at most `page`'s limit, after its cursor.
    ///
    /// ```
    /// # use opossum_projections::{Page, ProjectionStore};
    /// # fn show(store: &ProjectionStore<u32>) -> Result<(), opossum_projections::Error> {
    /// let mut page = Page::first(100);
    /// loop {
    ///     let paged = store.list(&page)?;
    ///     for (key, state) in &paged.items {
    ///         println!("{key}: {state}");
    ///     }
    ///     let Some(next) = paged.next else { break };
    ///     page = page.after(next);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidPage`] for a limit of 0; otherwise as [`ProjectionStore::get`].
    pub fn list(&self, page: &Page) -> Result<Paged<S>, Error> {
        let limit = page.checked_limit()?;
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(empty());
            };
            let picked = pick(&generation.table(), limit, |t| t.after(page.after_key()));
            finish(generation, picked)
        })
    }

    /// Every instance's key and state, ordered by key.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn entries(&self) -> Result<Vec<(String, S)>, Error> {
        self.iter().collect()
    }

    /// Every instance's state, ordered by key.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn get_all(&self) -> Result<Vec<S>, Error> {
        self.iter().map(|r| r.map(|(_, s)| s)).collect()
    }

    /// Every instance, ordered by key, read a page at a time: memory stays bounded whatever
    /// the number of instances. Each page is consistent; pages read while the projection
    /// changes follow the rules of [`Page`].
    pub fn iter(&self) -> Instances<S> {
        Instances {
            store: self.clone(),
            page: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }

    /// The states for which `predicate` is true, ordered by key. Reads every instance; only the
    /// matching ones are kept in memory.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn query(&self, mut predicate: impl FnMut(&S) -> bool) -> Result<Vec<S>, Error> {
        let mut found = Vec::new();
        for entry in self.iter() {
            let (_, state) = entry?;
            if predicate(&state) {
                found.push(state);
            }
        }
        Ok(found)
    }

    /// The instances carrying `tag`, a page of them (see
    /// [`query_by_tags`](Self::query_by_tags)).
    ///
    /// # Errors
    /// As [`ProjectionStore::query_by_tags`].
    pub fn query_by_tag(&self, tag: &Tag, page: &Page) -> Result<Paged<S>, Error> {
        self.query_by_tags(std::slice::from_ref(tag), page)
    }

    /// The instances carrying **every** tag of `tags`, ordered by key, one page of them
    /// ([`Page::all`] for every match). Keys match exactly, values without regard to case.
    /// The tag index is in memory: the cost is in proportion to the matches, not to the
    /// instances.
    ///
    /// # Errors
    /// [`Error::EmptyTagQuery`] for no tags, [`Error::InvalidPage`] for a limit of 0;
    /// otherwise as [`ProjectionStore::get`].
    pub fn query_by_tags(&self, tags: &[Tag], page: &Page) -> Result<Paged<S>, Error> {
        if tags.is_empty() {
            return Err(Error::EmptyTagQuery);
        }
        let limit = page.checked_limit()?;
        let wanted: Vec<IndexTag> = tags::index_tags(tags);
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(empty());
            };
            let picked = pick(&generation.table(), limit, |t| {
                t.tagged(&wanted, page.after_key())
            });
            finish(generation, picked)
        })
    }

    /// Writes the projection as one JSON document to `out`: its name, checkpoint and every
    /// instance (key, position of the last event applied, tags, state), ordered by key. The
    /// records are copied as stored, so this works whatever `S` is; memory stays bounded.
    /// Returns the number of instances written.
    ///
    /// # Errors
    /// [`Error::Io`] when `out` or the projection's file fails.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, Error> {
        self.tracked.export(out)
    }
}

/// The instances a page read takes: located under the table's lock, read after it.
struct Picked {
    located: Vec<(String, (u64, u32))>,
    next: Option<Cursor>,
}

/// Takes up to `limit` instances of `range` and looks one further to know whether a next page
/// exists.
fn pick<'t, I>(table: &'t Table, limit: usize, range: impl FnOnce(&'t Table) -> I) -> Picked
where
    I: Iterator<Item = (&'t String, &'t Located)>,
{
    let mut located = Vec::new();
    let mut more = false;
    for (key, l) in range(table) {
        if located.len() == limit {
            more = true;
            break;
        }
        located.push((key.clone(), (l.offset, l.len)));
    }
    let next = more
        .then(|| located.last().map(|(k, _)| Cursor::after_key(k.clone())))
        .flatten();
    Picked { located, next }
}

fn finish<S: DeserializeOwned>(generation: &Generation, picked: Picked) -> Result<Paged<S>, Error> {
    Ok(Paged {
        items: decode_all(generation, picked.located)?,
        next: picked.next,
    })
}

fn empty<S>() -> Paged<S> {
    Paged {
        items: Vec::new(),
        next: None,
    }
}

/// Reads and decodes the records of `located` (keys with the offset and length of their
/// records).
fn decode_all<S: DeserializeOwned>(
    generation: &Generation,
    located: Vec<(String, (u64, u32))>,
) -> Result<Vec<(String, S)>, Error> {
    let locations: Vec<(u64, u32)> = located.iter().map(|(_, l)| *l).collect();
    let lines = generation.read_lines(&locations)?;
    located
        .into_iter()
        .zip(lines)
        .map(|((key, _), line)| {
            let stored = instance::decode::<S>(&line, &key, generation.path())?;
            Ok((stored.key, stored.state))
        })
        .collect()
}

/// Every instance of a projection, a page at a time: see [`ProjectionStore::iter`].
pub struct Instances<S> {
    store: ProjectionStore<S>,
    page: std::vec::IntoIter<(String, S)>,
    after: Option<Cursor>,
    done: bool,
}

impl<S> std::fmt::Debug for Instances<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances")
            .field("projection", &self.store.tracked.name())
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl<S: DeserializeOwned> Iterator for Instances<S> {
    type Item = Result<(String, S), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            let page = Page::first(SCAN_PAGE).after_opt(self.after.take());
            match self.store.list(&page) {
                Ok(paged) => {
                    self.done = paged.next.is_none();
                    self.after = paged.next;
                    self.page = paged.items.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
