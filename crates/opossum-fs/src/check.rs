//! A check of what a folder's file system provides, run before a store is put on it.
//!
//! [`check_folder`] probes, from this one machine, each operation the store relies on — creating
//! and syncing files and folders, reading through a second handle what the first one wrote,
//! renaming over an existing file, exclusive create and the operating system's advisory lock —
//! and measures the free space and the kind of file system. Every finding is one [`Probe`] of
//! the returned [`FolderCheck`].
//!
//! The check never touches an existing store: it works only inside a fresh, uniquely named
//! sub-folder (`.opossum-check-<pid>-<nanos>-<n>`), which it removes before returning — also when
//! a probe fails, and (through a drop guard) when it panics. Free space and the file-system kind
//! are read from the folder itself without writing anything.
//!
//! Unlike the engine, which reaches the file system only through the crate's `Vfs` seam, the
//! check calls the operating system directly: what it measures is the real file system, and it
//! needs calls the seam does not offer (hard links, a second lock handle on one file).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf, Prefix};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;

/// The start of every scratch folder's name.
const SCRATCH_PREFIX: &str = ".opossum-check-";

/// How long the lock probe waits for a lock to be released after its handle was closed (Windows
/// may release the locks of a closed handle a moment later).
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Which behaviour a [`Probe`] examined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProbeName {
    /// Create a folder and a file in it, write the file, sync the file (`fsync`) and the folder
    /// (on Windows folder sync is a no-op, and the probe says so).
    CreateAndSync,
    /// A second, freshly opened handle sees the bytes and the length the first handle wrote;
    /// after it appends, a fresh handle and the first handle see the new length and bytes.
    ReadAfterWrite,
    /// `rename` over an existing file replaces it (the store saves its index snapshot that way).
    RenameReplace,
    /// Exclusive create (`O_EXCL`, `CREATE_NEW`) succeeds once and fails with `AlreadyExists`
    /// for a second handle.
    ExclusiveCreate,
    /// A hard link to a new name works and one to an existing name fails instead of replacing
    /// it. Optional: the store does not rely on hard links.
    HardLinkNoReplace,
    /// The advisory lock the store uses (`flock` on Unix, `LockFileEx` on Windows, through
    /// `fd-lock`): held through one handle, it blocks a second handle of the same file, and it
    /// is released on unlock and when the holding handle is closed.
    AdvisoryLock,
    /// Free space available to this user (`statvfs` on Unix, `GetDiskFreeSpaceExW` on Windows).
    FreeSpace,
    /// The kind of file system, where the platform tells it. Informational.
    FileSystem,
}

impl ProbeName {
    /// Every probe, in the order [`check_folder`] runs and reports them.
    pub const ALL: &'static [ProbeName] = &[
        ProbeName::CreateAndSync,
        ProbeName::ReadAfterWrite,
        ProbeName::RenameReplace,
        ProbeName::ExclusiveCreate,
        ProbeName::HardLinkNoReplace,
        ProbeName::AdvisoryLock,
        ProbeName::FreeSpace,
        ProbeName::FileSystem,
    ];

    /// A short, stable name for reports and logs (`"create and sync"`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeName::CreateAndSync => "create and sync",
            ProbeName::ReadAfterWrite => "read after write",
            ProbeName::RenameReplace => "rename replace",
            ProbeName::ExclusiveCreate => "exclusive create",
            ProbeName::HardLinkNoReplace => "hard link no-replace",
            ProbeName::AdvisoryLock => "advisory lock",
            ProbeName::FreeSpace => "free space",
            ProbeName::FileSystem => "file system",
        }
    }

    /// True when the store relies on this behaviour, so [`FolderCheck::is_suitable`] needs the
    /// probe to pass. Hard links and the file-system kind are only reported.
    #[must_use]
    pub fn is_required(self) -> bool {
        !matches!(self, ProbeName::HardLinkNoReplace | ProbeName::FileSystem)
    }
}

