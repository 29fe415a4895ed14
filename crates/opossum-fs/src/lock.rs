//! The cross-process, cross-machine append lock.
//!
//! Every append, repair and delete holds it, in this process, in every other process on this
//! machine, and on every other machine that reaches the folder through a network share. It has
//! two layers (ADR 0010):
//!
//! 1. **An advisory lock on `store.lock`** (`flock` on Unix, `LockFileEx` on Windows). The
//!    operating system releases it when its holder exits, even on `kill -9`. It serialises the
//!    writers of one machine cheaply, and SMB and NFS servers enforce it between clients, but a
//!    FUSE file system may not forward it (sshfs never does, bindfs only when asked to).
//! 2. **A lease, `store.lease`, created with exclusive create** (`O_CREAT|O_EXCL`,
//!    `CREATE_NEW`) while the advisory lock is held, and removed before it is released. The
//!    server of every network file system decides an exclusive create atomically, so two
//!    clients can never both hold the lease. The lease records its owner (host, process,
//!    boot, a random token). A holder that dies leaves it behind: a waiter takes it over when
//!    its owner provably no longer runs (same machine and boot, process gone, or the machine
//!    rebooted since), or once it has stayed unchanged for `stale_lock_after` by the waiter's
//!    own clock (no clock comparison between machines).
//!
//! Taking over renames the lease away and checks that the renamed file is the stale one seen;
//! if a new holder slipped in between, its lease is put back.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::vfs::{OpenMode, Vfs, VfsLock};

const FIRST_BACKOFF: Duration = Duration::from_micros(500);
// Short: a waiting process polls often, so the holder does not simply re-take the lock.
const MAX_BACKOFF: Duration = Duration::from_millis(5);
/// How often in a row an exclusive create may be refused with some other error while no lease
/// exists, before that error is believed (a read-only folder).
const MAX_UNEXPLAINED_REFUSALS: u32 = 20;

/// The store's lock: the advisory lock file and the lease beside it.
#[derive(Debug)]
pub(crate) struct StoreLock {
    path: PathBuf,
    lock: Box<dyn VfsLock>,
    lease: Lease,
}

impl StoreLock {
    /// Opens (creating if needed) the lock file at `path`; the lease is `lease_path`, taken
    /// over from a dead holder after `stale_after`.
    pub(crate) fn open(
        vfs: &std::sync::Arc<dyn Vfs>,
        path: &Path,
        lease_path: PathBuf,
        stale_after: Duration,
    ) -> Result<StoreLock, Error> {
        let lock = vfs
            .lock_file(path)
            .map_err(|e| Error::io("open", path, e))?;
        Ok(StoreLock {
            path: path.to_path_buf(),
            lock,
            lease: Lease::new(std::sync::Arc::clone(vfs), lease_path, stale_after),
        })
    }

