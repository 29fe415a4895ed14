//! Store options and their validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// Names Windows reserves for devices; a folder with one of these names cannot be created there,
/// so they are refused everywhere to keep stores portable.
const RESERVED_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that are path separators or invalid in Windows file names.
const FORBIDDEN_CHARACTERS: [char; 9] = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// The longest store name accepted, in bytes (file systems allow 255).
const MAX_NAME_LEN: usize = 200;

/// The longest lock timeout accepted: beyond this an append would look hung.
const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(3600);

/// The default for [`StoreOptions::stale_lock_after`].
pub(crate) const STALE_LOCK_AFTER: Duration = Duration::from_secs(10);
/// The shortest stale-lock time accepted: a holder on a slow network share needs that long for
/// one group commit at least.
const MIN_STALE_LOCK_AFTER: Duration = Duration::from_millis(200);

/// Where a store lives and how it writes.
///
/// The store is the folder `root/name`. Options are checked when the store opens, and every
/// problem is reported at once in [`Error::InvalidOptions`].
///
/// ```
/// use std::time::Duration;
/// use opossum_fs::StoreOptions;
///
/// let options = StoreOptions::new("/var/lib/records", "quality")
///     .flush_events_immediately(true)
///     .cross_process_lock_timeout(Duration::from_secs(10));
/// assert!(options.validate().is_ok());
/// assert!(StoreOptions::new("relative/path", "a/b").validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    root: PathBuf,
    name: String,
    flush_events_immediately: bool,
    cross_process_lock_timeout: Duration,
    stale_lock_after: Duration,
    /// Start a new segment file once the current one holds this many bytes. Fixed in
    /// production; tests lower it to exercise segment rolls.
    segment_target_bytes: u64,
}

/// The default segment size: a new segment starts once the current one holds 64 MiB.
pub(crate) const SEGMENT_TARGET_BYTES: u64 = 64 << 20;

impl StoreOptions {
    /// Options for the store `root/name`, with the defaults: events are flushed to stable
    /// storage before `append` returns, and appends wait up to 5 s for another process's lock.
    pub fn new(root: impl Into<PathBuf>, name: impl Into<String>) -> StoreOptions {
        StoreOptions {
            root: root.into(),
            name: name.into(),
            flush_events_immediately: true,
            cross_process_lock_timeout: Duration::from_secs(5),
            stale_lock_after: STALE_LOCK_AFTER,
            segment_target_bytes: SEGMENT_TARGET_BYTES,
        }
    }

    /// Whether `append` waits until its events are on stable storage (`fdatasync`) before it
    /// returns. Default `true`. With `false`, appends are as durable as the operating system's
    /// page cache: a process crash loses nothing, a power loss may lose the latest appends.
    #[must_use]
    pub fn flush_events_immediately(mut self, flush: bool) -> StoreOptions {
        self.flush_events_immediately = flush;
        self
    }

    /// How long an append waits for the lock file while another process appends. Default 5 s;
    /// between 1 ms and 1 hour.
    #[must_use]
    pub fn cross_process_lock_timeout(mut self, timeout: Duration) -> StoreOptions {
        self.cross_process_lock_timeout = timeout;
        self
    }

    /// The folder that holds the store folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's name, which is also its folder name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// See [`StoreOptions::flush_events_immediately`].
    #[must_use]
    pub fn flushes_events_immediately(&self) -> bool {
        self.flush_events_immediately
    }

    /// See [`StoreOptions::cross_process_lock_timeout`].
    #[must_use]
    pub fn lock_timeout(&self) -> Duration {
        self.cross_process_lock_timeout
    }

    /// When a writer may take over the store's lease (`store.lease`) from a holder that seems
    /// to have died: once the lease has stayed unchanged for this long, as timed by the waiting
    /// writer's own clock. Default 10 s; between 200 ms and 1 hour.
    ///
    /// Every append holds the lease for one group commit (milliseconds), so a lease this old
    /// was left by a process that was killed or a machine that lost power while appending. A
    /// lease left by a process of the same machine that is no longer running is taken over at
    /// once. Raise this on a very slow share where one commit may take longer. See
    /// `docs/adr/0010-several-machines-one-folder.md`.
    #[must_use]
    pub fn stale_lock_after(mut self, after: Duration) -> StoreOptions {
        self.stale_lock_after = after;
        self
    }