impl fmt::Display for ProbeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a [`Probe`] ended. The reason is in [`Probe::detail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The file system behaved as the store needs.
    Passed,
    /// The file system did not behave as the store needs, or a call failed.
    Failed,
    /// The file system or platform does not offer the operation, or does not tell.
    Unsupported,
    /// The probe could not run because an earlier step failed (the scratch folder could not be
    /// created).
    NotRun,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Unsupported => "unsupported",
            Outcome::NotRun => "not run",
        })
    }
}

/// One finding of [`check_folder`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// What was examined.
    pub name: ProbeName,
    /// How it ended.
    pub outcome: Outcome,
    /// One sentence: what was done and seen, or why it failed or could not run.
    pub detail: String,
}

impl Probe {
    fn new(name: ProbeName, outcome: Outcome, detail: impl Into<String>) -> Probe {
        Probe {
            name,
            outcome,
            detail: detail.into(),
        }
    }

    /// True when the probe passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let required = if self.name.is_required() {
            ""
        } else {
            " (optional)"
        };
        write!(
            f,
            "{:<11} {}{required}: {}",
            self.outcome, self.name, self.detail
        )
    }
}

/// The kind of file system a folder is on, as far as the platform tells.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileSystemKind {
    /// A local file system, with its name (`"ext2/ext3/ext4"`, `"xfs"`, `"tmpfs"`, …).
    Local(String),
    /// A network file system, with its name (`"nfs"`, `"smb2"`, `"cifs"`) or, on Windows, the
    /// `\\server\share` the folder resolves to.
    Network(String),
    /// A file system served by a user-space program (FUSE): `sshfs`, `bindfs`, cloud-drive
    /// clients, … Its behaviour is that program's, and of whatever lies behind it.
    UserSpace,
    /// The platform does not tell, or reports a kind this check does not know.
    Unknown,
}

impl fmt::Display for FileSystemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSystemKind::Local(name) => write!(f, "local ({name})"),
            FileSystemKind::Network(name) => write!(f, "network ({name})"),
            FileSystemKind::UserSpace => f.write_str("user space (FUSE)"),
            FileSystemKind::Unknown => f.write_str("unknown"),
        }
    }
}

/// What [`check_folder`] found: one [`Probe`] per [`ProbeName`], in [`ProbeName::ALL`] order.
///
/// Its [`Display`](fmt::Display) is a readable report: a verdict, one line per probe, then the
/// [`warnings`](FolderCheck::warnings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderCheck {
    path: PathBuf,
    probes: Vec<Probe>,
    file_system: FileSystemKind,
    available_bytes: Option<u64>,
    cleanup_failure: Option<String>,
}

impl FolderCheck {
    /// The folder that was checked, as given.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every probe, in [`ProbeName::ALL`] order.
    #[must_use]
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// The probe named `name`.
    #[must_use]
    pub fn probe(&self, name: ProbeName) -> Option<&Probe> {
        self.probes.iter().find(|p| p.name == name)
    }

    /// The kind of file system the folder is on.
    #[must_use]
    pub fn file_system(&self) -> &FileSystemKind {
        &self.file_system
    }

    /// The bytes available to this user on the folder's file system, when they could be read.
    #[must_use]
    pub fn available_bytes(&self) -> Option<u64> {
        self.available_bytes
    }

    /// True when every required probe ([`ProbeName::is_required`]) passed.
    ///
    /// On a network or user-space file system this is necessary, not sufficient: see
    /// [`warnings`](FolderCheck::warnings).
    #[must_use]
    pub fn is_suitable(&self) -> bool {
        self.probes
            .iter()
            .filter(|p| p.name.is_required())
            .all(Probe::passed)
    }

    /// Notes an operator should read before putting a store on the folder: what one machine
    /// cannot prove on a network or user-space file system (or one of unknown kind), optional
    /// probes that did not pass, and a scratch folder that could not be removed. Empty for a
    /// local file system on which everything passed.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        const RELIANCE: &str = "A check run from one machine cannot prove that a lock taken on \
            one client excludes the other clients, nor that each client promptly sees what the \
            others wrote (cache coherence). The store relies on exclusive create and on \
            re-reading its files while holding the lock; whether the server and every client's \
            mount provide both is shown only by appending from several machines at once.";
        let mut notes = Vec::new();
        match &self.file_system {
            FileSystemKind::Network(name) => notes.push(format!(
                "{} is on a network file system ({name}). {RELIANCE}",
                self.path.display()
            )),
            FileSystemKind::UserSpace => notes.push(format!(
                "{} is on a user-space (FUSE) file system: it behaves as the program serving it \
                 and whatever lies behind that program, possibly a network. {RELIANCE}",
                self.path.display()
            )),
            FileSystemKind::Unknown => notes.push(format!(
                "The kind of file system of {} could not be determined. If it is a network \
                 share: {RELIANCE}",
                self.path.display()
            )),
            FileSystemKind::Local(_) => {}
        }
        for probe in &self.probes {
            // A probe that did not run is already explained by the one that failed before it.
            let reportable = !matches!(probe.outcome, Outcome::Passed | Outcome::NotRun);
            if reportable && !probe.name.is_required() && probe.name != ProbeName::FileSystem {
                notes.push(format!(
                    "{} {} (optional, the store does not rely on it): {}",
                    probe.name, probe.outcome, probe.detail
                ));
            }
        }
        if let Some(failure) = &self.cleanup_failure {
            notes.push(failure.clone());
        }
        notes
    }
}

impl fmt::Display for FolderCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<&str> = self
            .probes
            .iter()
            .filter(|p| p.name.is_required() && !p.passed())
            .map(|p| p.name.as_str())
            .collect();
        if failed.is_empty() {
            writeln!(f, "folder check of {}: suitable", self.path.display())?;
        } else {
            writeln!(
                f,
                "folder check of {}: NOT suitable ({} did not pass)",
                self.path.display(),
                failed.join(", ")
            )?;
        }
        for probe in &self.probes {
            writeln!(f, "  {probe}")?;
        }
        for warning in self.warnings() {
            writeln!(f, "note: {warning}")?;
        }
        Ok(())
    }
}

/// Probes, from this machine, what the file system of the existing folder `path` provides, and
/// reports each finding (see [`ProbeName`] for the probes).
///
/// The probes run in a fresh, uniquely named sub-folder that is removed afterwards; nothing
/// else in `path` is read or written, so it is safe on a folder that already holds a store,
/// while other processes use it. A folder that cannot be written is a finding, not an error:
/// [`ProbeName::CreateAndSync`] fails and the other write probes do not run.
///
/// # Errors
/// [`Error::NotAFolder`] when `path` does not exist or is not a folder; [`Error::Io`] when its
/// metadata cannot be read.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let folder = tempfile::tempdir()?;
/// let check = opossum_fs::check_folder(folder.path())?;
/// println!("{check}");
/// assert!(check.is_suitable(), "{check}");
/// for warning in check.warnings() {
///     eprintln!("read this before putting a store here: {warning}");
/// }
/// // Nothing is left behind.
/// assert_eq!(std::fs::read_dir(folder.path())?.count(), 0);
/// # Ok(())
/// # }
/// ```
pub fn check_folder(path: &Path) -> Result<FolderCheck, Error> {
    let not_a_folder = |reason| Error::NotAFolder {
        path: path.to_path_buf(),
        reason,
    };
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if meta.is_file() => return Err(not_a_folder("it is a file, not a folder")),
        Ok(_) => return Err(not_a_folder("it is not a folder")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_a_folder("it does not exist"));
        }
        Err(source) => {
            return Err(Error::Io {
                action: "inspect",
                path: path.to_path_buf(),
                source,
            });
        }
    }

    let mut probes = Vec::with_capacity(ProbeName::ALL.len());
    let mut cleanup_failure = None;
    match Scratch::create(path) {
        Ok(scratch) => {
            let dir = scratch.path.clone();
            for (name, probe) in SCRATCH_PROBES {
                probes.push(match probe(&dir) {
                    Ok((outcome, detail)) => Probe::new(name, outcome, detail),
                    Err(detail) => Probe::new(name, Outcome::Failed, detail),
                });
            }
            if let Err(e) = scratch.remove() {
                tracing::warn!(folder = %dir.display(), error = %e, "could not remove the folder check's scratch folder");
                cleanup_failure = Some(format!(
                    "The scratch folder {} could not be removed ({e}); delete it by hand.",
                    dir.display()
                ));
            }
        }
        Err(e) => {
            probes.push(Probe::new(
                ProbeName::CreateAndSync,
                Outcome::Failed,
                format!("could not create a sub-folder: {e}"),
            ));
            for (name, _) in &SCRATCH_PROBES[1..] {
                probes.push(Probe::new(
                    *name,
                    Outcome::NotRun,
                    "needs a scratch sub-folder, which could not be created",
                ));
            }
        }
    }

    let (probe, available_bytes) = free_space(path);
    probes.push(probe);
    let (probe, file_system) = file_system_kind(path);
    probes.push(probe);
    for probe in &probes {
        tracing::debug!(probe = %probe.name, outcome = %probe.outcome, detail = %probe.detail, "folder check probe");
    }

    let check = FolderCheck {
        path: path.to_path_buf(),
        probes,
        file_system,
        available_bytes,
        cleanup_failure,
    };
    tracing::info!(folder = %path.display(), suitable = check.is_suitable(), file_system = %check.file_system, "folder checked");
    Ok(check)
}

