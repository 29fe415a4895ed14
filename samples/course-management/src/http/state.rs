//! [`AppState`]: what every route handler shares — the running app, replaceable as a whole.

use std::sync::Arc;

use opossum::{Message, OpossumApp, Role};
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::app::{Settings, build_app};
use crate::error::{AppError, AppResult};

/// The running application behind a lock: requests share it, and deleting the store takes it
/// whole (waiting for requests in flight), deletes the folder, and opens a fresh store.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    app: RwLock<Option<OpossumApp>>,
    settings: Settings,
}

impl AppState {
    /// State around a built app and the settings it was built from.
    #[must_use]
    pub fn new(app: OpossumApp, settings: Settings) -> AppState {
        AppState {
            shared: Arc::new(Shared {
                app: RwLock::new(Some(app)),
                settings,
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
        let app = self.shared.app.write().await.take();
        match app {
            Some(app) => app.shutdown().await,
            None => Ok(()),
        }
    }
}
