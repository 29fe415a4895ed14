//! A simulated in-memory file system for tests: fault injection, crashes and power cuts.
//!
//! [`SimFs`] implements [`Vfs`] the way a real disk under a POSIX file system may behave, and is
//! adversarial within those bounds:
//!
//! - every file (inode) keeps what a power cut cannot take away (`durable`), what reads see now
//!   (`current`), and the writes and truncations made since its last sync;
//! - every directory keeps its current entries and its durable ones; creating, renaming and
//!   removing names change only the current entries until [`Vfs::sync_dir`] on that directory.
//!   Syncing a file never makes its name durable;
//! - [`SimFs::inject`] fails any chosen call; [`SimFs::crash_after`] turns the machine off after a
//!   number of mutating calls (tearing the write it stops at);
//! - [`SimFs::power_cut`] builds a new file system from what the disk may hold after the power
//!   went: only synced state, a mix of synced and unsynced pages, or a torn last write.
//!
//! Everything is deterministic: the same seed and the same sequence of calls give the same
//! failures, tears and images.
//!
//! Paths must be absolute; they are normalised by components (`.` is skipped, `..` is lexical).
//! The root `/` always exists and is durable. Every name lookup, creation and listing sees the
//! current state; only [`SimFs::power_cut`] and [`SimFs::durable_files`] look at the durable one.
//!
//! A call that fails on its arguments (missing path, wrong kind of entry, read-only handle) is
//! checked first: it is not counted by [`SimFs::mutations`], does not consume an injected fault
//! and fails the same way after a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{DirEntry, Meta, OpenMode, Vfs, VfsFile, VfsLock};

/// The unit [`Cut::KeepPages`] keeps or reverts: the page size of the usual page cache.
const PAGE: usize = 4096;

/// The largest file the simulation holds, so a stray offset fails instead of exhausting memory.
const MAX_FILE: usize = 1 << 30;

/// The root directory's id; it exists in every state.
const ROOT: usize = 0;

/// A kind of call that [`SimFs::inject`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// [`Vfs::open`] in a writable mode ([`OpenMode::ReadWrite`] or [`OpenMode::CreateNew`]),
    /// whether or not it creates the file. Read-only opens never fail by injection.
    Open,
    /// [`VfsFile::write_all_at`].
    Write,
    /// [`VfsFile::sync_data`] and [`VfsFile::sync_all`] alike.
    SyncData,
    /// [`VfsFile::set_len`].
    SetLen,
    /// [`Vfs::rename`].
    Rename,
    /// [`Vfs::sync_dir`].
    SyncDir,
    /// [`Vfs::create_dir_all`].
    CreateDir,
    /// [`Vfs::remove_file`] and [`Vfs::remove_dir_all`] alike.
    Remove,
    /// [`Vfs::lock_file`] and every [`VfsLock::try_with`] alike.
    Lock,
}

/// The error an injected fault produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultError {
    /// An I/O error: raw OS error 5 (`EIO`) on Unix, `io::Error::other("injected EIO")`
    /// elsewhere.
    Eio,
    /// A full disk: raw OS error 28 (`ENOSPC`) on Unix, whose kind is
    /// [`io::ErrorKind::StorageFull`]; a plain `StorageFull` error elsewhere.
    Enospc,
    /// For [`Op::Write`]: the first `n` bytes of the buffer (all of it when shorter) reach the
    /// file, then the call fails as [`FaultError::Eio`] does. For any other op: plain `Eio`.
    ShortWrite(usize),
}

/// How often an injected fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Times {
    /// Only the chosen call fails; the fault is then gone.
    Once,
    /// The chosen call and every later call of the same kind fail, until
    /// [`SimFs::clear_faults`].
    Always,
}

/// A fault to inject: the `skip`-th next call of kind `op` (0 = the very next one) fails with
/// `error`, and with [`Times::Always`] so does every later one of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The kind of call to fail.
    pub(crate) op: Op,
    /// How many calls of that kind succeed first.
    pub(crate) skip: u64,
    /// The error the failing call returns.
    pub(crate) error: FaultError,
    /// Whether only that call fails or every later one too.
    pub(crate) times: Times,
}

impl Fault {
    /// The `skip`-th next call of kind `op` fails with `error`, and no other.
    pub(crate) fn once(op: Op, skip: u64, error: FaultError) -> Fault {
        Fault {
            op,
            skip,
            error,
            times: Times::Once,
        }
    }

    /// The `skip`-th next call of kind `op` and every later one fail with `error`.
    pub(crate) fn always(op: Op, skip: u64, error: FaultError) -> Fault {
        Fault {
            op,
            skip,
            error,
            times: Times::Always,
        }
    }
}

/// What a power cut leaves on the disk; see [`SimFs::power_cut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Only what was synced survives: every file is its durable content, every directory its
    /// durable entries.
    DropUnsynced,
    /// The disk wrote some pages and not others, in any order. Per file, every 4096-byte page
    /// that differs between the durable and the current content (including pages only one of
    /// them has) is kept from the current content or reverted to the durable one, each page
    /// independently; the length is the durable one, the current one, or a page boundary between
    /// them; bytes the chosen version of a page lacks read as zeros. Per directory, either all of
    /// its durable entries or all of its current ones (a journaled file system applies one
    /// directory's changes together).
    KeepPages {
        /// Drives every choice of this cut.
        seed: u64,
    },
    /// Everything reached the disk except the end of the last write: per file, the durable
    /// content with the writes and truncations since the last sync applied again in order, the
    /// last write only up to a random byte (strictly fewer bytes than it had). Directories keep
    /// their current entries.
    TearLastWrite {
        /// Drives every choice of this cut.
        seed: u64,
    },
    /// One of the three others, chosen from the seed.
    Random {
        /// Chooses the cut and drives its choices.
        seed: u64,
    },
}

/// A simulated file system; clones share one state (and one lock table), so a clone is another
/// handle on the same machine, usable from any thread.
#[derive(Clone, Debug)]
pub(crate) struct SimFs {
    state: Arc<Mutex<State>>,
}

/// A file opened on a [`SimFs`]. It refers to the file itself, not to its name: it keeps reading
/// and writing the same file after the name is removed or renamed over.
pub(crate) struct SimFile {
    state: Arc<Mutex<State>>,
    ino: usize,
    writable: bool,
    /// The store's lease (see [`is_lease`]): neither counted nor failed by injection.
    lease: bool,
}

/// The store's lease file and the names it is renamed to when taken over. The simulation
/// leaves them out of everything it counts, fails or keeps: the lease guards against other
/// machines, not against power cuts, and it is never synced, so it is never durable here.
/// Its own failure paths are tested on the real file system (`lock.rs`).
fn is_lease(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(crate::layout::LEASE_FILE))
}

fn path_is_lease(path: &Path) -> bool {
    path.file_name().is_some_and(is_lease)
}

/// A lock file opened by [`Vfs::lock_file`] on a [`SimFs`]. Locks belong to files (not names)
/// and are shared by every clone of the `SimFs`: two `SimLock`s on one file exclude each other,
/// as two processes' locks do.
pub(crate) struct SimLock {
    state: Arc<Mutex<State>>,
    ino: usize,
}

/// The whole machine.
struct State {
    /// The seed this file system was made with; power cuts derive their child's from it.
    seed: u64,
    /// Drives the choices made during calls (torn crash writes, failed syncs).
    rng: Rng,
    /// Every file ever created, by id; never freed, since a handle or a durable entry may still
    /// refer to a file no current name has.
    inodes: Vec<Inode>,
    /// Every directory ever created, by id; `dirs[ROOT]` is `/`. Never freed, as inodes.
    dirs: Vec<Dir>,
    faults: Vec<Armed>,
    mutations: u64,
    /// The mutation number at which the machine turns off.
    crash_at: Option<u64>,
    crashed: bool,
    /// The files whose lock is held.
    held: BTreeSet<usize>,
    /// What [`Vfs::coherent`] answers: true (a local disk) unless a test asks for the paths a
    /// network share takes.
    coherent: bool,
}