/// The uniquely named sub-folder the probes work in; removed when dropped unless
/// [`Scratch::remove`] already removed it.
#[derive(Debug)]
struct Scratch {
    path: PathBuf,
    removed: bool,
}

impl Scratch {
    fn create(parent: &Path) -> io::Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!(
            "{SCRATCH_PREFIX}{}-{nanos}-{n}",
            std::process::id()
        ));
        // `create_dir`, not `create_dir_all`: fails rather than reuse an existing folder.
        fs::create_dir(&path)?;
        Ok(Scratch {
            path,
            removed: false,
        })
    }

    fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        fs::remove_dir_all(&self.path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = fs::remove_dir_all(&self.path) {
                tracing::warn!(folder = %self.path.display(), error = %e, "could not remove the folder check's scratch folder");
            }
        }
    }
}

/// A probe's verdict and detail; `Err` is a failed call, described.
type Finding = Result<(Outcome, String), String>;

/// A probe that runs in the scratch folder.
type Prober = fn(&Path) -> Finding;

/// The probes that write, each run in the scratch folder, in report order. When the scratch
/// folder itself cannot be created, the first one fails and none of them runs.
const SCRATCH_PROBES: [(ProbeName, Prober); 6] = [
    (ProbeName::CreateAndSync, create_and_sync),
    (ProbeName::ReadAfterWrite, read_after_write),
    (ProbeName::RenameReplace, rename_replace),
    (ProbeName::ExclusiveCreate, exclusive_create),
    (ProbeName::HardLinkNoReplace, hard_link),
    (ProbeName::AdvisoryLock, advisory_lock),
];

/// Turns an I/O error into the sentence of a failed probe.
trait Step<T> {
    fn step(self, what: &str, path: &Path) -> Result<T, String>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, what: &str, path: &Path) -> Result<T, String> {
        self.map_err(|e| format!("could not {what} {}: {e}", short(path)))
    }
}

