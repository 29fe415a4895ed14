//! The one error type of `opossum-projections`.

use std::io;
use std::path::{Path, PathBuf};

use opossum_core::{ErrorKind, Position};

/// What a projection's own code may fail with: any error, boxed.
///
/// [`Projection::apply`](crate::Projection::apply) returns it, so `?` works on
/// [`SequencedEvent::decode`](opossum_core::SequencedEvent::decode) and on the caller's own
/// error types alike.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the projection system.
///
/// Each variant names the projection or file involved and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`ProjectionOptions`](crate::ProjectionOptions) were rejected; every problem is
    /// listed.
    #[error("invalid projection options: {}", problems.join("; "))]
    InvalidOptions {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// A projection definition cannot be registered.
    #[error("projection {name:?} cannot be registered: {problem}")]
    InvalidDefinition {
        /// The projection's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },

    /// Two projections have the same name (compared without regard to case, because their folders
    /// would collide on Windows and macOS).
    #[error(
        "projection name {name:?} is already registered as {existing:?}; give every projection its own name (case is ignored)"
    )]
    DuplicateProjection {
        /// The name registered second.
        name: String,
        /// The name registered first.
        existing: String,
    },

    /// No projection of this name is registered.
    #[error("no projection named {name:?} is registered (registered: {})", registered.join(", "))]
    UnknownProjection {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        registered: Vec<String>,
    },

    /// A typed store was asked for by the projection's Rust type, and several projections of
    /// that type are registered (under different names); ask by name instead.
    #[error(
        "{projection} is registered {} times (as {}); ask for its store by name with store_by_name",
        names.len(),
        names.join(", ")
    )]
    AmbiguousProjection {
        /// The projection's Rust type.
        projection: &'static str,
        /// The names it is registered under.
        names: Vec<String>,
    },

    /// A typed store was asked for with another state type than the projection's.
    #[error("projection {name:?} keeps states of type {actual}, not {requested}")]
    StateTypeMismatch {
        /// The projection's name.
        name: String,
        /// The state type asked for.
        requested: &'static str,
        /// The projection's state type.
        actual: &'static str,
    },

    /// Another process maintains the projections in this folder (it holds the lock file). Only
    /// one process may run the daemon and rebuilds for a folder; stop the other one, or give
    /// this one another folder.
    #[error(
        "another process maintains the projections in {path}: only one process may update a projection folder; stop it or use another folder"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// This manager follows a folder that another process maintains (see
    /// [`ProjectionManagerBuilder::open_or_follow`](crate::ProjectionManagerBuilder::open_or_follow)),
    /// so it may read the projections but not rebuild them. Rebuild from the maintaining
    /// process, or stop it: a follower's daemon takes over once the maintainer is gone.
    #[error(
        "cannot {action}: another process maintains the projections in {root} and this one only reads them; do it in that process, or stop it and let this one take over"
    )]
    NotMaintainer {
        /// What was refused, such as `rebuild projection "Students"`.
        action: String,
        /// The projections folder.
        root: PathBuf,
    },

    /// Reading events from the event store failed.
    #[error("reading the event store failed: {0}")]
    Store(#[from] opossum_core::Error),

    /// The disk holding the projections is full, or the disk quota is used up. The batch or
    /// rebuild step that hit it was not committed (its checkpoint did not move), so nothing is
    /// applied twice or skipped: the daemon retries at its next wake-up, and an interrupted
    /// rebuild resumes from its last flush point. Free space.
    #[error(
        "no space left to {action} {path}: the disk is full or the disk quota is used up; nothing committed was lost and the work is retried; free space"
    )]
    DiskFull {
        /// What was being done, such as "write" or "create".
        action: &'static str,
        /// The file or folder that could not grow.
        path: PathBuf,
    },

    /// An operating-system call failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done, such as "write" or "rename".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A projection file is not what this crate writes: edited or damaged outside it. Rebuild
    /// the projection (which writes a fresh generation and discards the damaged one).
    #[error("{path} is damaged: {reason}; rebuild the projection to replace it")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },

    /// A projection's `apply` returned an error. Events before it are applied; the projection
    /// stops at this event until the cause is fixed.
    #[error("projection {name:?} failed to apply the event at position {position}: {source}")]
    Apply {
        /// The projection's name.
        name: String,
        /// The event it could not apply.
        position: Position,
        /// What `apply` returned.
        #[source]
        source: BoxError,
    },

    /// A projection's own code panicked (in `key`, `apply` or `tags`). Treated like an error
    /// from `apply`: the projection stops at this event, the others go on.
    #[error("projection {name:?} panicked at the event at position {position}: {message}")]
    Panicked {
        /// The projection's name.
        name: String,
        /// The event being applied.
        position: Position,
        /// The panic message.
        message: String,
    },

    /// The projection is stopped at an event it failed to apply, so it will not reach the
    /// position waited for by itself.
    #[error(
        "projection {name:?} is stopped at the event at position {position}: {reason}; fix the projection (or the data it trips on) and restart, or rebuild it"
    )]
    Failing {
        /// The projection's name.
        name: String,
        /// The event it stopped at.
        position: Position,
        /// Why.
        reason: String,
    },

    /// `query_by_tags` was given no tags.
    #[error("query_by_tags needs at least one tag; use list() or get_all() for every instance")]
    EmptyTagQuery,

    /// A page request was invalid: a limit of 0, or a cursor that is not one a page returned.
    #[error("invalid page: {problem}")]
    InvalidPage {
        /// What is wrong with it.
        problem: String,
    },

    /// A rebuild of this projection is already running or queued.
    #[error("projection {name:?} is already being rebuilt; wait for that rebuild to finish")]
    RebuildInProgress {
        /// The projection's name.
        name: String,
    },

    /// A rebuild was stopped because the daemon that started it was shut down. Its journal is
    /// kept: the next start resumes it from its last flush point.
    #[error(
        "the rebuild of projection {name:?} was stopped by a shutdown; the next start resumes it"
    )]
    RebuildStopped {
        /// The projection's name.
        name: String,
    },

    /// A background task ended without an answer (it panicked or its runtime shut down).
    #[error("a background {what} task ended unexpectedly: {reason}")]
    Task {
        /// Which task.
        what: &'static str,
        /// What ended it.
        reason: String,
    },
}

