//! [`Error`]: what went wrong talking to PostgreSQL, and what to do.

use opossum_core::ErrorKind;

/// Why a [`PgEventStore`](crate::PgEventStore) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options or the connection URL are not valid. Nothing was done.
    #[error("invalid PostgreSQL store options: {}", problems.join("; "))]
    InvalidOptions {
        /// Every problem found.
        problems: Vec<String>,
    },

    /// The database could not be reached, or the connection was lost (the server restarted,
    /// the network failed). An append that fails this way was not acknowledged; retry it once
    /// the server is back (a condition protects against appending twice).
    #[error(
        "cannot reach PostgreSQL at {target}: {source}; check that the server runs and the URL is right, then retry"
    )]
    Unavailable {
        /// Host, port and database, without the password.
        target: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The server answered an SQL statement with an error.
    #[error("PostgreSQL refused {action}: {}", message(source))]
    Database {
        /// What the store was doing ("append", "read", "migrate the schema").
        action: &'static str,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A stored row is not the event line it should be, or the chain of hashes is broken.
    #[error(
        "the event at position {position} is damaged: {reason}; run verify, and restore from a backup"
    )]
    Corrupt {
        /// The position of the row.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The database holds a schema written by a newer version of this crate.
    #[error(
        "the schema {schema} is at version {found}, newer than this version of opossum-postgres understands ({supported}); upgrade the crate"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version found.
        found: i32,
        /// The newest version this crate knows.
        supported: i32,
    },

    /// [`PgEventStore::import_lines`](crate::PgEventStore::import_lines) was given a line
    /// that does not continue this store's chain. Nothing of the batch was copied.
    #[error("cannot copy the event at position {position}: {reason}")]
    ImportRejected {
        /// The position the line was to take.
        position: u64,
        /// Why it does not fit.
        reason: String,
    },

    /// The store was closed.
    #[error("the PostgreSQL store is closed; connect again")]
    Closed,

    /// A validation or DCB error from `opossum-core` (for example a failed append condition).
    #[error(transparent)]
    Core(opossum_core::Error),
}

impl Error {
    /// What kind of error this is, as every Opossum crate classifies them.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOptions { .. } => ErrorKind::InvalidInput,
            Error::Unavailable { .. } => ErrorKind::Io,
            Error::Database { source, .. } => database_kind(source),
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::ImportRejected { .. } => ErrorKind::InvalidInput,
            Error::SchemaTooNew { .. } => ErrorKind::Unsupported,
            Error::Closed => ErrorKind::Closed,
            Error::Core(e) => e.kind(),
        }
    }

    /// A copy for another caller of the same failed group commit.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::InvalidOptions { problems } => Error::InvalidOptions {
                problems: problems.clone(),
            },
            Error::Unavailable { target, source } => Error::Unavailable {
                target: target.clone(),
                source: source.to_string().into(),
            },
            // The client's error cannot be cloned: its kind and the server's message are kept.
            Error::Database { action, source } => Error::Core(opossum_core::Error::storage(
                database_kind(source),
                format!("PostgreSQL refused {action}: {}", message(source)),
            )),
            Error::Corrupt { position, reason } => Error::Corrupt {
                position: *position,
                reason: reason.clone(),
            },
            Error::SchemaTooNew {
                schema,
                found,
                supported,
            } => Error::SchemaTooNew {
                schema: schema.clone(),
                found: *found,
                supported: *supported,
            },
            Error::ImportRejected { position, reason } => Error::ImportRejected {
                position: *position,
                reason: reason.clone(),
            },
            Error::Closed => Error::Closed,
            Error::Core(e) => Error::Core(match e {
                opossum_core::Error::ConditionFailed { after } => {
                    opossum_core::Error::ConditionFailed { after: *after }
                }
                other => opossum_core::Error::storage(other.kind(), other.to_string()),
            }),
        }
    }
}

/// The server's message for `error` when it sent one, the client's otherwise.
fn message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

/// The kind of a server error, from its SQLSTATE; a lost connection is `Io`.
fn database_kind(error: &tokio_postgres::Error) -> ErrorKind {
    let socket = std::error::Error::source(error)
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || socket {
        return ErrorKind::Io;
    }
    match error.code().map(tokio_postgres::error::SqlState::code) {
        Some("53100") => ErrorKind::DiskFull,
        Some("25006") => ErrorKind::ReadOnly,
        Some("57014") => ErrorKind::Timeout,
        Some("55P03") => ErrorKind::LockTimeout,
        Some(code) if code.starts_with("08") || code.starts_with("57P") => ErrorKind::Io,
        Some(code) if code.starts_with("53") => ErrorKind::Busy,
        _ => ErrorKind::Other,
    }
}

impl From<Error> for opossum_core::Error {
    fn from(error: Error) -> opossum_core::Error {
        match error {
            Error::Core(e) => e,
            other => opossum_core::Error::storage(other.kind(), other),
        }
    }
}

impl From<opossum_core::Error> for Error {
    fn from(error: opossum_core::Error) -> Error {
        match error {
            opossum_core::Error::Storage(storage) => {
                let kind = storage.kind();
                match storage.into_inner().downcast::<Error>() {
                    Ok(own) => *own,
                    Err(other) => Error::Core(opossum_core::Error::storage(kind, other)),
                }
            }
            other => Error::Core(other),
        }
    }
}