/// A scratch file's name, for details (the folder is named in the report's first line).
fn short(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn passed(detail: impl Into<String>) -> Finding {
    Ok((Outcome::Passed, detail.into()))
}

fn failed(detail: impl Into<String>) -> Finding {
    Ok((Outcome::Failed, detail.into()))
}

/// `len` bytes that differ from those of another `seed` and cross page boundaries unaligned.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

/// Where two byte strings first differ, for a detail.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn read_whole(path: &Path) -> Result<Vec<u8>, String> {
    let mut file = File::open(path).step("open", path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).step("read", path)?;
    Ok(bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .step("create", path)?;
    file.write_all(bytes).step("write", path)?;
    file.sync_all().step("sync", path)
}

/// Syncs a folder's entries; returns how, for the detail.
fn sync_dir(dir: &Path) -> io::Result<&'static str> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
        Ok("synced the folder")
    }
    #[cfg(windows)]
    {
        let _ = dir;
        Ok(
            "did not sync the folder: folder sync is a no-op on Windows (NTFS journals \
            directory changes itself, and the store skips it there too)",
        )
    }
}

fn create_and_sync(dir: &Path) -> Finding {
    let path = dir.join("create.dat");
    let bytes = pattern(8 * 1024 + 123, 1);
    write_synced(&path, &bytes)?;
    let how = sync_dir(dir).step("sync the folder", dir)?;
    passed(format!(
        "created a sub-folder and a file in it, wrote {} bytes, synced the file (fsync) and {how}",
        bytes.len()
    ))
}

fn read_after_write(dir: &Path) -> Finding {
    let path = dir.join("shared.dat");
    let first = pattern(5_000, 2);
    let second = pattern(3_000, 3);
    let mut a = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .step("create", &path)?;
    a.write_all(&first).step("write", &path)?;
    a.sync_data().step("sync", &path)?;

    let mut b = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .step("open a second handle on", &path)?;
    let len = b.metadata().step("read the length of", &path)?.len();
    if len != first.len() as u64 {
        return failed(format!(
            "handle A wrote and synced {} bytes, but a second handle B opened after that sees a \
             length of {len}",
            first.len()
        ));
    }
    let mut seen = Vec::new();
    b.read_to_end(&mut seen).step("read", &path)?;
    if seen != first {
        return failed(format!(
            "a second handle B read {} bytes that differ from those handle A wrote, from byte {}",
            seen.len(),
            first_difference(&seen, &first)
        ));
    }
    b.write_all(&second).step("append to", &path)?;
    b.sync_data().step("sync", &path)?;
    drop(b);

    let expected = [first.as_slice(), second.as_slice()].concat();
    let reopened = read_whole(&path)?;
    if reopened != expected {
        return failed(format!(
            "after handle B appended {} bytes, a fresh handle reads {} bytes (expected {}), \
             differing from byte {}",
            second.len(),
            reopened.len(),
            expected.len(),
            first_difference(&reopened, &expected)
        ));
    }
    let len_a = a.metadata().step("read the length of", &path)?.len();
    if len_a != expected.len() as u64 {
        return failed(format!(
            "after handle B appended, handle A (still open) sees a length of {len_a}, not {}",
            expected.len()
        ));
    }
    passed(format!(
        "a second handle B, opened after handle A wrote and synced {} bytes, saw that length and \
         those bytes; after B appended {} bytes, a fresh handle and A itself saw all {} bytes",
        first.len(),
        second.len(),
        expected.len()
    ))
}

fn rename_replace(dir: &Path) -> Finding {
    let target = dir.join("rename-target.dat");
    let source = dir.join("rename-source.dat");
    let new = pattern(700, 4);
    write_synced(&target, b"the old contents")?;
    write_synced(&source, &new)?;
    fs::rename(&source, &target).step("rename a file over", &target)?;
    if source.exists() {
        return failed("after renaming a file over an existing one, the old name still exists");
    }
    if read_whole(&target)? != new {
        return failed(
            "after renaming a file over an existing one, the target does not hold the renamed file's bytes",
        );
    }
    let how = sync_dir(dir).step("sync the folder", dir)?;
    passed(format!(
        "renamed a file over an existing one: the old name is gone and the target holds the new \
         bytes; {how} (that the replacement is atomic cannot be observed from one process)"
    ))
}

fn exclusive_create(dir: &Path) -> Finding {
    let path = dir.join("exclusive.dat");
    let create = || OpenOptions::new().write(true).create_new(true).open(&path);
    let first = create().step("exclusively create", &path)?;
    let outcome = match create() {
        Ok(_) => failed(
            "a second handle's exclusive create (create_new) of the same name succeeded too: \
             the file system does not honour O_EXCL / CREATE_NEW",
        ),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => passed(
            "exclusive create (create_new) succeeded once; a second handle's exclusive create of \
             the same name failed with AlreadyExists",
        ),
        Err(e) => failed(format!(
            "a second exclusive create of the same name failed, but with \"{e}\" ({:?}) instead \
             of AlreadyExists",
            e.kind()
        )),
    };
    drop(first);
    outcome
}

