//! [`ReadModel`]: a projection's store that reads this process's own writes.

use std::sync::Arc;
use std::time::Duration;

use opossum_projections::{ProjectionManager, ProjectionStore};
use serde::de::DeserializeOwned;

use crate::Error;
use crate::store::Link;

/// A typed view of one projection that sees every event the store held when the app opened it,
/// and every event this process appended since through its [`AppStore`](crate::AppStore).
///
/// Before each read it waits until the projection has applied everything up to that position
/// (the daemon is woken by every append, so this is usually a few milliseconds), at most the
/// configured read-your-writes timeout. Events appended by *other* processes while the app runs
/// appear after the daemon's next poll. Get one from
/// [`OpossumApp::read_model`](crate::OpossumApp::read_model) or
/// [`AppContext::read_model`](crate::AppContext::read_model); clones are cheap.
pub struct ReadModel<S> {
    store: ProjectionStore<S>,
    manager: ProjectionManager,
    link: Arc<Link>,
    timeout: Duration,
}

impl<S> Clone for ReadModel<S> {
    fn clone(&self) -> Self {
        ReadModel {
            store: self.store.clone(),
            manager: self.manager.clone(),
            link: Arc::clone(&self.link),
            timeout: self.timeout,
        }
    }
}

impl<S: DeserializeOwned> std::fmt::Debug for ReadModel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("projection", &self.store.name())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S: DeserializeOwned + Send + 'static> ReadModel<S> {
    pub(crate) fn new(
        store: ProjectionStore<S>,
        manager: &ProjectionManager,
        link: Arc<Link>,
        timeout: Duration,
    ) -> ReadModel<S> {
        ReadModel {
            store,
            manager: manager.clone(),
            link,
            timeout,
        }
    }

    /// The projection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.store.name()
    }

    /// Waits until the projection has applied every event the store held at open and every
    /// event this process appended, then returns its store.
    ///
    /// # Errors
    /// [`Error::ReadModelBehind`] after the timeout; [`Error::Projections`] when the
    /// projection is stopped at an event it cannot apply.
    pub async fn fresh(&self) -> Result<&ProjectionStore<S>, Error> {
        let Some(position) = self.link.read_position() else {
            return Ok(&self.store);
        };
        match tokio::time::timeout(self.timeout, self.manager.wait_for(self.name(), position)).await
        {
            Ok(waited) => waited.map(|()| &self.store).map_err(Error::from),
            Err(_elapsed) => Err(Error::ReadModelBehind {
                projection: self.name().to_owned(),
                position,
                waited: self.timeout,
            }),
        }
    }

    /// The projection's store without waiting: it may not show this process's latest appends.
    #[must_use]
    pub fn stale(&self) -> &ProjectionStore<S> {
        &self.store
    }

    /// Waits like [`ReadModel::fresh`], then runs `read` on a blocking thread (projection reads
    /// are file reads).
    ///
    /// ```no_run
    /// # async fn example(courses: opossum::ReadModel<String>, full: opossum::Tag) -> Result<(), opossum::Error> {
    /// use opossum::Page;
    ///
    /// // The first 50 courses in key order, then the 50 after them.
    /// let first = courses.read(|store| store.list(&Page::first(50))).await?;
    /// if let Some(next) = first.next {
    ///     let second = courses.read(move |store| store.list(&Page::first(50).after(next))).await?;
    /// #   let _ = second;
    /// }
    /// // The first 50 of those carrying a tag.
    /// let tagged = courses.read(move |store| store.query_by_tags(&[full], &Page::first(50))).await?;
    /// # let _ = tagged; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`ReadModel::fresh`], and the read's own error.
    pub async fn read<T, F>(&self, read: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&ProjectionStore<S>) -> Result<T, opossum_projections::Error> + Send + 'static,
    {
        let store = self.fresh().await?.clone();
        tokio::task::spawn_blocking(move || read(&store))
            .await
            .map_err(Error::task)?
            .map_err(Error::from)
    }
}
