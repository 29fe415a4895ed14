//! The one seam through which the engine touches the file system.
//!
//! Every file operation of the engine — opening, positioned reads and writes, syncs, truncation,
//! renames, directory listing and directory syncs, and the cross-process lock — goes through a
//! [`Vfs`]. The production implementation, [`OsFs`], is the plain file system: each method is
//! the one system call it names, with no buffering or bookkeeping on the hot path. Tests use a
//! simulated file system (`sim`) that keeps written-but-unsynced data apart, can drop it or tear
//! it as a power cut would, forgets unsynced directory entries, and fails any chosen call — the
//! way redb tests through its storage backend and SQLite through its VFS.
//!
//! The seam is crate-private on purpose: it is a testing tool, not an extension point.

#[cfg(test)]
pub(crate) mod sim;

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write, creating the file (empty) when it does not exist; never truncates.
    ReadWrite,
    /// Read and write; the file must exist.
    ReadWriteExisting,
    /// Read and write, creating the file, which must not exist yet (`O_EXCL`, `CREATE_NEW`).
    CreateNew,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub(crate) name: OsString,
    pub(crate) is_dir: bool,
}

/// What [`Vfs::metadata`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) len: u64,
    pub(crate) is_dir: bool,
}

/// An open file.
pub(crate) trait VfsFile: Send + Sync + fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset` (`UnexpectedEof` when the file is shorter).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file as needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file at least `len` bytes long, the new bytes zero, reserving their disk
    /// space where the platform can (`fallocate` on Linux; elsewhere the file is extended with
    /// [`VfsFile::set_len`]). Never shortens the file.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable: `fsync`.
    fn sync_all(&self) -> io::Result<()>;
    /// Has the file system report the file's attributes afresh, so that [`VfsFile::len`] is
    /// the length on the server rather than one this client cached: sets the modification time
    /// to now, which a network or FUSE file system answers with the file's current attributes.
    /// Needs a writable handle.
    fn refresh(&self) -> io::Result<()>;
}

/// An advisory exclusive lock on one file, held only while a closure runs.
pub(crate) trait VfsLock: Send + fmt::Debug {
    /// Tries to take the lock without waiting. When it is taken, runs `f`, releases the lock and
    /// returns `Ok(true)`; when another holder has it, returns `Ok(false)` without running `f`.
    fn try_with(&mut self, f: &mut dyn FnMut()) -> io::Result<bool>;
}

/// A file system.
pub(crate) trait Vfs: Send + Sync + fmt::Debug {
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;
    /// Creates a directory and any missing parents (`create_dir_all`).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Lists a directory, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// The length and kind of a file or directory.
    fn metadata(&self, path: &Path) -> io::Result<Meta>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of a directory durable (created, renamed and removed names). On Unix a
    /// new file survives a power cut only once its directory is synced.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens (creating it if needed) a lock file.
    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn VfsLock>>;
    /// True when every process reaching `dir` shares one coherent view of its files: a local
    /// disk of this machine's kernel. False for network shares and FUSE mounts, whose clients
    /// may serve reads from their own caches, and when the kind cannot be told: the engine then
    /// re-opens and re-checks files under the lock instead of trusting open handles.
    fn coherent(&self, dir: &Path) -> bool;
}

/// The plain file system of the operating system.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OsFs;

impl OsFs {
    /// The shared production file system.
    pub(crate) fn shared() -> Arc<dyn Vfs> {
        Arc::new(OsFs)
    }
}

/// A file of the operating system.
#[derive(Debug)]
pub(crate) struct OsFile(File);

impl VfsFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.0,
                    &mut buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_write(
                    &self.0,
                    &buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn len(&self) -> io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.len()?;
        if len <= current {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            // Real blocks rather than a hole: a later write into them changes no allocation
            // and no length, so its `fdatasync` writes the data alone.
            match rustix::fs::fallocate(
                &self.0,
                rustix::fs::FallocateFlags::empty(),
                current,
                len - current,
            ) {
                Ok(()) => Ok(()),
                // A file system without `fallocate` (some FUSE and network ones).
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => self.0.set_len(len),
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            // Windows (`SetEndOfFile`) and the other platforms: the new bytes read as zeros.
            self.0.set_len(len)
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn refresh(&self) -> io::Result<()> {
        self.0.set_modified(std::time::SystemTime::now())
    }
}

/// An `flock` (Unix) or `LockFileEx` (Windows) lock, through `fd-lock`.
#[derive(Debug)]
struct OsLock(fd_lock::RwLock<File>);

impl VfsLock for OsLock {
    fn try_with(&mut self, f: &mut dyn FnMut()) -> io::Result<bool> {
        match self.0.try_write() {
            Ok(guard) => {
                f();
                drop(guard);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Vfs for OsFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let file = match mode {
            OpenMode::Read => File::open(path)?,
            OpenMode::ReadWrite => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?,
            OpenMode::ReadWriteExisting => OpenOptions::new().read(true).write(true).open(path)?,
            OpenMode::CreateNew => OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)?,
        };
        Ok(Arc::new(OsFile(file)))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // A name that vanished between the listing and this look counts as a file.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            out.push(DirEntry {
                name: entry.file_name(),
                is_dir,
            });
        }
        Ok(out)
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let m = fs::metadata(path)?;
        Ok(Meta {
            len: m.len(),
            is_dir: m.is_dir(),
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(windows)]
        {
            // NTFS journals directory changes itself, and Windows offers no way to flush a
            // directory handle opened by the standard library; nothing to do.
            let _ = dir;
            Ok(())
        }
    }

    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(OsLock(fd_lock::RwLock::new(file))))
    }

    fn coherent(&self, dir: &Path) -> bool {
        crate::check::is_local(dir)
    }
}

/// Reads a whole file.
pub(crate) fn read_all(vfs: &dyn Vfs, path: &Path) -> io::Result<Vec<u8>> {
    let file = vfs.open(path, OpenMode::Read)?;
    let len =
        usize::try_from(file.len()?).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// True when `path` exists (an error other than "not found" counts as existing, so a caller
/// that then opens it gets the real error).
pub(crate) fn exists(vfs: &dyn Vfs, path: &Path) -> bool {
    match vfs.metadata(path) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_file_system_reads_writes_and_lists() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let fs = OsFs;
        let sub = dir.path().join("a").join("b");
        fs.create_dir_all(&sub)?;
        let path = sub.join("f");
        let file = fs.open(&path, OpenMode::ReadWrite)?;
        file.write_all_at(b"hello", 3)?;
        file.sync_data()?;
        assert_eq!(file.len()?, 8);
        let mut buf = [0u8; 5];
        file.read_exact_at(&mut buf, 3)?;
        assert_eq!(&buf, b"hello");
        assert!(file.read_exact_at(&mut buf, 6).is_err());
        file.set_len(4)?;
        assert_eq!(read_all(&fs, &path)?, b"\0\0\0h");
        assert!(fs.open(&path, OpenMode::CreateNew).is_err());
        fs.sync_dir(&sub)?;
        let listed = fs.list(&sub)?;
        assert_eq!(
            listed,
            vec![DirEntry {
                name: "f".into(),
                is_dir: false
            }]
        );
        fs.rename(&path, &sub.join("g"))?;
        assert!(!exists(&fs, &path));
        assert_eq!(fs.metadata(&sub.join("g"))?.len, 4);
        let mut lock = fs.lock_file(&sub.join("lock"))?;
        let mut ran = false;
        assert!(lock.try_with(&mut || ran = true)?);
        assert!(ran);
        fs.remove_file(&sub.join("g"))?;
        fs.remove_dir_all(&dir.path().join("a"))?;
        assert!(!exists(&fs, &sub));
        Ok(())
    }
}