fn hard_link(dir: &Path) -> Finding {
    let original = dir.join("link-original.dat");
    let taken = dir.join("link-taken.dat");
    let fresh = dir.join("link-fresh.dat");
    write_synced(&original, b"original")?;
    write_synced(&taken, b"taken")?;
    if let Err(e) = fs::hard_link(&original, &fresh) {
        return Ok((
            Outcome::Unsupported,
            format!("could not make a hard link to a new name: {e}"),
        ));
    }
    match fs::hard_link(&original, &taken) {
        Ok(()) => failed("a hard link to an existing name replaced it instead of failing"),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if read_whole(&taken)? == b"taken" {
                passed(
                    "a hard link to a new name worked; one to an existing name failed with \
                     AlreadyExists and left that file as it was",
                )
            } else {
                failed("a hard link to an existing name failed, yet that file's bytes changed")
            }
        }
        Err(e) => failed(format!(
            "a hard link to an existing name failed, but with \"{e}\" ({:?}) instead of \
             AlreadyExists",
            e.kind()
        )),
    }
}

fn advisory_lock(dir: &Path) -> Finding {
    let path = dir.join("check.lock");
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .step("open", &path)
    };
    let mut first = fd_lock::RwLock::new(open()?);
    let mut second = fd_lock::RwLock::new(open()?);

    let held = first.try_write().step("lock", &path)?;
    match second.try_write() {
        Ok(_) => {
            return failed(
                "while one handle held the lock, a second, independently opened handle of the \
                 same file took it too: the lock does not exclude other handles (Linux, for one, \
                 emulates flock on NFS and SMB mounts with byte-range locks owned by the whole \
                 process)",
            );
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => {
            return failed(format!(
                "while one handle held the lock, a second handle's try_write failed with \"{e}\" \
                 instead of WouldBlock"
            ));
        }
    }
    drop(held);
    match second.try_write() {
        Ok(guard) => drop(guard),
        Err(e) => {
            return failed(format!(
                "after the first handle unlocked, a second handle still could not take the lock: \
                 {e}"
            ));
        }
    }

    let held = first.try_write().step("lock again", &path)?;
    // Close the handle while it holds the lock, as a process that dies does, without unlocking:
    // the operating system must release the lock.
    std::mem::forget(held);
    drop(first);
    let closed = Instant::now();
    loop {
        match second.try_write() {
            Ok(guard) => {
                drop(guard);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && closed.elapsed() < RELEASE_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return failed(format!(
                    "after the handle holding the lock was closed, a second handle still could \
                     not take it ({e}, waited {:?})",
                    closed.elapsed()
                ));
            }
        }
    }
    passed(
        "a lock held through one handle blocked a second, independently opened handle of the \
         same file, and was released both on unlock and when the holding handle was closed",
    )
}

fn free_space(path: &Path) -> (Probe, Option<u64>) {
    let name = ProbeName::FreeSpace;
    match fs4::available_space(path) {
        Ok(0) => (
            Probe::new(name, Outcome::Failed, "no space is available to this user"),
            Some(0),
        ),
        Ok(bytes) => (
            Probe::new(
                name,
                Outcome::Passed,
                format!("{} ({bytes} bytes) available to this user", human(bytes)),
            ),
            Some(bytes),
        ),
        Err(e) => (
            Probe::new(
                name,
                Outcome::Failed,
                format!("could not read the free space: {e}"),
            ),
            None,
        ),
    }
}

/// `bytes` in binary units with one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// True when `dir` is on a local file system of this machine, which every process here sees
/// through one coherent cache. The store trusts its open handles only there; anywhere else
/// (network shares, FUSE mounts, kinds it cannot tell) it re-opens and re-checks under the
/// lock.
pub(crate) fn is_local(dir: &Path) -> bool {
    matches!(file_system_kind(dir).1, FileSystemKind::Local(_))
}

/// The file-system probe, asking the platform where this check knows how.
fn file_system_kind(path: &Path) -> (Probe, FileSystemKind) {
    #[cfg(target_os = "linux")]
    {
        linux_file_system_kind(path)
    }
    #[cfg(windows)]
    {
        windows_file_system_kind(path)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = path;
        (
            Probe::new(
                ProbeName::FileSystem,
                Outcome::Unsupported,
                "this check does not ask this platform for the kind of file system",
            ),
            FileSystemKind::Unknown,
        )
    }
}