    /// See [`StoreOptions::stale_lock_after`].
    #[must_use]
    pub fn stale_lock_time(&self) -> Duration {
        self.stale_lock_after
    }

    /// Sets the segment size (tests only: small segments make rolls cheap to exercise).
    #[cfg(test)]
    #[must_use]
    pub(crate) fn segment_target_bytes(mut self, bytes: u64) -> StoreOptions {
        self.segment_target_bytes = bytes.max(1);
        self
    }

    /// When a new segment file starts.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segment_target_bytes
    }

    /// The store folder, `root/name`.
    #[must_use]
    pub fn store_path(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] listing every problem found.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if !self.root.is_absolute() {
            problems.push(format!(
                "root {} is not an absolute path; give the full path of the folder that holds the store",
                self.root.display()
            ));
        }
        problems.extend(name_problems(&self.name));
        let timeout = self.cross_process_lock_timeout;
        if timeout < Duration::from_millis(1) || timeout > MAX_LOCK_TIMEOUT {
            problems.push(format!(
                "cross_process_lock_timeout {timeout:?} is out of range; use between 1 ms and 1 hour"
            ));
        }
        let stale = self.stale_lock_after;
        if stale < MIN_STALE_LOCK_AFTER || stale > MAX_LOCK_TIMEOUT {
            problems.push(format!(
                "stale_lock_after {stale:?} is out of range; use between 200 ms and 1 hour"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

fn name_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.is_empty() {
        problems
            .push("store name is empty; name the store folder, for example \"records\"".to_owned());
        return problems;
    }
    if name == "." || name == ".." {
        problems.push(format!("store name {name:?} is not a folder name"));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_CHARACTERS.contains(c)) {
        problems.push(format!(
            "store name {name:?} contains {c:?}; names cannot hold path separators or any of / \\ : * ? \" < > |"
        ));
    }
    if name.chars().any(char::is_control) {
        problems.push(format!("store name {name:?} contains a control character"));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        problems.push(format!(
            "store name {name:?} is reserved by Windows for a device; choose another name"
        ));
    }
    if name.ends_with(['.', ' ']) || name.starts_with(' ') {
        problems.push(format!(
            "store name {name:?} starts with a space or ends with a dot or space, which Windows drops"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        problems.push(format!(
            "store name is {} bytes long; keep it at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(options: &StoreOptions) -> Vec<String> {
        match options.validate() {
            Ok(()) => Vec::new(),
            Err(Error::InvalidOptions { problems }) => problems,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let o = StoreOptions::new("/data", "store");
        assert!(o.flushes_events_immediately());
        assert_eq!(o.lock_timeout(), Duration::from_secs(5));
        assert_eq!(o.stale_lock_time(), Duration::from_secs(10));
        assert!(problems(&o).is_empty());
        let too_short = o.stale_lock_after(Duration::from_millis(10));
        assert_eq!(problems(&too_short).len(), 1);
        assert!(problems(&too_short)[0].contains("stale_lock_after"));
    }

    #[test]
    fn every_problem_is_listed() {
        let o = StoreOptions::new("rel", "a/b").cross_process_lock_timeout(Duration::ZERO);
        assert_eq!(problems(&o).len(), 3, "{:?}", problems(&o));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "", ".", "..", "a/b", "a\\b", "c:", "CON", "con.txt", "Lpt1", "x.", " x", "a\tb",
        ] {
            assert!(
                !problems(&StoreOptions::new("/data", name)).is_empty(),
                "{name:?}"
            );
        }
        assert!(!problems(&StoreOptions::new("/data", "x".repeat(201))).is_empty());
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "store",
            "quality-records_2026",
            "Ünïcode",
            "console",
            "a.b",
            "com10",
        ] {
            assert!(
                problems(&StoreOptions::new("/data", name)).is_empty(),
                "{name:?}"
            );
        }
    }
}