/// A fault waiting for its call.
#[derive(Clone, Copy, Debug)]
struct Armed {
    fault: Fault,
    left: u64,
}

/// A directory entry's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(usize),
    Dir(usize),
}

#[derive(Clone, Debug, Default)]
struct Dir {
    current: BTreeMap<OsString, Node>,
    durable: BTreeMap<OsString, Node>,
}

/// A file. Invariant: `durable` with `pending` applied in order is `current`.
#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Pending>,
}

/// A change made since the file's last sync, kept to replay it torn.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

/// The machine was off when a mutating call came; `first` for the call that turned it off.
struct Off {
    first: bool,
}

/// splitmix64: tiny, fast and good enough to spread choices; no dependency needed. Also drives
/// the workloads of the tests that run on this file system.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The modulo bias is negligible for the small ranges used here.
        (self.next() % n as u64) as usize
    }

    fn coin(&mut self) -> bool {
        self.next() >> 63 == 1
    }
}

impl fmt::Debug for State {
    // A summary: the contents would drown any assertion message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("seed", &self.seed)
            .field("inodes", &self.inodes.len())
            .field("dirs", &self.dirs.len())
            .field("faults", &self.faults)
            .field("mutations", &self.mutations)
            .field("crash_at", &self.crash_at)
            .field("crashed", &self.crashed)
            .field("held", &self.held)
            .finish()
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("ino", &self.ino)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock")
            .field("ino", &self.ino)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock leaves a state that is still consistent for
    // the purpose of reporting; other threads go on.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn eio() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(5)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("injected EIO")
    }
}

fn enospc() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(28)
    }
    #[cfg(not(unix))]
    {
        io::Error::new(io::ErrorKind::StorageFull, "injected ENOSPC")
    }
}

fn error(kind: io::ErrorKind) -> io::Error {
    io::Error::from(kind)
}

impl FaultError {
    fn to_io(self) -> io::Error {
        match self {
            FaultError::Eio | FaultError::ShortWrite(_) => eio(),
            FaultError::Enospc => enospc(),
        }
    }
}

/// The normal components of an absolute path.
fn parts(path: &Path) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    let mut rooted = false;
    for component in path.components() {
        match component {
            // A Windows drive prefix: the simulation has a single namespace.
            Component::Prefix(_) => {}
            Component::RootDir => rooted = true,
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name.to_owned()),
        }
    }
    if !rooted {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the simulated file system takes absolute paths only",
        ));
    }
    Ok(out)
}

/// Checks that `len` bytes at `offset` fit in a simulated file; returns the offset.
fn extent(offset: u64, len: usize) -> io::Result<usize> {
    let start = usize::try_from(offset).map_err(|_| error(io::ErrorKind::FileTooLarge))?;
    match start.checked_add(len) {
        Some(end) if end <= MAX_FILE => Ok(start),
        _ => Err(error(io::ErrorKind::FileTooLarge)),
    }
}