/// The file-system probe on Linux: `statfs`'s `f_type`.
#[cfg(target_os = "linux")]
fn linux_file_system_kind(path: &Path) -> (Probe, FileSystemKind) {
    let name = ProbeName::FileSystem;
    match rustix::fs::statfs(path) {
        Ok(stat) => {
            // `f_type` is a 32-bit magic number stored in a signed word of the platform's width;
            // the cast keeps those 32 bits.
            let magic = stat.f_type as u32;
            match linux_kind(magic) {
                Some(kind) => {
                    let detail = format!("statfs reports {kind} (magic {magic:#x})");
                    (Probe::new(name, Outcome::Passed, detail), kind)
                }
                None => (
                    Probe::new(
                        name,
                        Outcome::Unsupported,
                        format!("statfs reports magic {magic:#x}, which this check does not know"),
                    ),
                    FileSystemKind::Unknown,
                ),
            }
        }
        Err(e) => (
            Probe::new(
                name,
                Outcome::Failed,
                format!("statfs failed: {}", io::Error::from(e)),
            ),
            FileSystemKind::Unknown,
        ),
    }
}

/// The file-system probe on Windows: the form of the path the folder resolves to.
///
/// A UNC path (`\\server\share`) is a network share, and so is a mapped network drive, which
/// resolves to one. `GetDriveTypeW` would tell more (a network drive that does not resolve to a
/// UNC path, removable media, RAM disks) but is an `unsafe` call, which this crate forbids; a
/// drive letter is therefore reported as unknown. Platform-neutral code (only Windows parses
/// such prefixes out of a path), so that it is compiled everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
fn windows_file_system_kind(path: &Path) -> (Probe, FileSystemKind) {
    let name = ProbeName::FileSystem;
    let found = |share: String, how: &str| {
        let detail = format!("the folder's path {how} the network share {share}");
        (
            Probe::new(name, Outcome::Passed, detail),
            FileSystemKind::Network(share),
        )
    };
    if let Some(share) = windows_share(path) {
        return found(share, "names");
    }
    match fs::canonicalize(path) {
        Ok(resolved) => match windows_share(&resolved) {
            Some(share) => found(share, "resolves to"),
            None => (
                Probe::new(
                    name,
                    Outcome::Unsupported,
                    format!(
                        "the folder resolves to {}, not a network share; this check does not ask \
                         Windows for the drive type",
                        resolved.display()
                    ),
                ),
                FileSystemKind::Unknown,
            ),
        },
        Err(e) => (
            Probe::new(
                name,
                Outcome::Failed,
                format!("could not resolve the folder's path: {e}"),
            ),
            FileSystemKind::Unknown,
        ),
    }
}

/// The kind a Linux `statfs` magic number names, if this check knows it.
#[cfg(target_os = "linux")]
fn linux_kind(magic: u32) -> Option<FileSystemKind> {
    let local = |name: &str| Some(FileSystemKind::Local(name.to_owned()));
    let network = |name: &str| Some(FileSystemKind::Network(name.to_owned()));
    match magic {
        0xEF53 => local("ext2/ext3/ext4"),
        0x5846_5342 => local("xfs"),
        0x9123_683E => local("btrfs"),
        0x0102_1994 => local("tmpfs"),
        0x794C_7630 => local("overlay"),
        0x2FC1_2FC1 => local("zfs"),
        0xF2F5_2010 => local("f2fs"),
        0xCA45_1A4E => local("bcachefs"),
        0x8584_58F6 => local("ramfs"),
        0x4D44 => local("vfat"),
        0x2011_BAB0 => local("exfat"),
        0x7366_746E => local("ntfs3"),
        0x6969 => network("nfs"),
        0xFE53_4D42 => network("smb2"),
        0xFF53_4D42 => network("cifs"),
        0x517B => network("smb"),
        0x0102_1997 => network("9p"),
        0x00C3_6400 => network("ceph"),
        0x5346_414F | 0x6B41_4653 => network("afs"),
        0x6573_5546 => Some(FileSystemKind::UserSpace),
        _ => None,
    }
}

/// The network share a Windows path names by its prefix (`\\server\share`,
/// `\\?\UNC\server\share`), if it does.
#[cfg_attr(not(windows), allow(dead_code))]
fn windows_share(path: &Path) -> Option<String> {
    match path.components().next() {
        Some(Component::Prefix(prefix)) => share_of(prefix.kind()),
        _ => None,
    }
}

