//! [`Error`]: why a command could not run (exit code 2).

use std::path::PathBuf;

use opossum_core::ErrorKind;

/// Why an `opossum` command could not do its work. Every one of these ends the command with
/// exit code [`EXIT_NOT_RUN`](crate::EXIT_NOT_RUN) (2); a check that ran and found a problem is
/// not an error but the outcome [`Outcome::Failed`](crate::Outcome::Failed) (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file store refused or failed (no store in the folder, an I/O error, damage that
    /// stops it opening).
    #[error(transparent)]
    Store(#[from] opossum_fs::Error),

    /// An argument was accepted by the parser but is not valid (an event type with a control
    /// character, a tag without `=`, a range that is empty).
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        /// The argument, as the help names it (`--tag`).
        argument: &'static str,
        /// What is wrong and what to give instead.
        reason: String,
    },

    /// A file or folder the command reads or writes failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "create").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// Writing the command's output (standard output) failed, for example because the reader
    /// of a pipe went away.
    #[error("could not write the output: {0}")]
    Output(#[source] std::io::Error),

    /// The PostgreSQL store refused or failed (unreachable, a schema too new, a copy that does
    /// not continue its chain).
    #[error(transparent)]
    Postgres(#[from] opossum_postgres::Error),

    /// `migrate` found events in PostgreSQL that are not the folder store's.
    #[error(
        "the PostgreSQL store already holds other events: its position {position} has hash {found}, the folder store's has {expected}; migrate into an empty schema (--schema)"
    )]
    Diverged {
        /// The position compared.
        position: u64,
        /// Its hash in PostgreSQL.
        found: String,
        /// Its hash in the folder store (`none` when the folder has no such event).
        expected: String,
    },

    /// The projections could not be read or rebuilt.
    #[error(transparent)]
    Projections(#[from] opossum_projections::Error),

    /// `projections rebuild` needs the projections' definitions, which only the application
    /// that defines them has.
    #[error(
        "rebuilding needs the projections' definitions, which this binary does not have; run the rebuild from the application's own binary (it exposes this command through opossum_cli::Tool::projections), or let the application rebuild on its next start"
    )]
    NoDefinitions,

    /// A key file for signing or checking an export is missing or malformed.
    #[error("cannot use the key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The export folder given to `export` is not empty, or the one given to `verify-export`
    /// holds no manifest.
    #[error("cannot use {path} for the export: {reason}")]
    ExportFolder {
        /// The folder given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The event browser could not listen on the address given.
    #[error("cannot listen on {address}: {source}; choose another address or port with --bind")]
    Bind {
        /// The address given.
        address: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// What kind of error this is, as every Opossum crate classifies them.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => e.kind(),
            Error::Projections(e) => e.kind(),
            Error::Postgres(e) => e.kind(),
            Error::Diverged { .. } => ErrorKind::InvalidInput,
            Error::InvalidArgument { .. }
            | Error::Key { .. }
            | Error::ExportFolder { .. }
            | Error::NoDefinitions => ErrorKind::InvalidInput,
            Error::Io { .. } | Error::Output(_) | Error::Bind { .. } => ErrorKind::Io,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<opossum_core::Error> for Error {
    fn from(error: opossum_core::Error) -> Error {
        Error::Store(opossum_fs::Error::from(error))
    }
}