fn apply_write(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    // An empty positioned write changes nothing, not even the length (POSIX `pwrite`).
    if bytes.is_empty() {
        return;
    }
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

/// The bytes of `data` in `start..end`, clipped to its length.
fn clipped(data: &[u8], start: usize, end: usize) -> &[u8] {
    data.get(start..end.min(data.len())).unwrap_or_default()
}

impl Inode {
    fn settled(content: Vec<u8>) -> Inode {
        Inode {
            durable: content.clone(),
            current: content,
            pending: Vec::new(),
        }
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        apply_write(&mut self.current, offset, bytes);
        self.pending.push(Pending::Write {
            offset,
            bytes: bytes.to_vec(),
        });
    }

    fn set_len(&mut self, len: usize) {
        self.current.resize(len, 0);
        self.pending.push(Pending::SetLen(len));
    }

    fn sync(&mut self) {
        self.durable.clone_from(&self.current);
        self.pending.clear();
    }

    /// [`Cut::KeepPages`] for this file.
    fn keep_pages(&self, rng: &mut Rng) -> Vec<u8> {
        let (old, new) = (&self.durable, &self.current);
        let longest = old.len().max(new.len());
        let mut out = vec![0u8; longest];
        for start in (0..longest).step_by(PAGE) {
            let end = (start + PAGE).min(longest);
            let (before, after) = (clipped(old, start, end), clipped(new, start, end));
            let page = if before == after || rng.coin() {
                after
            } else {
                before
            };
            out[start..start + page.len()].copy_from_slice(page);
        }
        let (low, high) = (old.len().min(new.len()), old.len().max(new.len()));
        let len = match rng.below(3) {
            0 => old.len(),
            1 => new.len(),
            _ => {
                // The page boundaries strictly between the two lengths.
                let first = low / PAGE + 1;
                let last = high.saturating_sub(1) / PAGE;
                if first <= last {
                    PAGE * (first + rng.below(last - first + 1))
                } else if rng.coin() {
                    low
                } else {
                    high
                }
            }
        };
        out.resize(len, 0);
        out
    }

    /// [`Cut::TearLastWrite`] for this file.
    fn tear_last_write(&self, rng: &mut Rng) -> Vec<u8> {
        let last = self
            .pending
            .iter()
            .rposition(|op| matches!(op, Pending::Write { .. }));
        let mut data = self.durable.clone();
        for (i, op) in self.pending.iter().enumerate() {
            match op {
                Pending::Write { offset, bytes } => {
                    let keep = if Some(i) == last {
                        rng.below(bytes.len())
                    } else {
                        bytes.len()
                    };
                    apply_write(&mut data, *offset, &bytes[..keep]);
                }
                Pending::SetLen(len) => data.resize(*len, 0),
            }
        }
        data
    }
}

impl State {
    fn new(seed: u64) -> State {
        State {
            seed,
            rng: Rng(seed),
            inodes: Vec::new(),
            dirs: vec![Dir::default()],
            faults: Vec::new(),
            mutations: 0,
            crash_at: None,
            crashed: false,
            held: BTreeSet::new(),
            coherent: true,
        }
    }

    /// What `parts` names now.
    fn node(&self, parts: &[OsString]) -> io::Result<Node> {
        let mut node = Node::Dir(ROOT);
        for name in parts {
            let Node::Dir(dir) = node else {
                return Err(error(io::ErrorKind::NotADirectory));
            };
            node = *self.dirs[dir]
                .current
                .get(name)
                .ok_or_else(|| error(io::ErrorKind::NotFound))?;
        }
        Ok(node)
    }

    /// The directory holding the last of `parts`, and that name.
    fn parent(&self, parts: &[OsString]) -> io::Result<(usize, OsString)> {
        let Some((name, up)) = parts.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root directory has no parent",
            ));
        };
        match self.node(up)? {
            Node::Dir(dir) => Ok((dir, name.clone())),
            Node::File(_) => Err(error(io::ErrorKind::NotADirectory)),
        }
    }

    /// The file `parts` names, or where to create it: `Err((dir, name))`.
    fn file_or_slot(&self, parts: &[OsString]) -> io::Result<Result<usize, (usize, OsString)>> {
        match self.node(parts) {
            Ok(Node::File(ino)) => Ok(Ok(ino)),
            Ok(Node::Dir(_)) => Err(error(io::ErrorKind::IsADirectory)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Err(self.parent(parts)?)),
            Err(e) => Err(e),
        }
    }

    fn create_file(&mut self, dir: usize, name: OsString) -> usize {
        self.inodes.push(Inode::default());
        let ino = self.inodes.len() - 1;
        self.dirs[dir].current.insert(name, Node::File(ino));
        ino
    }

    /// Counts a mutating call and tells whether the machine is off.
    fn power(&mut self) -> Result<(), Off> {
        let call = self.mutations;
        self.mutations += 1;
        if self.crashed {
            return Err(Off { first: false });
        }
        if self.crash_at.is_some_and(|at| call >= at) {
            self.crashed = true;
            return Err(Off { first: true });
        }
        Ok(())
    }

    /// Counts a call of kind `op` against the pending faults; the error of the first one due.
    fn fault(&mut self, op: Op) -> Option<FaultError> {
        let mut hit = None;
        // Every fault due on this call fires on it (the first injected gives the error), so each
        // one's "skip-th next call" stays the call it named.
        self.faults.retain_mut(|armed| {
            if armed.fault.op != op {
                return true;
            }
            if armed.left > 0 {
                armed.left -= 1;
                return true;
            }
            hit.get_or_insert(armed.fault.error);
            armed.fault.times == Times::Always
        });
        hit
    }

    /// A mutating call of kind `op` other than a write or a sync: the machine must be on and no
    /// fault due.
    fn gate(&mut self, op: Op) -> io::Result<()> {
        self.power().map_err(|_| eio())?;
        match self.fault(op) {
            Some(e) => Err(e.to_io()),
            None => Ok(()),
        }
    }

    /// Every file path reachable through current (or durable) entries, sorted.
    fn paths(&self, durable: bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        // Durable entries come from different moments and may form cycles; visit each once.
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![(ROOT, PathBuf::from("/"))];
        while let Some((dir, path)) = stack.pop() {
            let dir = &self.dirs[dir];
            let entries = if durable { &dir.durable } else { &dir.current };
            for (name, node) in entries {
                match *node {
                    Node::File(_) => out.push(path.join(name)),
                    Node::Dir(sub) => {
                        if seen.insert(sub) {
                            stack.push((sub, path.join(name)));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// A new machine holding what is reachable through the chosen entries of each directory
    /// (`current[dir]`: its current ones, else its durable ones), each file with `content`, all
    /// of it both current and durable.
    fn image(
        &self,
        seed: u64,
        current: &[bool],
        mut content: impl FnMut(&Inode) -> Vec<u8>,
    ) -> State {
        let mut next = State::new(seed);
        next.coherent = self.coherent;
        let mut dir_ids = BTreeMap::from([(ROOT, ROOT)]);
        // A file reached under two names (a rename half kept) stays one file with two links.
        let mut ino_ids: BTreeMap<usize, usize> = BTreeMap::new();
        let mut stack = vec![(ROOT, ROOT)];
        while let Some((old, new)) = stack.pop() {
            let dir = &self.dirs[old];
            let entries = if current[old] {
                &dir.current
            } else {
                &dir.durable
            };
            let mut kept = BTreeMap::new();
            for (name, node) in entries {
                let node = match *node {
                    Node::File(ino) => {
                        let id = *ino_ids.entry(ino).or_insert_with(|| {
                            next.inodes.push(Inode::settled(content(&self.inodes[ino])));
                            next.inodes.len() - 1
                        });
                        Node::File(id)
                    }
                    Node::Dir(sub) => {
                        // A directory reached twice or in a cycle keeps only its first name.
                        if dir_ids.contains_key(&sub) {
                            continue;
                        }
                        next.dirs.push(Dir::default());
                        let id = next.dirs.len() - 1;
                        dir_ids.insert(sub, id);
                        stack.push((sub, id));
                        Node::Dir(id)
                    }
                };
                kept.insert(name.clone(), node);
            }
            kept.retain(|name, _| !is_lease(name));
            next.dirs[new] = Dir {
                current: kept.clone(),
                durable: kept,
            };
        }
        next
    }

    fn power_cut(&self, cut: Cut) -> State {
        let child =
            |salt: u64| Rng(self.seed ^ salt.rotate_left(29) ^ 0x5349_4D46_535F_4355).next();
        match cut {
            Cut::DropUnsynced => self.image(child(0), &vec![false; self.dirs.len()], |inode| {
                inode.durable.clone()
            }),
            Cut::KeepPages { seed } => {
                let mut rng = Rng(seed);
                let current: Vec<bool> = (0..self.dirs.len()).map(|_| rng.coin()).collect();
                self.image(child(seed ^ 1), &current, |inode| {
                    inode.keep_pages(&mut rng)
                })
            }
            Cut::TearLastWrite { seed } => {
                let mut rng = Rng(seed);
                self.image(child(seed ^ 2), &vec![true; self.dirs.len()], |inode| {
                    inode.tear_last_write(&mut rng)
                })
            }
            Cut::Random { seed } => {
                let mut rng = Rng(seed);
                let seed = rng.next();
                self.power_cut(match rng.below(3) {
                    0 => Cut::DropUnsynced,
                    1 => Cut::KeepPages { seed },
                    _ => Cut::TearLastWrite { seed },
                })
            }
        }
    }
}

impl SimFs {
    /// An empty file system (only `/`) whose every random choice derives from `seed`.
    pub(crate) fn new(seed: u64) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Arms a fault; several may be pending at once. A failing call has no effect (except the
    /// prefix of [`FaultError::ShortWrite`], and see [`VfsFile::sync_data`] on [`SimFile`]).
    pub(crate) fn inject(&self, fault: Fault) {
        self.lock().faults.push(Armed {
            fault,
            left: fault.skip,
        });
    }

    /// Whether the engine is told this is a local disk (true, the default) or a file system
    /// whose clients may cache (false: the engine re-opens, re-checks and reads back).
    pub(crate) fn set_coherent(&self, coherent: bool) {
        self.lock().coherent = coherent;
    }

    /// Disarms every pending fault.
    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many mutating calls were made so far: opens that create a file, writes, `set_len`,
    /// `sync_data`/`sync_all`, renames, `sync_dir`, `create_dir_all`, removals and `lock_file`,
    /// whether they succeeded, failed by injection or hit a crash (but not those failing on their
    /// arguments). A test runs its workload once to count them, then picks a crash point.
    pub(crate) fn mutations(&self) -> u64 {
        self.lock().mutations
    }

    /// Turns the machine off after `n` more mutating calls: the next one after those fails with
    /// EIO, and so does every mutating call after it. When that call is a write, a random prefix
    /// of it (0 to `len - 1` bytes) reaches the file first. Reads, listings and metadata keep
    /// working on the current state; [`SimFs::power_cut`] then gives the disk's image.
    pub(crate) fn crash_after(&self, n: u64) {
        let mut state = self.lock();
        state.crash_at = Some(state.mutations.saturating_add(n));
    }

    /// True once a mutating call found the machine off.
    pub(crate) fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// A new, independent file system holding what the disk may hold after a power cut now (see
    /// [`Cut`]), as both its current and its durable state: no faults, not crashed, no locks
    /// held, mutation count 0, and a seed derived from this one's and the cut's. A file whose
    /// name survives in no reachable directory is gone. This file system is left unchanged.
    pub(crate) fn power_cut(&self, cut: Cut) -> SimFs {
        let image = self.lock().power_cut(cut);
        SimFs {
            state: Arc::new(Mutex::new(image)),
        }
    }

    /// The current content of the file at `path`; `None` when there is no file there.
    pub(crate) fn read(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let state = self.lock();
        match state.node(&parts(path.as_ref()).ok()?).ok()? {
            Node::File(ino) => Some(state.inodes[ino].current.clone()),
            Node::Dir(_) => None,
        }
    }

    /// Test set-up: makes `path` a file holding exactly `bytes`, creating missing directories,
    /// with its content and every entry on its way durable, as if written and synced long ago.
    /// An existing file keeps its identity (open handles see the new content). Not counted, never
    /// failed by faults or a crash. Errors when a directory on the way is a file, or `path` is a
    /// directory.
    pub(crate) fn write(&self, path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
        let parts = parts(path.as_ref())?;
        let Some((name, up)) = parts.split_last() else {
            return Err(error(io::ErrorKind::IsADirectory));
        };
        let mut state = self.lock();
        let mut dir = ROOT;
        for part in up {
            let node = match state.dirs[dir].current.get(part) {
                Some(Node::Dir(sub)) => Node::Dir(*sub),
                Some(Node::File(_)) => return Err(error(io::ErrorKind::NotADirectory)),
                None => {
                    state.dirs.push(Dir::default());
                    Node::Dir(state.dirs.len() - 1)
                }
            };
            let entries = &mut state.dirs[dir];
            entries.current.insert(part.clone(), node);
            entries.durable.insert(part.clone(), node);
            if let Node::Dir(sub) = node {
                dir = sub;
            }
        }
        let ino = match state.dirs[dir].current.get(name) {
            Some(Node::File(ino)) => *ino,
            Some(Node::Dir(_)) => return Err(error(io::ErrorKind::IsADirectory)),
            None => state.create_file(dir, name.clone()),
        };
        state.dirs[dir]
            .durable
            .insert(name.clone(), Node::File(ino));
        state.inodes[ino] = Inode::settled(bytes.to_vec());
        Ok(())
    }

    /// Test set-up: removes the name `path` (file or directory) from both the current and the
    /// durable entries of its directory, as if deleted and synced long ago; true when it was in
    /// either. Not counted, never failed by faults or a crash.
    pub(crate) fn remove(&self, path: impl AsRef<Path>) -> bool {
        let Ok(parts) = parts(path.as_ref()) else {
            return false;
        };
        let mut state = self.lock();
        let Ok((dir, name)) = state.parent(&parts) else {
            return false;
        };
        let dir = &mut state.dirs[dir];
        let current = dir.current.remove(&name).is_some();
        let durable = dir.durable.remove(&name).is_some();
        current || durable
    }

    /// Every file reachable now through current entries, sorted.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.lock().paths(false)
    }

    /// Every file reachable through durable entries only (the names [`Cut::DropUnsynced`] would
    /// keep), sorted.
    pub(crate) fn durable_files(&self) -> Vec<PathBuf> {
        self.lock().paths(true)
    }
}

impl Vfs for SimFs {
    /// Opens a file. A writable open ([`Op::Open`]) may fail by injection; one that creates the
    /// file counts as a mutation, fails after a crash, and adds only a current entry.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let parts = parts(path)?;
        let mut state = self.lock();
        let writable = mode != OpenMode::Read;
        if path_is_lease(path) {
            if state.crashed {
                return Err(eio());
            }
            let ino = match state.file_or_slot(&parts)? {
                Ok(_) if mode == OpenMode::CreateNew => {
                    return Err(error(io::ErrorKind::AlreadyExists));
                }
                Ok(ino) => ino,
                Err(_) if !writable || mode == OpenMode::ReadWriteExisting => {
                    return Err(error(io::ErrorKind::NotFound));
                }
                Err((dir, name)) => state.create_file(dir, name),
            };
            return Ok(Arc::new(SimFile {
                state: Arc::clone(&self.state),
                ino,
                writable,
                lease: true,
            }));
        }
        let ino = match state.file_or_slot(&parts) {
            Ok(Ok(_)) if mode == OpenMode::CreateNew => {
                return Err(error(io::ErrorKind::AlreadyExists));
            }
            Ok(Ok(ino)) => {
                if writable {
                    if let Some(e) = state.fault(Op::Open) {
                        return Err(e.to_io());
                    }
                }
                ino
            }
            Ok(Err(_)) if !writable || mode == OpenMode::ReadWriteExisting => {
                return Err(error(io::ErrorKind::NotFound));
            }
            Ok(Err((dir, name))) => {
                state.gate(Op::Open)?;
                state.create_file(dir, name)
            }
            Err(e) => return Err(e),
        };
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            writable,
            lease: false,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let parts = parts(path)?;
        let mut state = self.lock();
        let mut dir = ROOT;
        let mut found = 0;
        for (i, part) in parts.iter().enumerate() {
            match state.dirs[dir].current.get(part) {
                Some(Node::Dir(sub)) => {
                    dir = *sub;
                    found += 1;
                }
                Some(Node::File(_)) if i + 1 == parts.len() => {
                    return Err(error(io::ErrorKind::AlreadyExists));
                }
                Some(Node::File(_)) => return Err(error(io::ErrorKind::NotADirectory)),
                None => break,
            }
        }
        state.gate(Op::CreateDir)?;
        for part in &parts[found..] {
            state.dirs.push(Dir::default());
            let sub = state.dirs.len() - 1;
            state.dirs[dir].current.insert(part.clone(), Node::Dir(sub));
            dir = sub;
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let parts = parts(dir)?;
        let state = self.lock();
        match state.node(&parts)? {
            Node::Dir(dir) => Ok(state.dirs[dir]
                .current
                .iter()
                .map(|(name, node)| DirEntry {
                    name: name.clone(),
                    is_dir: matches!(node, Node::Dir(_)),
                })
                .collect()),
            Node::File(_) => Err(error(io::ErrorKind::NotADirectory)),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let parts = parts(path)?;
        let state = self.lock();
        Ok(match state.node(&parts)? {
            Node::File(ino) => Meta {
                len: state.inodes[ino].current.len() as u64,
                is_dir: false,
            },
            Node::Dir(_) => Meta {
                len: 0,
                is_dir: true,
            },
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let parts = parts(path)?;
        let mut state = self.lock();
        let (dir, name) = state.parent(&parts)?;
        match state.dirs[dir].current.get(&name) {
            None => return Err(error(io::ErrorKind::NotFound)),
            Some(Node::Dir(_)) => return Err(error(io::ErrorKind::IsADirectory)),
            Some(Node::File(_)) => {}
        }
        if is_lease(&name) {
            if state.crashed {
                return Err(eio());
            }
        } else {
            state.gate(Op::Remove)?;
        }
        state.dirs[dir].current.remove(&name);
        Ok(())
    }

    /// Unlinks everything under `path` (each directory of the subtree loses its current
    /// entries) and then `path` itself; durable entries are untouched until synced.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let parts = parts(path)?;
        let mut state = self.lock();
        if parts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the simulated root cannot be removed",
            ));
        }
        let Node::Dir(top) = state.node(&parts)? else {
            return Err(error(io::ErrorKind::NotADirectory));
        };
        let (parent, name) = state.parent(&parts)?;
        state.gate(Op::Remove)?;
        let mut stack = vec![top];
        let mut seen = BTreeSet::from([top]);
        while let Some(dir) = stack.pop() {
            for node in std::mem::take(&mut state.dirs[dir].current).into_values() {
                if let Node::Dir(sub) = node {
                    if seen.insert(sub) {
                        stack.push(sub);
                    }
                }
            }
        }
        state.dirs[parent].current.remove(&name);
        Ok(())
    }

    /// Renames a file or a directory (POSIX rules: a file replaces a file, a directory an empty
    /// directory); only the current entries of both directories change.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_parts, to_parts) = (parts(from)?, parts(to)?);
        let mut state = self.lock();
        let (from_dir, from_name) = state.parent(&from_parts)?;
        let source = *state.dirs[from_dir]
            .current
            .get(&from_name)
            .ok_or_else(|| error(io::ErrorKind::NotFound))?;
        let (to_dir, to_name) = state.parent(&to_parts)?;
        let target = state.dirs[to_dir].current.get(&to_name).copied();
        match (source, target) {
            (Node::File(_), Some(Node::Dir(_))) => return Err(error(io::ErrorKind::IsADirectory)),
            (Node::Dir(_), Some(Node::File(_))) => return Err(error(io::ErrorKind::NotADirectory)),
            (Node::Dir(s), Some(Node::Dir(t))) if s != t && !state.dirs[t].current.is_empty() => {
                return Err(error(io::ErrorKind::DirectoryNotEmpty));
            }
            (Node::Dir(_), _)
                if to_parts.len() > from_parts.len() && to_parts.starts_with(&from_parts) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot move a directory into itself",
                ));
            }
            _ => {}
        }
        if is_lease(&from_name) {
            if state.crashed {
                return Err(eio());
            }
        } else {
            state.gate(Op::Rename)?;
        }
        // Two names of one file (or one name twice): POSIX renames nothing then.
        if target == Some(source) {
            return Ok(());
        }
        state.dirs[from_dir].current.remove(&from_name);
        state.dirs[to_dir].current.insert(to_name, source);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let parts = parts(dir)?;
        let mut state = self.lock();
        let Node::Dir(dir) = state.node(&parts)? else {
            return Err(error(io::ErrorKind::NotADirectory));
        };
        state.gate(Op::SyncDir)?;
        let entries = &mut state.dirs[dir];
        entries.durable.clone_from(&entries.current);
        entries.durable.retain(|name, _| !is_lease(name));
        Ok(())
    }

    /// Opens or creates the file as [`OpenMode::ReadWrite`] does; always a mutation and an
    /// [`Op::Lock`] call.
    fn lock_file(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        let parts = parts(path)?;
        let mut state = self.lock();
        let slot = state.file_or_slot(&parts)?;
        state.gate(Op::Lock)?;
        let ino = match slot {
            Ok(ino) => ino,
            Err((dir, name)) => state.create_file(dir, name),
        };
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
            ino,
        }))
    }

    /// As set by [`SimFs::set_coherent`]: a local disk unless a test asks for the paths of a
    /// network share, which re-open and re-check files under the lock.
    fn coherent(&self, _dir: &Path) -> bool {
        self.lock().coherent
    }
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            // Not PermissionDenied: the engine would read that as a read-only folder.
            Err(io::Error::other("the simulated file was opened read-only"))
        }
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.power().map_err(|_| eio())?;
        if let Some(e) = state.fault(Op::SyncData) {
            // fsyncgate: after a failed sync the data is in an unknown state. A coin from the
            // seed says whether it reached the disk anyway or is still pending (lost by a power
            // cut unless a later sync succeeds).
            if state.rng.coin() {
                state.inodes[self.ino].sync();
            }
            return Err(e.to_io());
        }
        state.inodes[self.ino].sync();
        Ok(())
    }
}

