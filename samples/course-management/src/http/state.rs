//! [`AppState`]: what every route handler shares — the running app, replaceable as a whole.

use std::sync::Arc;

use opossum::{Message, OpossumApp, Role};
use tokio::sync::{RwLock, RwLockReadGuard};

use super::feeds::{FeedEnd, FeedEnded, FeedStore, Feeds};
use crate::app::{Settings, build_app};
use crate::error::{AppError, AppResult};

/// The running application behind a lock: requests share it, and deleting the store takes it
/// whole (waiting for requests in flight, and ending the live feeds), deletes the folder, and
/// opens a fresh store.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    app: RwLock<Option<OpossumApp>>,
    settings: Settings,
    feeds: Feeds,
}

impl AppState {
    /// State around a built app and the settings it was built from.
    #[must_use]
    pub fn new(app: OpossumApp, settings: Settings) -> AppState {
        AppState {
            shared: Arc::new(Shared {
                app: RwLock::new(Some(app)),
                settings,
                feeds: Feeds::new(),
            }),
        }
    }

    /// The running app, shared for the duration of a request.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the store could not be reopened after a delete.
    pub async fn app(&self) -> AppResult<RwLockReadGuard<'_, OpossumApp>> {
        RwLockReadGuard::try_map(self.shared.app.read().await, Option::as_ref).map_err(|_| {
            AppError::Unavailable(
                "The store is not open: it could not be reopened after it was deleted; see the \
                 server log."
                    .to_owned(),
            )
        })
    }

    /// A live feed's hold on the store, and the future that resolves when the server ends the
    /// feed (the store is deleted, or the server shuts down). Unlike a request, a feed does not
    /// keep the app's lock: it holds the store until it is dropped or ended.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the store is not open or the server is shutting down.
    pub async fn open_feed(&self) -> AppResult<(FeedStore, FeedEnd)> {
        let store = Arc::clone(self.app().await?.store());
        self.shared.feeds.open(store).ok_or_else(|| {
            AppError::Unavailable("The server is shutting down; connect again later.".to_owned())
        })
    }

    /// Ends every live feed and refuses new ones, so that a graceful shutdown does not wait
    /// for feeds that would never end by themselves. [`serve`](crate::serve) calls it when its
    /// shutdown signal comes.
    pub fn end_feeds(&self) {
        self.shared.feeds.shut();
    }

    /// Sends a command or query through the mediator.
    ///
    /// # Errors
    /// The handler's error; the mediator's when the send fails (every message the routes send
    /// has a handler, or the app would not have been built).
    pub async fn send<M, T>(&self, message: M) -> AppResult<T>
    where
        M: Message<Output = AppResult<T>>,
    {
        let app = self.app().await?;
        app.mediator().send(message).await?
    }

    /// Deletes the store folder (events, index and projections) and opens a fresh, empty
    /// store in its place. Requests in flight finish first; new ones wait.
    ///
    /// # Errors
    /// [`opossum::Error::OpenElsewhere`] when another process maintains the store's projections
    /// (nothing is deleted); the facade's error when the delete or the reopen fails. After a
    /// failed delete the store is opened again, so the server goes on serving.
    pub async fn delete_store(&self) -> AppResult<()> {
        let mut slot = self.shared.app.write().await;
        if slot
            .as_ref()
            .is_some_and(|app| app.projections().role() == Role::Follower)
        {
            return Err(opossum::Error::OpenElsewhere {
                path: self.shared.settings.store_folder(),
            }
            .into());
        }
        if slot
            .as_ref()
            .is_some_and(|app| app.store().file_store().is_none())
        {
            // A shared database is not this server's to delete.
            return Err(opossum::Error::NotAFolderStore {
                operation: "deleting the store",
            }
            .into());
        }
        // An open feed holds the store, which the delete needs to itself.
        self.shared.feeds.end_all(FeedEnded::StoreDeleted).await;
        let deleted = match slot.take() {
            Some(app) => app.delete_store().await,
            None => Ok(()),
        };
        // A fresh store after the delete; the same one again if the delete failed.
        *slot = Some(build_app(&self.shared.settings).await?);
        deleted?;
        tracing::warn!(store = %self.shared.settings.store_folder().display(), "store deleted and recreated");
        Ok(())
    }

    /// Stops the daemon and closes the store, once requests in flight are done.
    ///
    /// # Errors
    /// The facade's error from the shutdown.
    pub async fn shutdown(&self) -> Result<(), opossum::Error> {
        self.end_feeds();
        let app = self.shared.app.write().await.take();
        match app {
            Some(app) => app.shutdown().await,
            None => Ok(()),
        }
    }
}
