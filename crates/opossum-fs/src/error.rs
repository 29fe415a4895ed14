//! The one error type of `opossum-fs`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use opossum_core::ErrorKind;

/// Everything that can go wrong in the file store.
///
/// Each variant names the file involved and says what to do; [`Error::kind`] says which of the
/// cases shared by every Opossum crate it is. Appends and reads — through the
/// [`EventStore`](opossum_core::EventStore) trait and their blocking twins alike — return
/// [`opossum_core::Error`]: an error of this type arrives there as
/// [`opossum_core::Error::Storage`] with the same kind (and this error as its source), except
/// [`Error::Core`], which is unwrapped back into the core error it carries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`StoreOptions`](crate::StoreOptions) were rejected; every problem is listed.
    #[error("invalid store options: {}", problems.join("; "))]
    InvalidOptions {
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// The path given for the store folder cannot be one: its last component is not a portable
    /// folder name, or there is none. Nothing was created.
    #[error("{path} cannot be a store folder: {}", problems.join("; "))]
    InvalidPath {
        /// The path given.
        path: PathBuf,
        /// One sentence per problem.
        problems: Vec<String>,
    },

    /// Another process held the store's lock file for longer than the configured timeout.
    #[error(
        "timed out after {waited:?} waiting for the lock file {path} held by another process; \
         raise the store's `lock_timeout` (now {timeout:?}) or find the process holding it"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long the append waited.
        waited: Duration,
        /// The configured `lock_timeout`.
        timeout: Duration,
    },

    /// The folder's file system does not provide the exclusion or the coherence the store
    /// needs: another writer changed the log while this one held the lock, or the file system
    /// kept showing an older state of the log than the one its other clients wrote. The append
    /// was not acknowledged. Check the folder with [`check_folder`](crate::check_folder),
    /// mount the share with byte-range locking and without attribute or data caching, or keep
    /// the store on a file system listed as tested in the documentation.
    #[error(
        "the file system of {path} does not provide the locking the store needs ({detail}); the append was not acknowledged; mount the share with locking on and caching off, or move the store to a tested file system"
    )]
    LockNotHonoured {
        /// The store folder.
        path: PathBuf,
        /// What was observed.
        detail: String,
    },

    /// The store was deleted through another handle or by another process (or its folder now
    /// holds a different store). Nothing was written; open the store again to start a new one.
    #[error(
        "the store at {path} was deleted by another handle or process{}; open it again to use the store now at that path",
        if detail.is_empty() { String::new() } else { format!(" ({detail})") }
    )]
    StoreDeleted {
        /// The store folder.
        path: PathBuf,
        /// What showed it.
        detail: String,
    },

    /// A committed part of the log could not be read back as the event it should hold: the file
    /// was damaged or edited outside the store. Run `verify` to locate the first broken position
    /// and restore the file from a backup; nothing was changed on disk.
    #[error(
        "the event log is damaged in {file} at byte {offset}: {reason}; run verify and restore this file from a backup"
    )]
    CorruptLog {
        /// The damaged segment file.
        file: PathBuf,
        /// Where in the file the damage starts.
        offset: u64,
        /// What was found there.
        reason: String,
    },

    /// `head.json` records a commit that the log does not hold (or holds with another hash):
    /// committed history was removed or rewritten outside the store. Nothing was changed. Restore
    /// the segment files from a backup; or, to accept the log as it now is (for example a copy
    /// taken while a writer was active), delete `head.json` and open again.
    #[error(
        "{path} records committed position {anchored}, but {detail}; restore the events folder from a backup, or delete head.json to accept the log as it is"
    )]
    AnchorMismatch {
        /// The anchor file.
        path: PathBuf,
        /// The position it records.
        anchored: u64,
        /// What the log holds instead.
        detail: String,
    },

    /// The store folder cannot be written (a read-only folder, mount or file). Reads still work;
    /// appends and repairs need write access.
    #[error(
        "the store at {path} is read-only: appends and repairs need write access to the folder"
    )]
    ReadOnly {
        /// The file or folder that refused the write.
        path: PathBuf,
    },

    /// The disk holding the store is full, or the user's disk quota is used up. An append that
    /// hits it fails as a whole: the log is cut back to its last commit, so nothing is
    /// half-written and nothing already stored is lost. Free space, then retry; the store stays
    /// usable meanwhile (reads work).
    #[error(
        "no space left to {action} {path}: the disk is full or the disk quota is used up; nothing stored was lost and the failed append left nothing behind; free space, then retry"
    )]
    DiskFull {
        /// What the store was doing, as a verb phrase ("append to", "sync", …).
        action: &'static str,
        /// The file or folder that could not grow.
        path: PathBuf,
    },

    /// An operating-system call failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What the store was doing, as a verb phrase ("open", "sync", …).
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A write or sync failed and the store could not restore its log to the last commit, so it
    /// refuses further appends to avoid building on unknown state. Reopen the store; recovery
    /// will repair the log.
    #[error(
        "the store stopped accepting appends after an unrecoverable write failure ({reason}); reopen it to run recovery"
    )]
    Poisoned {
        /// The failure that poisoned the store.
        reason: String,
    },

    /// [`check_folder`](crate::check_folder) was given a path that is not an existing folder.
    /// Nothing was created.
    #[error("cannot check {path}: {reason}; give the path of an existing folder")]
    NotAFolder {
        /// The path given.
        path: PathBuf,
        /// What was found instead ("it does not exist", "it is a file, not a folder").
        reason: &'static str,
    },

    /// A store was to be opened [read-only](crate::StoreOptions::read_only) where there is
    /// none. Nothing was created.
    #[error(
        "there is no store in {path}: it has no events/ folder; give the folder of an existing store"
    )]
    NotAStore {
        /// The folder given.
        path: PathBuf,
    },

    /// A subject's key file in the key store ([`FileKeyStore`](crate::FileKeyStore)) could not
    /// be read as a key or a destroyed key: it was altered, or destroying it was interrupted.
    #[error(
        "the key file {path} is damaged ({problem}); if the subject was forgotten, opening the \
         store's records finishes destroying it, otherwise restore the key store from its backup"
    )]
    DamagedKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// [`FileEventStore::backup`](crate::FileEventStore::backup) was given a destination it
    /// will not write into. Nothing was created.
    #[error(
        "cannot back up into {path}: {reason}; give the absolute path of a folder that does not exist yet, or of an empty one"
    )]
    BackupDestination {
        /// The destination given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The store was closed or deleted; open it again.
    #[error("the store is closed; open it again")]
    Closed,

    /// A validation or DCB error from `opossum-core` (for example a failed append condition).
    #[error(transparent)]
    Core(opossum_core::Error),
}