impl VfsFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let state = lock(&self.state);
        let data = &state.inodes[self.ino].current;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?));
        match range.and_then(|range| data.get(range)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(error(io::ErrorKind::UnexpectedEof)),
        }
    }

    /// Writes at `offset`, zero-filling any gap past the end. A write the crash stops at leaves
    /// a random strict prefix; [`FaultError::ShortWrite`] leaves its prefix.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let start = extent(offset, buf.len())?;
        let mut state = lock(&self.state);
        if self.lease {
            if state.crashed {
                return Err(eio());
            }
            state.inodes[self.ino].write(start, buf);
            return Ok(());
        }
        if let Err(Off { first }) = state.power() {
            if first {
                let keep = state.rng.below(buf.len());
                state.inodes[self.ino].write(start, &buf[..keep]);
            }
            return Err(eio());
        }
        if let Some(e) = state.fault(Op::Write) {
            if let FaultError::ShortWrite(n) = e {
                state.inodes[self.ino].write(start, &buf[..n.min(buf.len())]);
            }
            return Err(e.to_io());
        }
        state.inodes[self.ino].write(start, buf);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.state).inodes[self.ino].current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let len = extent(len, 0)?;
        let mut state = lock(&self.state);
        state.gate(Op::SetLen)?;
        state.inodes[self.ino].set_len(len);
        Ok(())
    }

    /// [`SimFile::set_len`] when `len` is longer than the file; nothing otherwise.
    fn allocate(&self, len: u64) -> io::Result<()> {
        if len <= self.len()? {
            return Ok(());
        }
        self.set_len(len)
    }

    /// Makes the content and length durable. When it fails by injection, the pending changes are
    /// either made durable anyway or left pending (a coin from the seed); a later successful sync
    /// makes everything durable either way.
    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    /// Exactly [`SimFile::sync_data`]: the simulation has no metadata apart from the length.
    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    /// The simulation has no caches: every handle sees the current length already.
    fn refresh(&self) -> io::Result<()> {
        self.check_writable()?;
        if lock(&self.state).crashed {
            return Err(eio());
        }
        Ok(())
    }
}

