//! The lock file that makes one process the maintainer of a projections folder.
//!
//! Two processes updating the same projection would both apply events and race on its files
//! and checkpoint. The [`ProjectionManager`](crate::ProjectionManager) therefore holds an
//! exclusive advisory lock on `<root>/.lock` for as long as it lives. The operating system
//! releases it when the file is closed or the process dies (even by `kill -9`), so a crash never
//! leaves a stale lock.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::{Error, files};

/// The lock file's name in the projections folder.
pub(crate) const LOCK_FILE: &str = ".lock";

/// A held lock; dropping it closes the file, which releases the lock.
#[derive(Debug)]
pub(crate) struct FolderLock {
    _lock: fd_lock::RwLock<File>,
}

impl FolderLock {
    /// Takes the lock of the folder `root`, or fails at once with [`Error::Locked`].
    pub(crate) fn acquire(root: &Path) -> Result<FolderLock, Error> {
        let path = root.join(LOCK_FILE);
        let file = files::open_or_create(&path)?;
        let mut lock = fd_lock::RwLock::new(file);
        match lock.try_write() {
            // The guard would borrow `lock`; the lock belongs to the open file instead, and is
            // released when `lock` (and with it the file) is dropped.
            Ok(guard) => std::mem::forget(guard),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(Error::Locked { path });
            }
            Err(e) => return Err(Error::io("lock", &path, e)),
        }
        Ok(FolderLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_dropped() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let first = FolderLock::acquire(dir.path())?;
        assert!(dir.path().join(LOCK_FILE).is_file());
        assert!(matches!(
            FolderLock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        drop(first);
        FolderLock::acquire(dir.path())?;
        Ok(())
    }
}