/// Recovers the file store's error from an [`opossum_core::Error`] that carries one (as the
/// file store's appends and reads return it); any other core error becomes [`Error::Core`].
impl From<opossum_core::Error> for Error {
    fn from(error: opossum_core::Error) -> Error {
        match error {
            opossum_core::Error::Storage(storage) => {
                let kind = storage.kind();
                match storage.into_inner().downcast::<Error>() {
                    Ok(own) => *own,
                    // Another back end's error: kept as it was.
                    Err(other) => Error::Core(opossum_core::Error::storage(kind, other)),
                }
            }
            other => Error::Core(other),
        }
    }
}

impl Error {
    /// What kind of error this is: the case a caller acts on, shared by every Opossum crate.
    ///
    /// ```
    /// use opossum_core::ErrorKind;
    /// use opossum_fs::FileEventStore;
    ///
    /// let error = FileEventStore::open("/no/such/folder/CON").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidOptions { .. }
            | Error::InvalidPath { .. }
            | Error::NotAFolder { .. }
            | Error::BackupDestination { .. } => ErrorKind::InvalidInput,
            Error::LockTimeout { .. } => ErrorKind::LockTimeout,
            Error::LockNotHonoured { .. } => ErrorKind::Unsupported,
            Error::StoreDeleted { .. } | Error::Poisoned { .. } | Error::Closed => {
                ErrorKind::Closed
            }
            Error::CorruptLog { .. } | Error::AnchorMismatch { .. } | Error::DamagedKey { .. } => {
                ErrorKind::Corrupt
            }
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::NotAStore { .. } => ErrorKind::NotFound,
            Error::DiskFull { .. } => ErrorKind::DiskFull,
            Error::Io { .. } => ErrorKind::Io,
            Error::Core(e) => e.kind(),
        }
    }

    /// The file store's error inside `error`, when it carries one: the details (the file, the
    /// position) behind an append or a read that failed. To decide what to do, `error.kind()`
    /// is enough; to take it out by value, use `Error::from(error)`.
    ///
    /// ```
    /// use opossum_core::ErrorKind;
    ///
    /// // What an append through the `EventStore` trait returns when the disk is full:
    /// let error = opossum_core::Error::from(opossum_fs::Error::DiskFull {
    ///     action: "append to",
    ///     path: "/srv/records/events/00000000000000000001.jsonl".into(),
    /// });
    /// assert_eq!(error.kind(), ErrorKind::DiskFull);
    /// if let Some(opossum_fs::Error::DiskFull { path, .. }) = opossum_fs::Error::of(&error) {
    ///     assert!(path.ends_with("00000000000000000001.jsonl"));
    /// }
    /// ```
    #[must_use]
    pub fn of(error: &opossum_core::Error) -> Option<&Error> {
        match error {
            opossum_core::Error::Storage(storage) => storage.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// True when an append failed only because its DCB condition did not hold.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        self.kind() == ErrorKind::ConditionFailed
    }

    /// Wraps an I/O error, turning a permission failure into [`Error::ReadOnly`] and a full
    /// disk or quota into [`Error::DiskFull`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if is_read_only(&source) {
            return Error::ReadOnly { path };
        }
        if is_disk_full(&source) {
            return Error::DiskFull { action, path };
        }
        Error::Io {
            action,
            path,
            source,
        }
    }

    /// A copy of this error for another caller of the same failed group commit: the same
    /// variant, path and message; an I/O error keeps its kind and OS error code.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::InvalidOptions { problems } => Error::InvalidOptions {
                problems: problems.clone(),
            },
            Error::InvalidPath { path, problems } => Error::InvalidPath {
                path: path.clone(),
                problems: problems.clone(),
            },
            Error::NotAStore { path } => Error::NotAStore { path: path.clone() },
            Error::LockTimeout {
                path,
                waited,
                timeout,
            } => Error::LockTimeout {
                path: path.clone(),
                waited: *waited,
                timeout: *timeout,
            },
            Error::CorruptLog {
                file,
                offset,
                reason,
            } => Error::CorruptLog {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::AnchorMismatch {
                path,
                anchored,
                detail,
            } => Error::AnchorMismatch {
                path: path.clone(),
                anchored: *anchored,
                detail: detail.clone(),
            },
            Error::LockNotHonoured { path, detail } => Error::LockNotHonoured {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::StoreDeleted { path, detail } => Error::StoreDeleted {
                path: path.clone(),
                detail: detail.clone(),
            },
            Error::ReadOnly { path } => Error::ReadOnly { path: path.clone() },
            Error::DiskFull { action, path } => Error::DiskFull {
                action,
                path: path.clone(),
            },
            Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Poisoned { reason } => Error::Poisoned {
                reason: reason.clone(),
            },
            Error::NotAFolder { path, reason } => Error::NotAFolder {
                path: path.clone(),
                reason,
            },
            Error::BackupDestination { path, reason } => Error::BackupDestination {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::DamagedKey { path, problem } => Error::DamagedKey {
                path: path.clone(),
                problem: problem.clone(),
            },
            Error::Closed => Error::Closed,
            // Core errors are per request (a failed condition, a bad event), never the failure
            // of a whole group; keep the message if one ever is.
            Error::Core(e) => Error::Io {
                action: "append to",
                path: PathBuf::new(),
                source: io::Error::other(e.to_string()),
            },
        }
    }

    /// [`Error::StoreDeleted`] for the store holding `file` (a file directly in its folder).
    pub(crate) fn store_deleted(file: &std::path::Path, detail: impl Into<String>) -> Error {
        Error::StoreDeleted {
            path: file
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default(),
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::CorruptLog {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// True for the errors a read-only folder, file or mount produces.
pub(crate) fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    ) || (cfg!(unix) && e.raw_os_error() == Some(EPERM))
}

/// True for a full disk (`ENOSPC`, `ERROR_DISK_FULL`) or an exhausted quota (`EDQUOT`).
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// `EPERM`, which Unix systems return for writes to immutable files.
const EPERM: i32 = 1;

impl From<Error> for opossum_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            other => opossum_core::Error::storage(other.kind(), other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_or_quota_is_disk_full_and_says_what_to_do() {
        for source in [
            io::Error::from(io::ErrorKind::StorageFull),
            io::Error::from(io::ErrorKind::QuotaExceeded),
        ] {
            let error = Error::io("append to", "/store/events/1.jsonl", source);
            assert!(
                matches!(
                    error,
                    Error::DiskFull {
                        action: "append to",
                        ..
                    }
                ),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(message.contains("/store/events/1.jsonl"), "{message}");
            assert!(message.contains("free space"), "{message}");
        }
        #[cfg(target_os = "linux")]
        {
            const ENOSPC: i32 = 28;
            let error = Error::io("sync", "/x", io::Error::from_raw_os_error(ENOSPC));
            assert!(matches!(error, Error::DiskFull { .. }), "{error:?}");
        }
        let other = Error::io("open", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(other, Error::Io { .. }), "{other:?}");
    }

    #[test]
    fn through_the_event_store_trait_the_kind_and_the_error_stay() {
        let core = opossum_core::Error::from(Error::DiskFull {
            action: "sync",
            path: "/s/events/1.jsonl".into(),
        });
        assert_eq!(core.kind(), ErrorKind::DiskFull);
        assert!(core.to_string().contains("/s/events/1.jsonl"), "{core}");
        let opossum_core::Error::Storage(storage) = &core else {
            panic!("not a storage error: {core:?}");
        };
        assert!(matches!(
            storage.downcast_ref::<Error>(),
            Some(Error::DiskFull { .. })
        ));
        let failed = opossum_core::Error::from(Error::Core(opossum_core::Error::ConditionFailed {
            after: None,
        }));
        assert!(matches!(
            failed,
            opossum_core::Error::ConditionFailed { after: None }
        ));
        assert_eq!(
            Error::LockNotHonoured {
                path: "/s".into(),
                detail: String::new()
            }
            .kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn duplicates_keep_the_variant_path_and_os_error() {
        let errors = [
            Error::io("append to", "/s/e", io::Error::from_raw_os_error(5)),
            Error::DiskFull {
                action: "sync",
                path: "/s/e".into(),
            },
            Error::LockTimeout {
                path: "/s/store.lock".into(),
                waited: Duration::from_secs(5),
                timeout: Duration::from_secs(5),
            },
            Error::ReadOnly { path: "/s".into() },
            Error::Poisoned { reason: "r".into() },
            Error::LockNotHonoured {
                path: "/s".into(),
                detail: "d".into(),
            },
            Error::StoreDeleted {
                path: "/s".into(),
                detail: String::new(),
            },
        ];
        for error in &errors {
            let copy = error.duplicate();
            assert_eq!(copy.kind(), error.kind());
            assert_eq!(copy.to_string(), error.to_string());
            assert_eq!(std::mem::discriminant(&copy), std::mem::discriminant(error));
        }
        let Error::Io { source, .. } = errors[0].duplicate() else {
            panic!("not an I/O error");
        };
        assert_eq!(source.raw_os_error(), Some(5));
    }
}