/// The network share a Windows path prefix names, if it does.
#[cfg_attr(not(windows), allow(dead_code))]
fn share_of(prefix: Prefix<'_>) -> Option<String> {
    match prefix {
        Prefix::UNC(server, share) | Prefix::VerbatimUNC(server, share) => Some(format!(
            r"\\{}\{}",
            server.to_string_lossy(),
            share.to_string_lossy()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    #[cfg(target_os = "linux")]
    use std::process::Command;

    fn scratch_left(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SCRATCH_PREFIX))
            .collect()
    }

    #[test]
    fn a_temp_folder_passes_every_required_probe() {
        let dir = tempfile::tempdir().unwrap();
        let check = check_folder(dir.path()).unwrap();
        println!("{check}");
        assert!(check.is_suitable(), "{check}");
        let names: Vec<ProbeName> = check.probes().iter().map(|p| p.name).collect();
        assert_eq!(names, ProbeName::ALL);
        for probe in check.probes() {
            if probe.name.is_required() {
                assert_eq!(probe.outcome, Outcome::Passed, "{probe}");
            }
        }
        // Every Linux file system that a temp folder lives on supports hard links and is named.
        #[cfg(target_os = "linux")]
        {
            assert!(check.probes().iter().all(Probe::passed), "{check}");
            assert!(
                matches!(check.file_system(), FileSystemKind::Local(_)),
                "{check}"
            );
            assert!(check.warnings().is_empty(), "{check}");
        }
        assert!(check.available_bytes().is_some_and(|b| b > 0), "{check}");
        assert_eq!(check.path(), dir.path());
        assert!(scratch_left(dir.path()).is_empty());
    }

    #[test]
    fn an_existing_store_is_left_alone_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("events")).unwrap();
        fs::write(dir.path().join("events").join("0000000001.jsonl"), b"{}\n").unwrap();
        fs::write(dir.path().join("store.lock"), b"").unwrap();
        let listing = |dir: &Path| {
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let before = listing(dir.path());
        // The store's lock is held while the check runs: the check uses its own lock file.
        let mut store_lock = fd_lock::RwLock::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.path().join("store.lock"))
                .unwrap(),
        );
        let _held = store_lock.try_write().unwrap();
        let check = check_folder(dir.path()).unwrap();
        assert!(check.is_suitable(), "{check}");
        assert_eq!(listing(dir.path()), before);
        assert_eq!(
            fs::read(dir.path().join("events").join("0000000001.jsonl")).unwrap(),
            b"{}\n"
        );
        assert_eq!(listing(&dir.path().join("events")).len(), 1);
    }

    #[test]
    fn a_missing_path_or_a_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = check_folder(&missing).unwrap_err();
        assert!(
            matches!(&err, Error::NotAFolder { path, reason: "it does not exist" } if *path == missing),
            "{err:?}"
        );
        assert!(err.to_string().contains("existing folder"), "{err}");
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = check_folder(&file).unwrap_err();
        assert!(
            matches!(&err, Error::NotAFolder { path, reason } if *path == file && reason.contains("a file")),
            "{err:?}"
        );
        // Nothing was created next to them.
        assert!(scratch_left(dir.path()).is_empty());
        assert!(!missing.exists());
    }

    #[test]
    fn the_report_names_every_probe_on_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let check = check_folder(dir.path()).unwrap();
        let report = check.to_string();
        assert!(report.starts_with("folder check of "), "{report}");
        assert!(
            report.lines().next().unwrap().ends_with(": suitable"),
            "{report}"
        );
        for name in ProbeName::ALL {
            let lines = report
                .lines()
                .filter(|l| l.contains(&format!(" {name}")))
                .count();
            assert_eq!(lines, 1, "{name} in\n{report}");
        }
        assert_eq!(report.lines().count(), 1 + ProbeName::ALL.len(), "{report}");
    }

    #[test]
    fn the_scratch_folder_is_removed_when_dropped_on_an_error_path() {
        let dir = tempfile::tempdir().unwrap();
        // A step that fails with `?` after the scratch folder was made and filled.
        let failing = |path: &mut Option<PathBuf>| -> Result<(), String> {
            let scratch = Scratch::create(dir.path()).step("create in", dir.path())?;
            *path = Some(scratch.path.clone());
            fs::write(scratch.path.join("f"), b"x").step("write", &scratch.path)?;
            assert!(scratch.path.is_dir());
            Err("a step failed".into())
        };
        let mut path = None;
        assert_eq!(failing(&mut path), Err("a step failed".into()));
        let path = path.unwrap();
        assert!(!path.exists());
        let again = Scratch::create(dir.path()).unwrap();
        assert_ne!(again.path, path, "scratch names are unique");
        again.remove().unwrap();
        assert!(scratch_left(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_folder_fails_create_and_runs_no_other_write_probe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("read-only");
        fs::create_dir(&folder).unwrap();
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).unwrap();
        // Root (and a process with CAP_DAC_OVERRIDE) ignores the permission bits.
        if fs::write(folder.join("probe"), b"x").is_ok() {
            println!("skipped: this process writes to a read-only folder anyway (root)");
            return;
        }
        let check = check_folder(&folder).unwrap();
        assert_read_only(&check);
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    fn assert_read_only(check: &FolderCheck) {
        assert!(!check.is_suitable(), "{check}");
        let create = check.probe(ProbeName::CreateAndSync).unwrap();
        assert_eq!(create.outcome, Outcome::Failed, "{check}");
        for (name, _) in &SCRATCH_PROBES[1..] {
            assert_eq!(
                check.probe(*name).unwrap().outcome,
                Outcome::NotRun,
                "{check}"
            );
        }
        assert!(
            check.probe(ProbeName::FreeSpace).unwrap().passed(),
            "{check}"
        );
        let report = check.to_string();
        assert!(report.contains("NOT suitable"), "{report}");
        assert!(scratch_left(check.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_magic_numbers_name_the_kind() {
        assert_eq!(
            linux_kind(0xEF53),
            Some(FileSystemKind::Local("ext2/ext3/ext4".into()))
        );
        assert_eq!(
            linux_kind(0x0102_1994),
            Some(FileSystemKind::Local("tmpfs".into()))
        );
        assert_eq!(
            linux_kind(0x6969),
            Some(FileSystemKind::Network("nfs".into()))
        );
        assert_eq!(
            linux_kind(0xFE53_4D42),
            Some(FileSystemKind::Network("smb2".into()))
        );
        assert_eq!(
            linux_kind(0xFF53_4D42),
            Some(FileSystemKind::Network("cifs".into()))
        );
        assert_eq!(linux_kind(0x6573_5546), Some(FileSystemKind::UserSpace));
        assert_eq!(linux_kind(0x1234_5678), None);
        // A magic number sign-extended into a 64-bit word keeps its low 32 bits.
        assert_eq!((0xFF53_4D42_u32 as i32 as i64) as u32, 0xFF53_4D42);
    }

    #[test]
    fn unc_prefixes_are_network_shares() {
        let server = OsStr::new("server");
        let share = OsStr::new("share");
        let expected = Some(r"\\server\share".to_owned());
        assert_eq!(share_of(Prefix::UNC(server, share)), expected);
        assert_eq!(share_of(Prefix::VerbatimUNC(server, share)), expected);
        assert_eq!(share_of(Prefix::Disk(b'C')), None);
        assert_eq!(share_of(Prefix::VerbatimDisk(b'C')), None);
        #[cfg(windows)]
        {
            assert_eq!(windows_share(Path::new(r"\\server\share\store")), expected);
            assert_eq!(
                windows_share(Path::new(r"\\?\UNC\server\share\store")),
                expected
            );
            assert_eq!(windows_share(Path::new(r"C:\store")), None);
        }
    }

    #[test]
    fn warnings_explain_what_one_machine_cannot_prove() {
        let check = |file_system| FolderCheck {
            path: PathBuf::from("/mnt/share"),
            probes: Vec::new(),
            file_system,
            available_bytes: None,
            cleanup_failure: None,
        };
        for kind in [
            FileSystemKind::Network("nfs".into()),
            FileSystemKind::UserSpace,
            FileSystemKind::Unknown,
        ] {
            let warnings = check(kind.clone()).warnings();
            assert_eq!(warnings.len(), 1, "{kind}");
            assert!(warnings[0].contains("exclusive create"), "{}", warnings[0]);
            assert!(warnings[0].contains("cache coherence"), "{}", warnings[0]);
        }
        assert!(
            check(FileSystemKind::Local("xfs".into()))
                .warnings()
                .is_empty()
        );
    }

    /// A `bindfs` (FUSE) mount of `src` on `mnt`, unmounted when dropped.
    #[cfg(target_os = "linux")]
    struct Bindfs {
        mnt: PathBuf,
    }

    #[cfg(target_os = "linux")]
    impl Bindfs {
        /// Mounts, or says why it cannot (`None` after printing `skipped: …`; a panic when the
        /// environment variable `CI` is `true`, so CI never passes without running the test).
        fn mount(src: &Path, mnt: &Path, options: &[&str]) -> Option<Bindfs> {
            let skip = |why: String| {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("cannot run the FUSE test in CI: {why}");
                }
                println!("skipped: {why}");
            };
            if !Path::new("/dev/fuse").exists() {
                skip("/dev/fuse does not exist".into());
                return None;
            }
            let status = Command::new("bindfs")
                .args(options)
                .arg(src)
                .arg(mnt)
                .status();
            match status {
                Ok(status) if status.success() => Some(Bindfs {
                    mnt: mnt.to_path_buf(),
                }),
                Ok(status) => {
                    skip(format!("bindfs could not mount ({status})"));
                    None
                }
                Err(e) => {
                    skip(format!(
                        "bindfs is not installed ({e}); apt-get install bindfs"
                    ));
                    None
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Bindfs {
        fn drop(&mut self) {
            let unmounted = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                // Busy: detach it now, the kernel finishes when the last user is gone.
                let _ = Command::new("fusermount3")
                    .args(["-u", "-z"])
                    .arg(&self.mnt)
                    .status();
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fuse_mount_is_user_space() {
        let src = tempfile::tempdir().unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let Some(mount) = Bindfs::mount(src.path(), mnt.path(), &[]) else {
            return;
        };
        let check = check_folder(&mount.mnt).unwrap();
        println!("{check}");
        assert_eq!(check.file_system(), &FileSystemKind::UserSpace, "{check}");
        assert!(check.is_suitable(), "{check}");
        let warnings = check.warnings();
        assert!(
            warnings.iter().any(|w| w.contains("user-space (FUSE)")),
            "{warnings:?}"
        );
        assert!(check.to_string().contains("note: "), "{check}");
        assert!(scratch_left(&mount.mnt).is_empty());
        drop(mount);
        assert!(scratch_left(src.path()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_read_only_fuse_mount_is_not_suitable() {
        let src = tempfile::tempdir().unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let Some(mount) = Bindfs::mount(src.path(), mnt.path(), &["-r"]) else {
            return;
        };
        let check = check_folder(&mount.mnt).unwrap();
        println!("{check}");
        assert_read_only(&check);
        assert_eq!(check.file_system(), &FileSystemKind::UserSpace, "{check}");
    }
}