impl Error {
    /// What kind of error this is: the case a caller acts on, shared by every Opossum crate.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOptions { .. }
            | Error::InvalidDefinition { .. }
            | Error::DuplicateProjection { .. }
            | Error::AmbiguousProjection { .. }
            | Error::StateTypeMismatch { .. }
            | Error::EmptyTagQuery
            | Error::InvalidPage { .. } => ErrorKind::InvalidInput,
            Error::UnknownProjection { .. } => ErrorKind::NotFound,
            Error::Locked { .. }
            | Error::NotMaintainer { .. }
            | Error::RebuildInProgress { .. } => ErrorKind::Busy,
            Error::Store(e) => e.kind(),
            Error::DiskFull { .. } => ErrorKind::DiskFull,
            Error::Io { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    ErrorKind::ReadOnly
                }
                _ => ErrorKind::Io,
            },
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Apply { .. } | Error::Panicked { .. } | Error::Failing { .. } => {
                ErrorKind::ProjectionFailed
            }
            Error::RebuildStopped { .. } => ErrorKind::Closed,
            Error::Task { .. } => ErrorKind::Other,
        }
    }

    /// Wraps an I/O error, turning a full disk or quota into [`Error::DiskFull`].
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Error {
        if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            return Error::DiskFull {
                action,
                path: path.as_ref().to_path_buf(),
            };
        }
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl AsRef<Path>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// True when the projection's own code failed ([`Error::Apply`] or [`Error::Panicked`]),
    /// as opposed to the store, the disk or the configuration.
    #[must_use]
    pub fn is_projection_failure(&self) -> bool {
        matches!(self, Error::Apply { .. } | Error::Panicked { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_or_quota_is_disk_full() {
        for kind in [io::ErrorKind::StorageFull, io::ErrorKind::QuotaExceeded] {
            let error = Error::io("write", "/p/state/a.json", io::Error::from(kind));
            assert!(
                matches!(
                    error,
                    Error::DiskFull {
                        action: "write",
                        ..
                    }
                ),
                "{error:?}"
            );
            assert!(error.to_string().contains("free space"), "{error}");
        }
        let other = Error::io("write", "/p", io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(other, Error::Io { .. }), "{other:?}");
        assert_eq!(other.kind(), ErrorKind::Io);
    }

    #[test]
    fn kinds_say_what_to_do() {
        let denied = Error::io(
            "write",
            "/p",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.kind(), ErrorKind::ReadOnly);
        let full = Error::io("write", "/p", io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(full.kind(), ErrorKind::DiskFull);
        let unknown = Error::UnknownProjection {
            name: "Courses".into(),
            registered: Vec::new(),
        };
        assert_eq!(unknown.kind(), ErrorKind::NotFound);
        let condition = Error::Store(opossum_core::Error::ConditionFailed { after: None });
        assert_eq!(condition.kind(), ErrorKind::ConditionFailed);
        let failing = Error::Failing {
            name: "Courses".into(),
            position: Position::FIRST,
            reason: "bad payload".into(),
        };
        assert_eq!(failing.kind(), ErrorKind::ProjectionFailed);
    }
}
