//! The one error type of the facade.

use std::time::Duration;

use opossum_core::{ErrorKind, Position};

/// What can go wrong while building, running or closing an [`OpossumApp`](crate::OpossumApp).
///
/// The errors of the crates underneath are carried as they are, so their variants stay
/// reachable for details; to decide what to do, match on [`Error::kind`], which is the same for
/// every crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was rejected — by the TOML or environment parser, or by the store's
    /// and the projections' own option checks. Every problem found is listed.
    #[error("invalid configuration: {}", problems.join("; "))]
    InvalidConfig {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// The file store failed to open, close or delete.
    #[error(transparent)]
    Store(#[from] opossum_fs::Error),

    /// An event store operation failed.
    #[error(transparent)]
    EventStore(#[from] opossum_core::Error),

    /// A decision failed (see `opossum_decision::Error`).
    #[error(transparent)]
    Decision(#[from] opossum_decision::Error),

    /// The projection system failed (opening its folder, an unknown projection, a read).
    #[error(transparent)]
    Projections(#[from] opossum_projections::Error),

    /// The mediator refused the handlers (two for one message type) or a send failed.
    #[error(transparent)]
    Mediator(#[from] opossum_mediator::MediatorError),

    /// A projection had not applied the events this process appended within the
    /// read-your-writes timeout. The daemon is slow or stuck; see
    /// [`ProjectionManager::status`](opossum_projections::ProjectionManager::status).
    #[error(
        "projection {projection:?} has not reached position {position} after {waited:?}; \
         check the projection status (it may be failing or rebuilding a large store)"
    )]
    ReadModelBehind {
        /// The projection's name.
        projection: String,
        /// The position it was waited for.
        position: Position,
        /// How long the read waited.
        waited: Duration,
    },

    /// [`OpossumApp::delete_store`](crate::OpossumApp::delete_store) found the store still
    /// shared: some clone of the store, the mediator or a read model outlived the app.
    #[error(
        "the store is still in use ({what}); drop every clone of the mediator, the store and the \
         read models before deleting it"
    )]
    InUse {
        /// What still holds the store.
        what: &'static str,
    },

    /// [`OpossumApp::delete_store`](crate::OpossumApp::delete_store) was called in a process
    /// that follows another one: that process has the store open and maintains its projections.
    #[error(
        "another process has the store {path} open and maintains its projections; stop it, then \
         delete the store from one process"
    )]
    OpenElsewhere {
        /// The store folder.
        path: std::path::PathBuf,
    },

    /// The operation needs the folder store, and the app was built on another store
    /// ([`OpossumBuilder::event_store`](crate::OpossumBuilder::event_store)).
    #[error(
        "{operation} works on the folder store only, and this app was built on another event store; do it with that store's own tools"
    )]
    NotAFolderStore {
        /// The operation asked for.
        operation: &'static str,
    },

    /// A background task ended without an answer (it panicked or its runtime shut down).
    #[error("a background task ended unexpectedly: {reason}")]
    Task {
        /// What ended it.
        reason: String,
    },
}

impl Error {
    /// What kind of error this is: the case a caller acts on, the same [`ErrorKind`] whichever
    /// crate underneath the error came from.
    ///
    /// ```
    /// use opossum::{Config, ErrorKind, Opossum};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let error = Opossum::from_config(Config::new("/srv/CON")).build().await.unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// # });
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig { .. } => ErrorKind::InvalidInput,
            Error::Store(e) => e.kind(),
            Error::EventStore(e) => e.kind(),
            Error::Decision(e) => e.kind(),
            Error::Projections(e) => e.kind(),
            Error::Mediator(e) => e.kind(),
            Error::ReadModelBehind { .. } => ErrorKind::Timeout,
            Error::InUse { .. } | Error::OpenElsewhere { .. } => ErrorKind::Busy,
            Error::NotAFolderStore { .. } => ErrorKind::Unsupported,
            Error::Task { .. } => ErrorKind::Other,
        }
    }

    /// True when this wraps a failed DCB append condition.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        self.kind() == ErrorKind::ConditionFailed
    }

    pub(crate) fn task(error: tokio::task::JoinError) -> Error {
        Error::Task {
            reason: error.to_string(),
        }
    }
}
