//! Store options and their validation.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use opossum_core::{Durability, RequiredMetadata};

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

/// How a store writes and waits. The store's folder is given where it opens:
/// [`FileEventStore::open_with`](crate::FileEventStore::open_with).
///
/// Setters take and return the options (`options.lock_timeout(…)`); each has a getter named
/// `get_…`. Options are checked when the store opens, and every problem is reported at once in
/// [`Error::InvalidOptions`].
///
/// ```
/// use std::time::Duration;
/// use opossum_core::Durability;
/// use opossum_fs::StoreOptions;
///
/// let options = StoreOptions::new()
///     .durability(Durability::Immediate)
///     .lock_timeout(Duration::from_secs(10));
/// assert!(options.validate().is_ok());
/// assert_eq!(options.get_lock_timeout(), Duration::from_secs(10));
/// assert!(StoreOptions::new().lock_timeout(Duration::ZERO).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    durability: Durability,
    lock_timeout: Duration,
    stale_lock_after: Duration,
    /// Start a new segment file once the current one holds this many bytes. Fixed in
    /// production; tests lower it to exercise segment rolls.
    segment_target_bytes: u64,
    change_detection: ChangeDetection,
    change_poll_interval: Duration,
    read_only: bool,
    required_metadata: RequiredMetadata,
}

/// How a subscriber waiting for new events (see
/// [`EventStore::subscribe`](opossum_core::EventStore::subscribe)) learns of appends made by
/// *other* processes. Appends through this process's own handles wake it at once, whatever this
/// says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeDetection {
    /// [`Watch`](Self::Watch) on a local file system, [`Poll`](Self::Poll) on a network share
    /// or a FUSE mount, whose change notifications do not report other machines' writes. The
    /// default.
    #[default]
    Auto,
    /// The operating system's file-change notifications on the store folder (inotify on
    /// Linux, `ReadDirectoryChangesW` on Windows, FSEvents on macOS), with polling every
    /// [`change_poll_interval`](StoreOptions::change_poll_interval) as a safety net. Falls back
    /// to polling when the notifications cannot be set up.
    Watch,
    /// Reading the commit anchor (`head.json`, one small read) every
    /// [`change_poll_interval`](StoreOptions::change_poll_interval).
    Poll,
}

/// The default [`StoreOptions::change_poll_interval`].
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The default segment size: a new segment starts once the current one holds 64 MiB.
pub(crate) const SEGMENT_TARGET_BYTES: u64 = 64 << 20;

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions::new()
    }
}

impl StoreOptions {
    /// The defaults: events are on stable storage before `append` returns
    /// ([`Durability::Immediate`]), appends wait up to 5 s for another process's lock, and a
    /// lease left unchanged for 10 s is taken over.
    #[must_use]
    pub fn new() -> StoreOptions {
        StoreOptions {
            durability: Durability::Immediate,
            lock_timeout: Duration::from_secs(5),
            stale_lock_after: STALE_LOCK_AFTER,
            segment_target_bytes: SEGMENT_TARGET_BYTES,
            change_detection: ChangeDetection::Auto,
            change_poll_interval: CHANGE_POLL_INTERVAL,
            read_only: false,
            required_metadata: RequiredMetadata::none(),
        }
    }

    /// Metadata fields every appended event must carry (for example `user_id` and `reason`):
    /// an append in which any event lacks one fails with
    /// [`MissingMetadata`](opossum_core::Error::MissingMetadata) and writes nothing. Default:
    /// none.
    ///
    /// ```
    /// use opossum_core::RequiredMetadata;
    /// use opossum_fs::StoreOptions;
    ///
    /// let options = StoreOptions::new().require_metadata(RequiredMetadata::new(["user_id", "reason"])?);
    /// assert_eq!(options.get_required_metadata().names(), ["user_id", "reason"]);
    /// # Ok::<(), opossum_core::Error>(())
    /// ```
    #[must_use]
    pub fn require_metadata(mut self, required: RequiredMetadata) -> StoreOptions {
        self.required_metadata = required;
        self
    }

    /// The metadata fields every append must carry.
    #[must_use]
    pub fn get_required_metadata(&self) -> &RequiredMetadata {
        &self.required_metadata
    }

