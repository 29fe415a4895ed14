//! [`ProjectionStore`]: typed reads of one projection's instances.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use opossum_core::Tag;
use serde::de::DeserializeOwned;

use crate::manager::Tracked;
use crate::tags::{self, IndexTag};
use crate::{Error, files, instance};

/// Reads the instances of one projection, with state type `S`.
///
/// Get one from [`ProjectionManager::store`](crate::ProjectionManager::store). Reads go to the
/// live generation's files, so they see every batch the daemon committed, and a rebuild's
/// result from the moment it is committed. A read that started before a rebuild was committed
/// finishes on the generation it started on.
///
/// The methods read files on the calling thread: [`get`](Self::get) and the tag queries read
/// one small file per instance returned; [`get_all`](Self::get_all) and
/// [`query`](Self::query) read every instance, so in async code with many instances call them
/// through `tokio::task::spawn_blocking`. Results are ordered by key.
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
    /// [`Error::Corrupt`] when its file was damaged, [`Error::Io`].
    pub fn get(&self, key: &str) -> Result<Option<S>, Error> {
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(None);
            };
            Ok(instance::read::<S>(&generation.state_dir(), key)?.and_then(|s| s.state))
        })
    }

    /// Every instance's key and state, ordered by key.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn entries(&self) -> Result<Vec<(String, S)>, Error> {
        self.scan(|_| true)
    }

    /// Every instance's state, ordered by key.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn get_all(&self) -> Result<Vec<S>, Error> {
        Ok(self.entries()?.into_iter().map(|(_, s)| s).collect())
    }

    /// The states for which `predicate` is true, ordered by key. Reads every instance; only the
    /// matching ones are kept in memory.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn query(&self, mut predicate: impl FnMut(&S) -> bool) -> Result<Vec<S>, Error> {
        Ok(self
            .scan(|s| predicate(s))?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// The states carrying `tag`, from the tag index. The key matches exactly, the value
    /// without regard to case.
    ///
    /// # Errors
    /// As [`ProjectionStore::get`].
    pub fn query_by_tag(&self, tag: &Tag) -> Result<Vec<S>, Error> {
        self.query_by_tags(std::slice::from_ref(tag))
    }

    /// The states carrying **every** tag of `tags`, from the tag index: only the folders of
    /// these tags are listed and only the matching instances read. Keys match exactly, values
    /// without regard to case.
    ///
    /// # Errors
    /// [`Error::EmptyTagQuery`] for no tags; otherwise as [`ProjectionStore::get`].
    pub fn query_by_tags(&self, tags: &[Tag]) -> Result<Vec<S>, Error> {
        if tags.is_empty() {
            return Err(Error::EmptyTagQuery);
        }
        let wanted: Vec<IndexTag> = tags::index_tags(tags);
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(Vec::new());
            };
            let state_dir = generation.state_dir();
            let mut found = Vec::new();
            for stem in tags::candidates(&generation.tags_dir(), &wanted)? {
                let file = instance::path(&state_dir, &stem);
                // The index may list an instance that lost the tag or was deleted just now (it
                // over-approximates); the file decides.
                if let Some(stored) = instance::read_file::<S>(&file)? {
                    if let Some(state) = stored
                        .state
                        .filter(|_| tags::carries_all(&stored.tags, &wanted))
                    {
                        found.push((stored.key, state));
                    }
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(found.into_iter().map(|(_, s)| s).collect())
        })
    }

    fn scan(&self, mut keep: impl FnMut(&S) -> bool) -> Result<Vec<(String, S)>, Error> {
        self.tracked.read_live(|live| {
            let Some(generation) = live else {
                return Ok(Vec::new());
            };
            let state_dir = generation.state_dir();
            let mut found = Vec::new();
            for name in files::list_names(&state_dir)? {
                if Path::new(&name).extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let Some(stored) = instance::read_file::<S>(&state_dir.join(&name))? else {
                    continue; // removed since the listing: a tombstone cleared
                };
                if let Some(state) = stored.state.filter(|s| keep(s)) {
                    found.push((stored.key, state));
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(found)
        })
    }
}