    /// Runs `f` while holding the lock and the lease, first waiting for both with jittered
    /// exponential backoff for at most `timeout`.
    pub(crate) fn with<R>(&mut self, timeout: Duration, f: impl FnOnce() -> R) -> Result<R, Error> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut seed = 0;
        let mut f = Some(f);
        let mut result = None;
        let mut failure = None;
        let lease = &mut self.lease;
        loop {
            let taken = self
                .lock
                .try_with(&mut || match lease.try_acquire() {
                    Ok(true) => {
                        if let Some(f) = f.take() {
                            result = Some(f());
                        }
                        if let Err(e) = lease.release() {
                            failure = Some(e);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => failure = Some(e),
                })
                .map_err(|e| Error::io("lock", &self.path, e))?;
            if let Some(result) = result.take() {
                if let Some(e) = failure.take() {
                    // The work is done; a lease we could not remove is taken over by the next
                    // writer once stale, and recognised as ours by this one.
                    tracing::warn!(error = %e, "could not remove the store lease after an append");
                }
                return Ok(result);
            }
            if let Some(e) = failure.take() {
                return Err(e);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: if taken {
                        lease.path.clone()
                    } else {
                        self.path.clone()
                    },
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

/// Who holds a lease: one line of JSON in `store.lease`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Owner {
    /// The machine's name, for operators and for recognising a reboot of this machine.
    pub(crate) host: String,
    /// Identifies one boot of one machine (Linux's `boot_id`), when the platform tells it.
    pub(crate) boot: Option<String>,
    pub(crate) pid: u32,
    /// The process's start time as the platform records it (Linux: clock ticks after boot),
    /// so a reused process id is not mistaken for the holder.
    pub(crate) started: Option<u64>,
    /// Unique to one lock of one store handle.
    pub(crate) token: String,
    /// Wall-clock milliseconds when the lease was taken, for operators only: staleness is
    /// never judged by comparing clocks of two machines.
    pub(crate) since_ms: u64,
}

impl Owner {
    fn this_process(token: String) -> Owner {
        let since_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Owner {
            host: platform::host_name(),
            boot: platform::boot_id(),
            pid: std::process::id(),
            started: platform::process_start(std::process::id()),
            token,
            since_ms,
        }
    }

    /// True when this record's process certainly no longer runs, judged from this machine.
    fn is_dead(&self, me: &Owner) -> bool {
        match (&self.boot, &me.boot) {
            (Some(theirs), Some(ours)) if theirs == ours => {
                if self.pid == me.pid && self.started == me.started {
                    // This process: dead unless one of its handles holds it right now (a
                    // lease of a handle dropped without releasing it, as after a crash that a
                    // test simulates in-process).
                    return !held_tokens().contains(&self.token);
                }
                match platform::process_alive(self.pid) {
                    Some(false) => true,
                    Some(true) => {
                        // A reused process id: the process with that id started at another time.
                        self.started.is_some()
                            && platform::process_start(self.pid).is_some()
                            && platform::process_start(self.pid) != self.started
                    }
                    None => false,
                }
            }
            // Same machine name, another boot: this machine restarted since the lease was taken.
            (Some(_), Some(_)) => self.host == me.host && !me.host.is_empty(),
            _ => false,
        }
    }
}

/// The lease file and what this handle has seen of other holders' leases.
#[derive(Debug)]
struct Lease {
    vfs: std::sync::Arc<dyn Vfs>,
    path: PathBuf,
    stale_after: Duration,
    me: Owner,
    record: Vec<u8>,
    /// Another holder's lease as last seen, and since when it has been unchanged.
    seen: Option<(Vec<u8>, Instant)>,
    /// Refused exclusive creates in a row while no lease was found afterwards.
    refusals: u32,
}

impl Lease {
    fn new(vfs: std::sync::Arc<dyn Vfs>, path: PathBuf, stale_after: Duration) -> Lease {
        let me = Owner::this_process(new_token());
        let mut record = serde_json::to_vec(&me).unwrap_or_default();
        record.push(b'\n');
        Lease {
            vfs,
            path,
            stale_after,
            me,
            record,
            seen: None,
            refusals: 0,
        }
    }

    /// Tries to create the lease. `Ok(false)` when another live holder has it.
    fn try_acquire(&mut self) -> Result<bool, Error> {
        match self.vfs.open(&self.path, OpenMode::CreateNew) {
            Ok(file) => {
                self.seen = None;
                self.refusals = 0;
                held_tokens().push(self.me.token.clone());
                // A lease without its record is still a lease: a waiter that reads it empty
                // waits for it like for any other.
                if let Err(e) = file.write_all_at(&self.record, 0) {
                    tracing::warn!(error = %e, "could not write the owner record of the store lease");
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.judge_existing(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.folder_gone()),
            // SFTP has no error code for "exists": sshfs reports a refused exclusive create as
            // a permission error. Only when no lease exists is it one.
            // It may also have been released since: only a refusal that persists while no
            // lease exists is taken for what it says.
            Err(e) if crate::vfs::exists(&*self.vfs, &self.path) => {
                tracing::trace!(error = %e, "exclusive create refused while a lease exists");
                self.refusals = 0;
                self.judge_existing()
            }
            Err(e) if self.refusals < MAX_UNEXPLAINED_REFUSALS => {
                tracing::trace!(error = %e, "exclusive create refused; trying again");
                self.refusals += 1;
                Ok(false)
            }
            Err(e) => Err(Error::io("create", &self.path, e)),
        }
    }

    fn folder_gone(&self) -> Error {
        Error::store_deleted(&self.path, "its folder no longer exists")
    }

    /// Another lease exists: ours (left by a failed removal), a live holder's, or a stale one,
    /// which is taken over.
    fn judge_existing(&mut self) -> Result<bool, Error> {
        let content = match crate::vfs::read_all(&*self.vfs, &self.path) {
            Ok(content) => content,
            // Released between our create and our read, or replaced by a new holder's while
            // we read it (a client may still hold the old length): look again next time.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(Error::io("read", &self.path, e)),
        };
        if content == self.record {
            self.seen = None;
            held_tokens().push(self.me.token.clone());
            return Ok(true);
        }
        let owner: Option<Owner> = serde_json::from_slice(&content).ok();
        let now = Instant::now();
        let unchanged_since = match &self.seen {
            Some((seen, since)) if *seen == content => *since,
            _ => {
                self.seen = Some((content.clone(), now));
                now
            }
        };
        let dead = owner.as_ref().is_some_and(|o| o.is_dead(&self.me));
        let stale = now.duration_since(unchanged_since) >= self.stale_after;
        if !dead && !stale {
            return Ok(false);
        }
        self.take_over(&content, owner.as_ref(), dead)?;
        Ok(false)
    }

    /// Removes a stale lease: renames it away (only one of several waiters can), checks that
    /// the file renamed is the stale one, and puts it back when it was a new holder's.
    fn take_over(&mut self, stale: &[u8], owner: Option<&Owner>, dead: bool) -> Result<(), Error> {
        let aside = self.path.with_file_name(format!(
            "{}.stale-{}",
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("store.lease"),
            self.me.token
        ));
        match self.vfs.rename(&self.path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("take over", &self.path, e)),
        }
        let moved = crate::vfs::read_all(&*self.vfs, &aside).unwrap_or_default();
        if moved != stale {
            // Another waiter took the stale lease over first and a new holder created this one.
            tracing::warn!(path = %self.path.display(), "a lease taken over was a new holder's; putting it back");
            return self
                .vfs
                .rename(&aside, &self.path)
                .map_err(|e| Error::io("restore", &self.path, e));
        }
        let _ = self.vfs.remove_file(&aside);
        self.seen = None;
        tracing::warn!(
            path = %self.path.display(),
            owner = ?owner,
            reason = if dead { "its owner no longer runs" } else { "it stayed unchanged for stale_lock_after" },
            "took over a stale store lease"
        );
        Ok(())
    }

    /// Removes the lease if it is still ours.
    fn release(&mut self) -> Result<(), Error> {
        held_tokens().retain(|t| *t != self.me.token);
        // Only our own record's bytes are read: the length a client reports may lag.
        let mut content = vec![0u8; self.record.len()];
        let read = self
            .vfs
            .open(&self.path, OpenMode::Read)
            .and_then(|file| file.read_exact_at(&mut content, 0));
        match read {
            Ok(()) if content == self.record => {}
            Ok(()) => {
                tracing::error!(path = %self.path.display(), "the store lease was taken over while this writer held it");
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::error!(path = %self.path.display(), "the store lease was replaced while this writer held it");
                return Ok(());
            }
            Err(e) => return Err(Error::io("read", &self.path, e)),
        }
        match self.vfs.remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &self.path, e)),
        }
    }
}

/// The tokens of the leases this process holds right now.
fn held_tokens() -> std::sync::MutexGuard<'static, Vec<String>> {
    static HELD: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A token unique to this handle's lease: 128 bits from the clock, the process, a counter and
/// an address.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = 0u8;
    let seed = format!(
        "{nanos}:{}:{}:{:p}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &local
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(seed.as_bytes()))
}

/// What the platform tells about this machine and its processes.
mod platform {
    /// The machine's name.
    pub(super) fn host_name() -> String {
        #[cfg(target_os = "linux")]
        {
            if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                return name.trim().to_owned();
            }
        }
        #[cfg(windows)]
        {
            if let Ok(name) = std::env::var("COMPUTERNAME") {
                return name;
            }
        }
        std::env::var("HOSTNAME").unwrap_or_default()
    }

