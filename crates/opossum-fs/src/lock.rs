//! The cross-process append lock: an advisory lock on `store.lock`.
//!
//! Every append, repair and delete holds it, in this process and in every other process using the
//! folder. The operating system releases it when its holder exits, even on `kill -9`, so a crash
//! never leaves a stale lock behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::vfs::{Vfs, VfsLock};

const FIRST_BACKOFF: Duration = Duration::from_micros(500);
// Short: a waiting process polls often, so the holder does not simply re-take the lock.
const MAX_BACKOFF: Duration = Duration::from_millis(5);

/// The store's lock file.
#[derive(Debug)]
pub(crate) struct StoreLock {
    path: PathBuf,
    lock: Box<dyn VfsLock>,
}

impl StoreLock {
    /// Opens (creating if needed) the lock file at `path`.
    pub(crate) fn open(vfs: &dyn Vfs, path: &Path) -> Result<StoreLock, Error> {
        let lock = vfs
            .lock_file(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(StoreLock {
            path: path.to_path_buf(),
            lock,
        })
    }

    /// Runs `f` while holding the lock, first waiting for it with jittered exponential backoff
    /// for at most `timeout`.
    pub(crate) fn with<R>(&mut self, timeout: Duration, f: impl FnOnce() -> R) -> Result<R, Error> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut seed = 0;
        let mut f = Some(f);
        let mut result = None;
        loop {
            let taken = self
                .lock
                .try_with(&mut || {
                    if let Some(f) = f.take() {
                        result = Some(f());
                    }
                })
                .map_err(|e| Error::io("lock", &self.path, e))?;
            if taken {
                if let Some(result) = result.take() {
                    return Ok(result);
                }
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: self.path.clone(),
                    waited,
                    timeout,
                });
            }
            seed = if seed == 0 {
                jitter_seed()
            } else {
                xorshift(seed)
            };
            // Sleep between half and all of the backoff, so contending processes spread out.
            let nanos = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
            let sleep = Duration::from_nanos(nanos / 2 + seed % (nanos / 2 + 1));
            std::thread::sleep(sleep.min(timeout.saturating_sub(waited)));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn jitter_seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(clock) ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}