    /// When an append counts as done. Default [`Durability::Immediate`]: `append` returns only
    /// after its events are on stable storage (one `fdatasync` per group of concurrent
    /// appends). With [`Durability::Eventual`], appends are as durable as the operating
    /// system's page cache: a process crash loses nothing, a power loss may lose the latest
    /// appends.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> StoreOptions {
        self.durability = durability;
        self
    }

    /// How long an append waits for the store's lock while another process appends. Default
    /// 5 s; between 1 ms and 1 hour.
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> StoreOptions {
        self.lock_timeout = timeout;
        self
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

    /// How subscribers learn of other processes' appends. Default [`ChangeDetection::Auto`].
    /// [`FileEventStore::change_detection`](crate::FileEventStore::change_detection) says which
    /// mechanism an open store uses.
    #[must_use]
    pub fn change_detection(mut self, detection: ChangeDetection) -> StoreOptions {
        self.change_detection = detection;
        self
    }

    /// How often a waiting subscriber reads the commit anchor for other processes' appends:
    /// the latency of [`ChangeDetection::Poll`], and the safety net of
    /// [`ChangeDetection::Watch`]. Default 100 ms; between 1 ms and 1 hour.
    #[must_use]
    pub fn change_poll_interval(mut self, interval: Duration) -> StoreOptions {
        self.change_poll_interval = interval;
        self
    }

    /// Opens the store for reading only, changing nothing on disk: no folder or file is
    /// created, no lock is taken, a torn tail is left in place (and not read), the index
    /// snapshot is not saved, and appends fail with [`Error::ReadOnly`]. For tools that inspect
    /// a store other processes write, or a copy that must stay as it was (an auditor's). The
    /// store must exist: a folder without one is [`Error::NotAStore`]. Default `false` (a
    /// folder that cannot be written opens read-only anyway).
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> StoreOptions {
        self.read_only = read_only;
        self
    }

    /// See [`StoreOptions::read_only`].
    #[must_use]
    pub fn get_read_only(&self) -> bool {
        self.read_only
    }

    /// See [`StoreOptions::change_detection`].
    #[must_use]
    pub fn get_change_detection(&self) -> ChangeDetection {
        self.change_detection
    }

    /// See [`StoreOptions::change_poll_interval`].
    #[must_use]
    pub fn get_change_poll_interval(&self) -> Duration {
        self.change_poll_interval
    }

    /// See [`StoreOptions::durability`].
    #[must_use]
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// See [`StoreOptions::lock_timeout`].
    #[must_use]
    pub fn get_lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// See [`StoreOptions::stale_lock_after`].
    #[must_use]
    pub fn get_stale_lock_after(&self) -> Duration {
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

    /// True when appends sync before they are acknowledged.
    pub(crate) fn syncs(&self) -> bool {
        self.durability.is_immediate()
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] listing every problem found.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let timeout = self.lock_timeout;
        if timeout < Duration::from_millis(1) || timeout > MAX_LOCK_TIMEOUT {
            problems.push(format!(
                "lock_timeout {timeout:?} is out of range; use between 1 ms and 1 hour"
            ));
        }
        let stale = self.stale_lock_after;
        if stale < MIN_STALE_LOCK_AFTER || stale > MAX_LOCK_TIMEOUT {
            problems.push(format!(
                "stale_lock_after {stale:?} is out of range; use between 200 ms and 1 hour"
            ));
        }
        let poll = self.change_poll_interval;
        if poll < Duration::from_millis(1) || poll > MAX_LOCK_TIMEOUT {
            problems.push(format!(
                "change_poll_interval {poll:?} is out of range; use between 1 ms and 1 hour"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

/// What [`FileEventStore::open`](crate::FileEventStore::open) makes of the path of a store
/// folder, without touching the disk: the path made absolute (a relative one is taken from the
/// current folder), after checking that its last component — the store's name — is a portable
/// folder name. For checking a configured path before opening.
///
/// ```
/// use std::path::Path;
///
/// assert!(opossum_fs::resolve_store_folder(Path::new("/srv/records/quality")).is_ok());
/// assert!(opossum_fs::resolve_store_folder(Path::new("/srv/records/CON")).is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidPath`] listing every problem found.
pub fn resolve_store_folder(path: &Path) -> Result<PathBuf, Error> {
    let invalid = |problems: Vec<String>| Error::InvalidPath {
        path: path.to_path_buf(),
        problems,
    };
    let absolute = std::path::absolute(path).map_err(|e| {
        invalid(vec![format!(
            "it cannot be made absolute ({e}); give the full path of the store folder"
        )])
    })?;
    let name = match absolute.components().next_back() {
        Some(Component::Normal(name)) => name,
        _ => {
            return Err(invalid(vec![
                "it does not end in a folder name; give the path of the store folder itself, such as /srv/records/quality"
                    .to_owned(),
            ]));
        }
    };
    let Some(name) = name.to_str() else {
        return Err(invalid(vec![
            "its last component is not valid Unicode; name the store folder in Unicode".to_owned(),
        ]));
    };
    let problems = name_problems(name);
    if problems.is_empty() {
        Ok(absolute)
    } else {
        Err(invalid(problems))
    }
}

fn name_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.is_empty() {
        problems
            .push("the store folder's name is empty; name it, for example \"records\"".to_owned());
        return problems;
    }
    if name == "." || name == ".." {
        problems.push(format!("store folder name {name:?} is not a folder name"));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_CHARACTERS.contains(c)) {
        problems.push(format!(
            "store folder name {name:?} contains {c:?}; names cannot hold path separators or any of / \\ : * ? \" < > |"
        ));
    }
    if name.chars().any(char::is_control) {
        problems.push(format!(
            "store folder name {name:?} contains a control character"
        ));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        problems.push(format!(
            "store folder name {name:?} is reserved by Windows for a device; choose another name"
        ));
    }
    if name.ends_with(['.', ' ']) || name.starts_with(' ') {
        problems.push(format!(
            "store folder name {name:?} starts with a space or ends with a dot or space, which Windows drops"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        problems.push(format!(
            "store folder name is {} bytes long; keep it at most {MAX_NAME_LEN}",
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

    fn path_problems(path: &str) -> Vec<String> {
        match resolve_store_folder(Path::new(path)) {
            Ok(_) => Vec::new(),
            Err(Error::InvalidPath { problems, .. }) => problems,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let o = StoreOptions::default();
        assert_eq!(o.get_durability(), Durability::Immediate);
        assert_eq!(o.get_lock_timeout(), Duration::from_secs(5));
        assert_eq!(o.get_stale_lock_after(), Duration::from_secs(10));
        assert!(problems(&o).is_empty());
        let too_short = o.stale_lock_after(Duration::from_millis(10));
        assert_eq!(problems(&too_short).len(), 1);
        assert!(problems(&too_short)[0].contains("stale_lock_after"));
    }

    #[test]
    fn every_problem_is_listed() {
        let o = StoreOptions::new()
            .lock_timeout(Duration::ZERO)
            .stale_lock_after(Duration::from_secs(7200));
        assert_eq!(problems(&o).len(), 2, "{:?}", problems(&o));
    }

    #[test]
    fn bad_folder_names_are_refused() {
        for name in [
            "CON", "con.txt", "Lpt1", "x.", " x", "a\tb", "a:b", "a*b", "a?b",
        ] {
            assert!(
                !path_problems(&format!("/data/{name}")).is_empty(),
                "{name:?}"
            );
        }
        assert!(!path_problems(&format!("/data/{}", "x".repeat(201))).is_empty());
        assert!(!path_problems("/").is_empty());
        assert!(!path_problems("/data/..").is_empty());
    }

    #[test]
    fn ordinary_names_are_accepted_and_relative_paths_made_absolute() {
        for name in [
            "store",
            "quality-records_2026",
            "Ünïcode",
            "console",
            "a.b",
            "com10",
        ] {
            assert!(
                path_problems(&format!("/data/{name}")).is_empty(),
                "{name:?}"
            );
        }
        let relative = resolve_store_folder(Path::new("records")).unwrap();
        assert!(relative.is_absolute());
        assert!(relative.ends_with("records"));
        // A trailing separator names the same folder.
        assert!(
            resolve_store_folder(Path::new("/data/store/"))
                .unwrap()
                .ends_with("store")
        );
    }
}