    /// Identifies this boot of this machine, where the platform tells it.
    pub(super) fn boot_id() -> Option<String> {
        #[cfg(target_os = "linux")]
        {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_owned())
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Whether process `pid` of this machine runs, where the platform tells it.
    pub(super) fn process_alive(pid: u32) -> Option<bool> {
        #[cfg(target_os = "linux")]
        {
            Some(std::path::Path::new("/proc").join(pid.to_string()).exists())
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = pid;
            None
        }
    }

    /// When process `pid` started, in the platform's units, where it tells it.
    pub(super) fn process_start(pid: u32) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name (field 2) is in parentheses and may hold spaces; the start time
            // is field 22, the 20th after it.
            let after_name = stat.rsplit_once(')')?.1;
            after_name.split_whitespace().nth(19)?.parse().ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = pid;
            None
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::OsFs;
    use std::sync::Arc;

    fn lock_in(dir: &Path, stale_after: Duration) -> StoreLock {
        let vfs: Arc<dyn Vfs> = Arc::new(OsFs);
        StoreLock::open(
            &vfs,
            &dir.join("store.lock"),
            dir.join("store.lease"),
            stale_after,
        )
        .unwrap()
    }

    fn record(owner: &Owner) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(owner).unwrap();
        bytes.push(b'\n');
        bytes
    }