/// Releases a held lock however the closure ends, panics included.
struct Release<'a> {
    state: &'a Mutex<State>,
    ino: usize,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        lock(self.state).held.remove(&self.ino);
    }
}

impl VfsLock for SimLock {
    /// Fails when an [`Op::Lock`] fault is due; otherwise takes the lock if free, runs `f`
    /// (without the simulation's internal mutex, so `f` may use the file system) and releases it.
    fn try_with(&mut self, f: &mut dyn FnMut()) -> io::Result<bool> {
        {
            let mut state = lock(&self.state);
            if let Some(e) = state.fault(Op::Lock) {
                return Err(e.to_io());
            }
            if !state.held.insert(self.ino) {
                return Ok(false);
            }
        }
        let _release = Release {
            state: &self.state,
            ino: self.ino,
        };
        f();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{exists, read_all};

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    fn is_eio(e: &io::Error) -> bool {
        if cfg!(unix) {
            e.raw_os_error() == Some(5)
        } else {
            e.kind() == io::ErrorKind::Other
        }
    }

    #[test]
    fn it_behaves_as_a_file_system() -> io::Result<()> {
        let fs = SimFs::new(1);
        let _: Arc<dyn Vfs> = Arc::new(fs.clone());
        assert_eq!(
            fs.open(p("/sim/f"), OpenMode::Read).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.open(p("/sim/f"), OpenMode::ReadWrite)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.open(p("sim/f"), OpenMode::ReadWrite).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        fs.create_dir_all(p("/sim/store/events"))?;
        fs.create_dir_all(p("/sim/store"))?;
        let file = fs.open(p("/sim/store/./x/../f"), OpenMode::ReadWrite)?;
        file.write_all_at(b"hello", 3)?;
        assert_eq!(file.len()?, 8);
        let mut buf = [0u8; 5];
        file.read_exact_at(&mut buf, 3)?;
        assert_eq!(&buf, b"hello");
        assert_eq!(
            file.read_exact_at(&mut buf, 6).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            file.read_exact_at(&mut buf, u64::MAX).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        file.set_len(4)?;
        assert_eq!(read_all(&fs, p("/sim/store/f"))?, b"\0\0\0h");
        file.set_len(6)?;
        assert_eq!(fs.read("/sim/store/f").unwrap(), b"\0\0\0h\0\0");
        assert_eq!(
            fs.open(p("/sim/store/f"), OpenMode::CreateNew)
                .unwrap_err()
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs.open(p("/sim/store"), OpenMode::Read).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.list(p("/sim/store/f")).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(
            fs.open(p("/sim/store/f/g"), OpenMode::ReadWrite)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(
            fs.create_dir_all(p("/sim/store/f")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs.create_dir_all(p("/sim/store/f/g")).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        let reader = fs.open(p("/sim/store/f"), OpenMode::Read)?;
        assert!(reader.write_all_at(b"x", 0).is_err());
        assert!(reader.set_len(0).is_err());
        let mut listed = fs.list(p("/sim/store"))?;
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            listed,
            vec![
                DirEntry {
                    name: "events".into(),
                    is_dir: true
                },
                DirEntry {
                    name: "f".into(),
                    is_dir: false
                },
            ]
        );
        assert_eq!(
            fs.metadata(p("/sim/store/f"))?,
            Meta {
                len: 6,
                is_dir: false
            }
        );
        assert_eq!(
            fs.metadata(p("/"))?,
            Meta {
                len: 0,
                is_dir: true
            }
        );
        assert_eq!(
            fs.rename(p("/sim/store/f"), p("/sim/nowhere/g"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.rename(p("/sim/store/nothing"), p("/sim/store/g"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.rename(p("/sim/store/f"), p("/sim/store/events"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::IsADirectory
        );
        fs.write("/sim/store/g", b"old")?;
        fs.rename(p("/sim/store/f"), p("/sim/store/g"))?;
        assert!(!exists(&fs, p("/sim/store/f")));
        assert_eq!(fs.read("/sim/store/g").unwrap(), b"\0\0\0h\0\0");
        // Directories move too, but never into themselves.
        assert_eq!(
            fs.rename(p("/sim/store"), p("/sim/store/events/s"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        fs.rename(p("/sim/store"), p("/sim/moved"))?;
        assert_eq!(fs.files(), vec![PathBuf::from("/sim/moved/g")]);
        assert_eq!(
            fs.remove_file(p("/sim/moved/events")).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.remove_dir_all(p("/sim/moved/g")).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        fs.remove_file(p("/sim/moved/g"))?;
        assert_eq!(
            fs.remove_file(p("/sim/moved/g")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs.remove_dir_all(p("/sim"))?;
        assert!(!exists(&fs, p("/sim")));
        assert!(fs.list(p("/"))?.is_empty());
        assert!(fs.remove_dir_all(p("/")).is_err());
        Ok(())
    }

    #[test]
    fn the_helpers_set_up_durable_state() -> io::Result<()> {
        let fs = SimFs::new(2);
        fs.write("/sim/a/b", b"one")?;
        fs.write("/sim/c", b"two")?;
        assert!(fs.write("/sim/c/d", b"").is_err());
        assert!(fs.write("/sim/a", b"").is_err());
        let expected = vec![PathBuf::from("/sim/a/b"), PathBuf::from("/sim/c")];
        assert_eq!(fs.files(), expected);
        assert_eq!(fs.durable_files(), expected);
        assert_eq!(fs.mutations(), 0);
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert_eq!(cut.read("/sim/a/b").unwrap(), b"one");
        assert!(fs.remove("/sim/c"));
        assert!(!fs.remove("/sim/c"));
        assert!(fs.read("/sim/c").is_none());
        assert!(fs.read("/sim/a").is_none());
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).files(),
            vec![PathBuf::from("/sim/a/b")]
        );
        Ok(())
    }

    #[test]
    fn unsynced_data_is_lost_and_synced_data_kept() -> io::Result<()> {
        let fs = SimFs::new(3);
        fs.write("/sim/f", b"base")?;
        let file = fs.open(p("/sim/f"), OpenMode::ReadWrite)?;
        file.write_all_at(b"-more", 4)?;
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).read("/sim/f").unwrap(),
            b"base"
        );
        file.sync_data()?;
        file.write_all_at(b"!", 9)?;
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).read("/sim/f").unwrap(),
            b"base-more"
        );
        file.set_len(2)?;
        file.sync_all()?;
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).read("/sim/f").unwrap(),
            b"ba"
        );
        // The original keeps going, untouched by the cuts.
        assert_eq!(fs.read("/sim/f").unwrap(), b"ba");
        Ok(())
    }

    #[test]
    fn a_new_name_needs_its_directory_synced() -> io::Result<()> {
        let fs = SimFs::new(4);
        fs.write("/sim/store/keep", b"")?;
        fs.create_dir_all(p("/sim/store/events"))?;
        let file = fs.open(p("/sim/store/events/1.jsonl"), OpenMode::CreateNew)?;
        file.write_all_at(b"line\n", 0)?;
        file.sync_data()?;
        // Syncing the file does not make its name durable, nor the new directory's.
        assert_eq!(fs.durable_files(), vec![PathBuf::from("/sim/store/keep")]);
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert!(cut.read("/sim/store/events/1.jsonl").is_none());
        assert!(!exists(&cut, p("/sim/store/events")));
        fs.sync_dir(p("/sim/store/events"))?;
        assert_eq!(fs.power_cut(Cut::DropUnsynced).files().len(), 1);
        fs.sync_dir(p("/sim/store"))?;
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert_eq!(cut.read("/sim/store/events/1.jsonl").unwrap(), b"line\n");
        assert_eq!(cut.files().len(), 2);
        Ok(())
    }

    #[test]
    fn an_unsynced_rename_or_removal_reverts() -> io::Result<()> {
        let fs = SimFs::new(5);
        fs.write("/sim/index", b"old")?;
        fs.write("/sim/doomed", b"d")?;
        let tmp = fs.open(p("/sim/index.tmp"), OpenMode::CreateNew)?;
        tmp.write_all_at(b"new", 0)?;
        tmp.sync_data()?;
        fs.rename(p("/sim/index.tmp"), p("/sim/index"))?;
        fs.remove_file(p("/sim/doomed"))?;
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert_eq!(cut.read("/sim/index").unwrap(), b"old");
        assert_eq!(cut.read("/sim/doomed").unwrap(), b"d");
        assert!(cut.read("/sim/index.tmp").is_none());
        fs.sync_dir(p("/sim"))?;
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert_eq!(cut.read("/sim/index").unwrap(), b"new");
        assert_eq!(cut.files(), vec![PathBuf::from("/sim/index")]);
        // An unsynced directory removal reverts as well.
        fs.remove_dir_all(p("/sim"))?;
        assert!(fs.files().is_empty());
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).files(),
            vec![PathBuf::from("/sim/index")]
        );
        Ok(())
    }

    #[test]
    fn keep_pages_mixes_only_old_and_new_pages() -> io::Result<()> {
        let page = |byte: u8| vec![byte; PAGE];
        let old: Vec<u8> = [page(b'a'), page(b'b'), page(b'c')].concat();
        let mut lengths = BTreeSet::new();
        let (mut mixed, mut dir_old, mut dir_new) = (false, false, false);
        for seed in 0..200 {
            let fs = SimFs::new(seed);
            fs.write("/sim/seg", &old)?;
            let file = fs.open(p("/sim/seg"), OpenMode::ReadWrite)?;
            // Overwrite the middle of page 0 and page 1, append two and a half pages.
            file.write_all_at(&vec![b'X'; PAGE], PAGE as u64 / 2)?;
            file.write_all_at(&vec![b'Y'; PAGE * 5 / 2], 3 * PAGE as u64)?;
            let new = fs.read("/sim/seg").unwrap();
            fs.open(p("/sim/unsynced"), OpenMode::CreateNew)?;
            let cut = fs.power_cut(Cut::KeepPages { seed });
            let got = cut.read("/sim/seg").unwrap();
            lengths.insert(got.len());
            let mut from = Vec::new();
            for start in (0..got.len()).step_by(PAGE) {
                let end = (start + PAGE).min(got.len());
                let pad = |v: &[u8]| {
                    let mut v = clipped(v, start, end).to_vec();
                    v.resize(end - start, 0);
                    v
                };
                let chunk = &got[start..end];
                let is_new = chunk == pad(&new).as_slice();
                assert!(
                    is_new || chunk == pad(&old).as_slice(),
                    "seed {seed}, page at {start}"
                );
                from.push(is_new && chunk != pad(&old).as_slice());
            }
            // A later page kept while an earlier one was lost.
            if let Some(lost) = from.iter().take(2).position(|kept| !kept) {
                mixed |= from.iter().skip(lost + 1).any(|kept| *kept);
            }
            match cut.read("/sim/unsynced") {
                Some(_) => dir_new = true,
                None => dir_old = true,
            }
        }
        assert!(mixed);
        assert!(dir_old && dir_new);
        let allowed = BTreeSet::from([3 * PAGE, 4 * PAGE, 5 * PAGE, 5 * PAGE + PAGE / 2]);
        assert!(lengths.is_subset(&allowed), "{lengths:?}");
        assert!(lengths.len() >= 3);
        Ok(())
    }

    #[test]
    fn tear_last_write_keeps_only_a_prefix_of_the_last_write() -> io::Result<()> {
        let mut lengths = BTreeSet::new();
        for seed in 0..100 {
            let fs = SimFs::new(seed);
            fs.write("/sim/f", b"hello")?;
            let file = fs.open(p("/sim/f"), OpenMode::ReadWrite)?;
            file.write_all_at(b"abc", 5)?;
            file.write_all_at(b"XXXXXXXX", 8)?;
            let other = fs.open(p("/sim/new"), OpenMode::CreateNew)?;
            other.write_all_at(b"12", 0)?;
            other.set_len(1)?;
            let cut = fs.power_cut(Cut::TearLastWrite { seed });
            let got = cut.read("/sim/f").unwrap();
            assert!(got.starts_with(b"helloabc"), "seed {seed}");
            assert!(got[8..].iter().all(|b| *b == b'X'));
            assert!(got.len() < 16);
            lengths.insert(got.len());
            // Directories keep their current entries; the later set_len still applies.
            assert!(cut.read("/sim/new").unwrap().len() <= 1);
        }
        assert!(lengths.len() > 4);
        Ok(())
    }

    #[test]
    fn random_cuts_are_deterministic() -> io::Result<()> {
        let mut images = BTreeSet::new();
        for seed in 0..30 {
            let fs = SimFs::new(9);
            fs.write("/sim/f", b"base")?;
            let file = fs.open(p("/sim/f"), OpenMode::ReadWrite)?;
            file.write_all_at(&vec![7; 3 * PAGE], 2)?;
            fs.inject(Fault::always(Op::Write, 0, FaultError::Eio));
            fs.crash_after(0);
            assert!(file.write_all_at(b"z", 0).is_err());
            let one = fs.power_cut(Cut::Random { seed });
            let two = fs.power_cut(Cut::Random { seed });
            assert_eq!(one.read("/sim/f"), two.read("/sim/f"));
            assert_eq!(one.mutations(), 0);
            assert!(!one.is_crashed());
            // The image is healthy: no faults, not crashed, independent of the original.
            let again = one.open(p("/sim/f"), OpenMode::ReadWrite)?;
            again.write_all_at(b"ok", 0)?;
            assert_ne!(fs.read("/sim/f").unwrap()[..2], *b"ok");
            images.insert(two.read("/sim/f").unwrap());
        }
        assert!(images.len() > 2);
        Ok(())
    }

    /// Performs the `i`-th call of kind `op`; set-up uses the helpers or other kinds.
    fn call(op: Op, fs: &SimFs, file: &dyn VfsFile, i: u64) -> io::Result<()> {
        let dir = "/sim/d";
        match op {
            Op::Open => fs
                .open(&Path::new(dir).join(format!("o{i}")), OpenMode::ReadWrite)
                .map(drop),
            Op::Write => file.write_all_at(b"abcdef", 8 * i),
            Op::SyncData if i % 2 == 0 => file.sync_data(),
            Op::SyncData => file.sync_all(),
            Op::SetLen => file.set_len(100 + i),
            Op::Rename => {
                fs.write(format!("{dir}/r{i}"), b"r")?;
                fs.rename(
                    &Path::new(dir).join(format!("r{i}")),
                    &Path::new(dir).join(format!("s{i}")),
                )
            }
            Op::SyncDir => {
                fs.open(&Path::new(dir).join(format!("n{i}")), OpenMode::CreateNew)?;
                fs.sync_dir(p(dir))
            }
            Op::CreateDir => fs.create_dir_all(&Path::new(dir).join(format!("c{i}/x"))),
            Op::Remove => {
                fs.write(format!("{dir}/x{i}"), b"x")?;
                fs.remove_file(&Path::new(dir).join(format!("x{i}")))
            }
            Op::Lock => fs.lock_file(&Path::new(dir).join("lock")).map(drop),
        }
    }

    /// Whether the `i`-th call of kind `op` took effect, where that can be seen.
    fn took_effect(op: Op, fs: &SimFs, i: u64) -> Option<bool> {
        let has = |name: String| {
            fs.files()
                .contains(&PathBuf::from(format!("/sim/d/{name}")))
        };
        match op {
            Op::Open => Some(has(format!("o{i}"))),
            Op::Write => Some(
                fs.read("/sim/d/file")
                    .is_some_and(|d| d.len() >= 8 * i as usize + 6),
            ),
            Op::SetLen => Some(fs.read("/sim/d/file").unwrap().len() == 100 + i as usize),
            Op::Rename => Some(has(format!("s{i}")) && !has(format!("r{i}"))),
            Op::SyncDir => Some(
                fs.durable_files()
                    .contains(&PathBuf::from(format!("/sim/d/n{i}"))),
            ),
            Op::CreateDir => Some(exists(fs, p(&format!("/sim/d/c{i}")))),
            Op::Remove => Some(!has(format!("x{i}"))),
            Op::SyncData | Op::Lock => None,
        }
    }

    #[test]
    fn each_fault_fails_exactly_the_chosen_calls() -> io::Result<()> {
        let ops = [
            Op::Open,
            Op::Write,
            Op::SyncData,
            Op::SetLen,
            Op::Rename,
            Op::SyncDir,
            Op::CreateDir,
            Op::Remove,
            Op::Lock,
        ];
        for op in ops {
            for error in [FaultError::Eio, FaultError::Enospc] {
                for times in [Times::Once, Times::Always] {
                    let fs = SimFs::new(10);
                    fs.write("/sim/d/file", b"")?;
                    let file = fs.open(p("/sim/d/file"), OpenMode::ReadWrite)?;
                    fs.inject(Fault {
                        op,
                        skip: 1,
                        error,
                        times,
                    });
                    for i in 0..4 {
                        // Only the Write op touches the file's length, so SetLen's check is
                        // made right after its own call.
                        let result = call(op, &fs, file.as_ref(), i);
                        let should_fail = i == 1 || (i > 1 && times == Times::Always);
                        assert_eq!(
                            result.is_err(),
                            should_fail,
                            "{op:?} {error:?} {times:?} {i}"
                        );
                        if let Err(e) = &result {
                            match error {
                                FaultError::Enospc => {
                                    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                                }
                                _ => assert!(is_eio(e), "{e}"),
                            }
                        }
                        if let Some(effect) = took_effect(op, &fs, i) {
                            assert_eq!(effect, !should_fail, "{op:?} {error:?} {times:?} {i}");
                        }
                    }
                    fs.clear_faults();
                    call(op, &fs, file.as_ref(), 9)?;
                }
            }
        }
        Ok(())
    }

    #[test]
    fn several_faults_and_short_writes() -> io::Result<()> {
        let fs = SimFs::new(11);
        fs.write("/f", b"")?;
        let file = fs.open(p("/f"), OpenMode::ReadWrite)?;
        fs.inject(Fault::once(Op::Write, 0, FaultError::ShortWrite(3)));
        fs.inject(Fault::once(Op::Write, 1, FaultError::Enospc));
        fs.inject(Fault::once(Op::SetLen, 0, FaultError::ShortWrite(3)));
        let e = file.write_all_at(b"abcdef", 0).unwrap_err();
        assert!(is_eio(&e));
        assert_eq!(fs.read("/f").unwrap(), b"abc");
        let e = file.write_all_at(b"xyz", 3).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs.read("/f").unwrap(), b"abc");
        assert!(is_eio(&file.set_len(0).unwrap_err()));
        assert_eq!(file.len()?, 3);
        file.write_all_at(b"def", 3)?;
        // The torn prefix is pending data like any other: lost by a cut, kept by a sync.
        assert!(
            fs.power_cut(Cut::DropUnsynced)
                .read("/f")
                .unwrap()
                .is_empty()
        );
        file.sync_data()?;
        assert_eq!(
            fs.power_cut(Cut::DropUnsynced).read("/f").unwrap(),
            b"abcdef"
        );
        // Read-only opens are never failed by an Open fault.
        fs.inject(Fault::always(Op::Open, 0, FaultError::Eio));
        fs.open(p("/f"), OpenMode::Read)?;
        assert!(fs.open(p("/f"), OpenMode::ReadWrite).is_err());
        Ok(())
    }

    #[test]
    fn a_failed_sync_leaves_data_durable_or_pending_and_a_later_sync_works() -> io::Result<()> {
        let (mut durable, mut pending) = (false, false);
        for seed in 0..32 {
            let fs = SimFs::new(seed);
            fs.write("/f", b"")?;
            let file = fs.open(p("/f"), OpenMode::ReadWrite)?;
            file.write_all_at(b"data", 0)?;
            fs.inject(Fault::once(Op::SyncData, 0, FaultError::Eio));
            assert!(file.sync_data().is_err());
            assert_eq!(fs.read("/f").unwrap(), b"data");
            match fs
                .power_cut(Cut::DropUnsynced)
                .read("/f")
                .unwrap()
                .as_slice()
            {
                b"data" => durable = true,
                b"" => pending = true,
                other => panic!("{other:?}"),
            }
            file.write_all_at(b"!", 4)?;
            file.sync_all()?;
            assert_eq!(
                fs.power_cut(Cut::DropUnsynced).read("/f").unwrap(),
                b"data!"
            );
        }
        assert!(durable && pending);
        Ok(())
    }

    fn workload(fs: &SimFs) -> io::Result<()> {
        fs.create_dir_all(p("/sim/store/events"))?;
        let seg = fs.open(
            p("/sim/store/events/00000000000000000001.jsonl"),
            OpenMode::CreateNew,
        )?;
        fs.sync_dir(p("/sim/store/events"))?;
        seg.write_all_at(b"first line\n", 0)?;
        seg.sync_data()?;
        seg.write_all_at(b"second line\n", 11)?;
        seg.sync_data()?;
        fs.rename(
            p("/sim/store/events/00000000000000000001.jsonl"),
            p("/sim/store/events/seg"),
        )?;
        fs.remove_file(p("/sim/store/events/seg"))
    }

    #[test]
    fn crash_after_fails_every_later_mutation_and_tears_the_crashing_write() -> io::Result<()> {
        let counting = SimFs::new(12);
        workload(&counting)?;
        let total = counting.mutations();
        assert_eq!(total, 9);
        // Opens of existing files, reads, lists and metadata are not mutations.
        counting.open(p("/sim/store/x"), OpenMode::ReadWrite)?;
        counting.open(p("/sim/store/x"), OpenMode::ReadWrite)?;
        counting.list(p("/sim"))?;
        assert_eq!(counting.mutations(), total + 1);
        let mut torn = BTreeSet::new();
        for seed in 0..40 {
            for n in 0..total {
                let fs = SimFs::new(seed);
                fs.crash_after(n);
                assert!(workload(&fs).is_err());
                assert!(fs.is_crashed());
                assert_eq!(fs.mutations(), n + 1);
                // The fourth mutation is the first write: it leaves a strict prefix.
                if n == 3 {
                    let got = fs
                        .read("/sim/store/events/00000000000000000001.jsonl")
                        .unwrap();
                    assert!(got.len() < 11 && b"first line\n".starts_with(&got));
                    torn.insert(got.len());
                }
                let before = fs.files();
                assert!(is_eio(&fs.create_dir_all(p("/sim/other")).unwrap_err()));
                assert!(is_eio(
                    &fs.open(p("/new"), OpenMode::ReadWrite).unwrap_err()
                ));
                assert!(is_eio(&fs.lock_file(p("/lock")).unwrap_err()));
                assert_eq!(fs.files(), before);
                if let Some(path) = before.first() {
                    let file = fs.open(path, OpenMode::ReadWrite)?;
                    let len = file.len()?;
                    assert!(is_eio(&file.write_all_at(b"late", 0).unwrap_err()));
                    assert!(is_eio(&file.set_len(0).unwrap_err()));
                    assert!(is_eio(&file.sync_data().unwrap_err()));
                    assert_eq!(file.len()?, len);
                }
                assert!(fs.list(p("/")).is_ok());
            }
        }
        assert!(torn.len() > 3);
        Ok(())
    }

    #[test]
    fn locks_exclude_each_other() -> io::Result<()> {
        let fs = SimFs::new(13);
        fs.create_dir_all(p("/sim"))?;
        let mut one = fs.lock_file(p("/sim/store.lock"))?;
        let mut two = fs.clone().lock_file(p("/sim/store.lock"))?;
        let mut other = fs.lock_file(p("/sim/other.lock"))?;
        let (mut inner, mut free) = (None, None);
        assert!(one.try_with(&mut || {
            inner = Some(two.try_with(&mut || {}).unwrap());
            free = Some(other.try_with(&mut || {}).unwrap());
        })?);
        assert_eq!(inner, Some(false));
        assert_eq!(free, Some(true));
        let mut ran = false;
        assert!(two.try_with(&mut || ran = true)?);
        assert!(ran);
        // The lock is released even when the closure panics.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = one.try_with(&mut || panic!("inside the lock"));
        }));
        assert!(result.is_err());
        assert!(two.try_with(&mut || {})?);
        // A power cut's image has its own, free, lock table.
        let cut = fs.power_cut(Cut::DropUnsynced);
        cut.create_dir_all(p("/sim"))?;
        let mut three = cut.lock_file(p("/sim/store.lock"))?;
        let mut outcome = None;
        assert!(one.try_with(&mut || outcome = Some(three.try_with(&mut || {}).unwrap()))?);
        assert_eq!(outcome, Some(true));
        Ok(())
    }

    #[test]
    fn an_unlinked_file_stays_usable_through_its_handle() -> io::Result<()> {
        let fs = SimFs::new(14);
        fs.write("/sim/a", b"first")?;
        fs.write("/sim/b", b"second")?;
        let a = fs.open(p("/sim/a"), OpenMode::ReadWrite)?;
        let b = fs.open(p("/sim/b"), OpenMode::Read)?;
        fs.remove_file(p("/sim/a"))?;
        fs.rename(p("/sim/c"), p("/sim/b")).unwrap_err();
        fs.write("/sim/c", b"third")?;
        fs.rename(p("/sim/c"), p("/sim/b"))?;
        a.write_all_at(b"!", 5)?;
        a.sync_data()?;
        let mut buf = [0u8; 6];
        a.read_exact_at(&mut buf, 0)?;
        assert_eq!(&buf, b"first!");
        b.read_exact_at(&mut buf, 0)?;
        assert_eq!(&buf, b"second");
        assert_eq!(fs.read("/sim/b").unwrap(), b"third");
        assert!(fs.read("/sim/a").is_none());
        // The removal was never synced: the name and its synced content come back.
        let cut = fs.power_cut(Cut::DropUnsynced);
        assert_eq!(cut.read("/sim/a").unwrap(), b"first!");
        assert_eq!(cut.read("/sim/b").unwrap(), b"second");
        Ok(())
    }

    #[test]
    fn simulated_files_are_bounded() -> io::Result<()> {
        let fs = SimFs::new(15);
        let file = fs.open(p("/f"), OpenMode::ReadWrite)?;
        assert_eq!(
            file.write_all_at(b"x", u64::MAX).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(
            file.set_len(1 << 40).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        file.write_all_at(b"", 1000)?;
        assert_eq!(file.len()?, 0);
        Ok(())
    }
}