    #[test]
    fn the_lease_exists_only_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut lock = lock_in(dir.path(), Duration::from_secs(10));
        let lease = dir.path().join("store.lease");
        let seen = lock
            .with(Duration::from_secs(1), || {
                let owner: Owner = serde_json::from_slice(&std::fs::read(&lease).unwrap()).unwrap();
                owner
            })
            .unwrap();
        assert_eq!(seen.pid, std::process::id());
        assert_eq!(seen.token.len(), 32);
        assert!(!lease.exists());
    }

    #[test]
    fn a_live_holders_lease_excludes_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = lock_in(dir.path(), Duration::from_secs(60));
        // Another machine's holder, alive as far as anyone here can tell.
        let other = Owner {
            host: "other-pc".into(),
            boot: Some("another-boot".into()),
            pid: 1,
            started: None,
            token: "t".into(),
            since_ms: 0,
        };
        std::fs::write(dir.path().join("store.lease"), record(&other)).unwrap();
        let error = ours.with(Duration::from_millis(50), || ()).unwrap_err();
        let Error::LockTimeout { path, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(path.ends_with("store.lease"), "{error}");
        assert!(
            dir.path().join("store.lease").exists(),
            "a live lease is kept"
        );
    }

    #[test]
    fn an_unchanged_lease_is_taken_over_after_stale_lock_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = lock_in(dir.path(), Duration::from_millis(200));
        std::fs::write(dir.path().join("store.lease"), b"{\"garbage\n").unwrap();
        let started = Instant::now();
        ours.with(Duration::from_secs(5), || ()).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(!dir.path().join("store.lease").exists());
        let strays: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("stale"))
            .collect();
        assert!(strays.is_empty(), "{strays:?}");
    }

    #[test]
    fn a_lease_whose_process_is_gone_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = lock_in(dir.path(), Duration::from_secs(3600));
        let me = Owner::this_process("x".into());
        if me.boot.is_none() {
            return; // The platform cannot tell; covered by the time rule.
        }
        // A process that ran on this machine and exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid,
            token: "dead".into(),
            ..me.clone()
        };
        std::fs::write(dir.path().join("store.lease"), record(&dead)).unwrap();
        ours.with(Duration::from_secs(2), || ()).unwrap();
        // This machine rebooted since: same name, another boot.
        let rebooted = Owner {
            boot: Some("an-earlier-boot".into()),
            token: "rebooted".into(),
            ..me.clone()
        };
        assert!(rebooted.is_dead(&me));
        // A lease of this process that none of its handles holds is dead; one held is not.
        assert!(me.is_dead(&me));
        held_tokens().push(me.token.clone());
        assert!(!me.is_dead(&me));
        held_tokens().retain(|t| *t != me.token);
        // Another machine's is not dead.
        let elsewhere = Owner {
            host: format!("{}-other", me.host),
            boot: Some("b".into()),
            ..me.clone()
        };
        assert!(!elsewhere.is_dead(&me));
    }

    #[test]
    fn a_lease_left_by_this_handle_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = lock_in(dir.path(), Duration::from_secs(3600));
        std::fs::write(dir.path().join("store.lease"), &ours.lease.record).unwrap();
        ours.with(Duration::from_millis(100), || ()).unwrap();
        assert!(!dir.path().join("store.lease").exists());
    }

    #[test]
    fn a_deleted_folder_is_store_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        std::fs::create_dir(&store).unwrap();
        let mut ours = lock_in(&store, Duration::from_secs(10));
        std::fs::remove_dir_all(&store).unwrap();
        let error = ours.with(Duration::from_millis(100), || ()).unwrap_err();
        assert!(matches!(error, Error::StoreDeleted { .. }), "{error:?}");
    }

    #[test]
    fn a_lease_taken_over_by_another_waiter_first_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let vfs: Arc<dyn Vfs> = Arc::new(OsFs);
        let path = dir.path().join("store.lease");
        let mut late = Lease::new(Arc::clone(&vfs), path.clone(), Duration::from_secs(1));
        // `late` judged this stale lease ...
        let stale = b"stale\n".to_vec();
        // ... but meanwhile another waiter removed it and a new holder created its own.
        let fresh = b"fresh holder\n".to_vec();
        std::fs::write(&path, &fresh).unwrap();
        late.take_over(&stale, None, false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), fresh);
    }
}
