//! [`ProjectionManager`]: the registered projections, their folders and live generations, and
//! the operations on them.

use std::any::TypeId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use opossum_core::{EventStore, Position};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, watch};

use opossum_core::Durability;

use crate::daemon::ProjectionDaemon;
use crate::files;
use crate::generation::{self, Generation, Journal};
use crate::lock::FolderLock;
use crate::rebuild::{Board, Rebuilder};
use crate::report::{self, CatchUpReport, ProjectionFailure, ProjectionStats, ProjectionStatus};
use crate::runner::{Registered, Runner};
use crate::store::ProjectionStore;
use crate::{Error, Projection, ProjectionOptions, update};

/// Registers projections, then opens them: see [`ProjectionManager::builder`].
#[must_use = "call .open() to get the manager"]
pub struct ProjectionManagerBuilder {
    store: Arc<dyn EventStore>,
    root: PathBuf,
    options: ProjectionOptions,
    runners: Vec<Arc<dyn Runner>>,
    error: Option<Error>,
}

impl std::fmt::Debug for ProjectionManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionManagerBuilder")
            .field("root", &self.root)
            .field("options", &self.options)
            .field(
                "projections",
                &self.runners.iter().map(|r| r.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ProjectionManagerBuilder {
    /// Sets the options (default [`ProjectionOptions::new`]).
    pub fn options(mut self, options: ProjectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Registers a projection. Problems (an invalid name or event type, a name registered
    /// twice) are reported by [`open`](Self::open).
    pub fn register<P: Projection>(mut self, projection: P) -> Self {
        if self.error.is_some() {
            return self;
        }
        match Registered::new(projection) {
            Ok(registered) => {
                let name = registered.name().to_owned();
                if let Some(existing) = self
                    .runners
                    .iter()
                    .find(|r| r.name().to_lowercase() == name.to_lowercase())
                {
                    self.error = Some(Error::DuplicateProjection {
                        name,
                        existing: existing.name().to_owned(),
                    });
                } else {
                    self.runners.push(Arc::new(registered));
                }
            }
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Checks the options and the registrations, takes the folder's lock, and tidies each
    /// projection's folder after a crash (see the crate documentation). Nothing is read from
    /// the event store yet: start the daemon, or call
    /// [`catch_up`](ProjectionManager::catch_up).
    ///
    /// # Errors
    /// [`Error::InvalidOptions`], [`Error::InvalidDefinition`], [`Error::DuplicateProjection`],
    /// [`Error::Locked`] when another process maintains this folder, [`Error::Corrupt`] or
    /// [`Error::Io`] for the folder's files.
    pub fn open(self) -> Result<ProjectionManager, Error> {
        self.open_as(Join::Maintain)
    }

    /// Like [`open`](Self::open), but when another process already maintains the folder, opens
    /// it as a [`Role::Follower`] instead of failing: this process reads the projections that
    /// process keeps current (the files on disk are the truth for both), and cannot rebuild
    /// them. A follower's daemon, when started, takes over as maintainer as soon as the other
    /// process lets go of the folder (it exits, crashes or drops its manager), so the
    /// projections stay current as long as one process runs. This is how several processes or
    /// PCs share one store folder and its projections.
    ///
    /// # Errors
    /// As [`open`](Self::open), except [`Error::Locked`].
    pub fn open_or_follow(self) -> Result<ProjectionManager, Error> {
        self.open_as(Join::MaintainOrFollow)
    }

    fn open_as(self, join: Join) -> Result<ProjectionManager, Error> {
        self.options.validate()?;
        if let Some(error) = self.error {
            return Err(error);
        }
        let root = std::path::absolute(&self.root).map_err(|e| Error::InvalidOptions {
            problems: vec![format!(
                "the projections folder {} cannot be made absolute ({e}); give its full path",
                self.root.display()
            )],
        })?;
        files::create_dir_all(&root)?;
        let lock = match FolderLock::acquire(&root) {
            Ok(lock) => Some(lock),
            Err(Error::Locked { .. }) if join == Join::MaintainOrFollow => None,
            Err(e) => return Err(e),
        };
        let following = Arc::new(AtomicBool::new(true));
        let projections = self
            .runners
            .into_iter()
            .map(|runner| {
                let dir = root.join(runner.name());
                Arc::new(Tracked::new(runner, dir, Arc::clone(&following)))
            })
            .collect();
        let (progress, _) = watch::channel(0);
        let inner = Inner {
            store: self.store,
            durability: self.options.get_durability(),
            rebuild_slots: Arc::new(Semaphore::new(self.options.get_max_concurrent_rebuilds())),
            root: root.clone(),
            options: self.options,
            projections,
            progress,
            wake: Notify::new(),
            rebuild_ended: Notify::new(),
            board: Mutex::new(Board::default()),
            lock: Mutex::new(None),
            following,
        };
        match lock {
            Some(lock) => inner.take_over(lock)?,
            None => {
                for tracked in &inner.projections {
                    tracked.refresh()?;
                }
            }
        }
        tracing::info!(
            root = %root.display(),
            projections = inner.projections.len(),
            role = ?inner.role(),
            "opened projections"
        );
        Ok(ProjectionManager {
            inner: Arc::new(inner),
        })
    }
}

/// How [`ProjectionManagerBuilder::open_as`] treats a folder another process maintains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    /// Fail with [`Error::Locked`].
    Maintain,
    /// Follow it.
    MaintainOrFollow,
}

/// What a [`ProjectionManager`] does for its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// This process holds the folder's lock: its daemon applies new events, and it may rebuild.
    Maintainer,
    /// Another process maintains the folder; this one reads what that process writes (see
    /// [`ProjectionManagerBuilder::open_or_follow`]).
    Follower,
}

/// The registered projections of one folder, kept current from one event store.
///
/// Build one with [`ProjectionManager::builder`], registering every projection, then:
///
/// - [`start_daemon`](Self::start_daemon) keeps them current in a background task;
/// - [`store`](Self::store) gives a typed [`ProjectionStore`] to read a projection;
/// - [`rebuilder`](Self::rebuilder) rebuilds projections from the log;
/// - [`catch_up`](Self::catch_up) brings them up to date on demand (what the daemon does on
///   every wake-up), and [`wait_for`](Self::wait_for) waits until one has seen an event.
///
/// Only one process may maintain a folder at a time: the manager holds its lock file until it
/// is dropped. Other processes may follow it, reading the same projections (see
/// [`ProjectionManagerBuilder::open_or_follow`] and [`role`](Self::role)). Clones share
/// everything.
#[derive(Clone)]
pub struct ProjectionManager {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ProjectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionManager")
            .field("root", &self.inner.root)
            .field("projections", &self.projections())
            .finish_non_exhaustive()
    }
}

impl ProjectionManager {
    /// Starts registering projections kept current from `store`, with their files in the
    /// folder `root` (created when missing; a relative path is taken from the current folder),
    /// with the default [`ProjectionOptions`] unless [`options`](ProjectionManagerBuilder::options)
    /// sets others.
    ///
    /// The convention is the `projections` folder inside the event store's folder, such as
    /// `store.path().join("projections")` for an `opossum_fs::FileEventStore`, so that copying
    /// the store folder copies its read models too.
    pub fn builder(
        store: Arc<dyn EventStore>,
        root: impl Into<PathBuf>,
    ) -> ProjectionManagerBuilder {
        ProjectionManagerBuilder {
            store,
            root: root.into(),
            options: ProjectionOptions::new(),
            runners: Vec::new(),
            error: None,
        }
    }

    /// The options the manager was opened with.
    #[must_use]
    pub fn options(&self) -> &ProjectionOptions {
        &self.inner.options
    }

    /// The projections folder.
    #[must_use]
    pub fn root(&self) -> &std::path::Path {
        &self.inner.root
    }

    /// Whether this process maintains the folder or follows another process that does. A
    /// follower becomes the maintainer when its daemon takes over.
    #[must_use]
    pub fn role(&self) -> Role {
        self.inner.role()
    }

    /// The names of the registered projections, in registration order.
    #[must_use]
    pub fn projections(&self) -> Vec<String> {
        self.inner
            .projections
            .iter()
            .map(|t| t.name().to_owned())
            .collect()
    }

    /// The store of projection `P`, to read its instances: `manager.store::<Courses>()` gives a
    /// `ProjectionStore<Course>` when `Courses` is a registered projection whose state is
    /// `Course`. The compiler checks the state type; the name stays on disk.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`] when no projection of type `P` is registered;
    /// [`Error::AmbiguousProjection`] when several are (then use
    /// [`store_by_name`](Self::store_by_name)).
    pub fn store<P: Projection>(&self) -> Result<ProjectionStore<P::State>, Error> {
        let wanted = TypeId::of::<P>();
        let mut found = self
            .inner
            .projections
            .iter()
            .filter(|t| t.runner.projection_type() == wanted);
        match (found.next(), found.next()) {
            (Some(tracked), None) => Ok(ProjectionStore::new(Arc::clone(tracked))),
            (None, _) => Err(Error::UnknownProjection {
                name: std::any::type_name::<P>().to_owned(),
                registered: self.projections(),
            }),
            (Some(first), Some(second)) => {
                let mut names = vec![first.name().to_owned(), second.name().to_owned()];
                names.extend(found.map(|t| t.name().to_owned()));
                Err(Error::AmbiguousProjection {
                    projection: std::any::type_name::<P>(),
                    names,
                })
            }
        }
    }

    /// The store of the projection named `name`, whose state type must be `S`: for tools that
    /// know projections by the name of their folder. Prefer [`store`](Self::store), which the
    /// compiler checks.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`], or [`Error::StateTypeMismatch`] when `S` is not the
    /// projection's state type.
    pub fn store_by_name<S: DeserializeOwned + 'static>(
        &self,
        name: &str,
    ) -> Result<ProjectionStore<S>, Error> {
        let tracked = self.inner.find(name)?;
        let (type_id, actual) = tracked.runner.state_type();
        if type_id != TypeId::of::<S>() {
            return Err(Error::StateTypeMismatch {
                name: name.to_owned(),
                requested: std::any::type_name::<S>(),
                actual,
            });
        }
        Ok(ProjectionStore::new(Arc::clone(tracked)))
    }

    /// The checkpoint of projection `name`: every event up to it is applied. `None` before
    /// anything was applied.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`]; in a follower, [`Error::Corrupt`] or [`Error::Io`] when the
    /// maintainer's files cannot be read.
    pub fn checkpoint(&self, name: &str) -> Result<Option<Position>, Error> {
        let tracked = self.inner.find(name)?;
        tracked.refresh()?;
        Ok(report::position(tracked.checkpoint()))
    }

    /// Every projection's checkpoint, rebuild and failure state. In a follower, the
    /// checkpoints are read from the maintainer's files, and `rebuilding` and `failure` are
    /// those of this process (always false and none).
    #[must_use]
    pub fn status(&self) -> Vec<ProjectionStatus> {
        self.inner
            .projections
            .iter()
            .inspect(|t| {
                if let Err(e) = t.refresh() {
                    tracing::debug!(projection = t.name(), error = %e, "could not read the maintainer's checkpoint");
                }
            })
            .map(|t| ProjectionStatus {
                name: t.name().to_owned(),
                checkpoint: report::position(t.checkpoint()),
                has_checkpoint: t.has_checkpoint(),
                rebuilding: t.is_rebuilding(),
                failure: t.failure(),
            })
            .collect()
    }

    /// Every projection's size: instances, bytes on disk and files. In a follower, as the
    /// maintainer last committed them.
    ///
    /// # Errors
    /// [`Error::Io`] when a projection folder cannot be listed; in a follower, as
    /// [`checkpoint`](Self::checkpoint).
    pub fn stats(&self) -> Result<Vec<ProjectionStats>, Error> {
        self.inner
            .projections
            .iter()
            .map(|tracked| {
                let live = tracked.refresh()?;
                let (instances, live_bytes) = live
                    .as_ref()
                    .map_or((0, 0), |g| (g.table().len(), g.table().live_bytes()));
                let (files, size_on_disk) = files::folder_size(&tracked.dir)?;
                Ok(ProjectionStats {
                    name: tracked.name().to_owned(),
                    instances,
                    size_on_disk,
                    live_bytes,
                    files,
                })
            })
            .collect()
    }

    /// Writes projection `name` as one JSON document to `out`, whatever its state type: see
    /// [`ProjectionStore::export`]. Returns the number of instances written.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`]; [`Error::Io`] when `out` or the projection's file fails.
    pub fn export(&self, name: &str, out: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.inner.find(name)?.export(out)
    }

    /// Brings every projection that is not being rebuilt up to the store's head, in batches of
    /// [`batch_size`](ProjectionOptions::batch_size) events, one batch per projection in turn.
    ///
    /// A projection that fails is left at the event it failed on and reported; the others go on.
    /// This is what the daemon runs whenever it wakes up. A follower applies nothing (the
    /// maintaining process does) and returns an empty report.
    pub async fn catch_up(&self) -> CatchUpReport {
        update::catch_up(&self.inner, None).await
    }

    /// Waits until projection `name` has applied every event up to `position` — for example
    /// the position an append returned, to read one's own writes. Needs the daemon running (or
    /// someone calling [`catch_up`](Self::catch_up)). A follower looks at the maintainer's
    /// checkpoint every 20 ms; the maintainer's daemon is woken by the store when another
    /// process appends (see [`ProjectionDaemon`]), so it applies those events within the
    /// store's change-detection delay rather than its
    /// [polling interval](ProjectionOptions::polling_interval).
    ///
    /// # Errors
    /// [`Error::UnknownProjection`]; [`Error::Failing`] when the projection is stopped at an
    /// event at or before `position`, which it will not get past by itself.
    pub async fn wait_for(&self, name: &str, position: Position) -> Result<(), Error> {
        let tracked = self.inner.find(name)?;
        let mut changes = self.inner.progress.subscribe();
        loop {
            changes.borrow_and_update();
            let following = self.inner.is_following();
            if following {
                tracked.refresh()?;
            }
            if tracked.checkpoint() >= position.get() {
                return Ok(());
            }
            if let Some(failure) = tracked.failure() {
                if let Some(at) = failure.position.filter(|at| *at <= position) {
                    return Err(Error::Failing {
                        name: failure.name,
                        position: at,
                        reason: failure.reason,
                    });
                }
            }
            if following {
                // The maintainer is another process: look at its checkpoint again shortly.
                tokio::select! {
                    _ = changes.changed() => {}
                    () = tokio::time::sleep(FOLLOWER_POLL) => {}
                }
            } else if changes.changed().await.is_err() {
                return Err(Error::Task {
                    what: "projection manager",
                    reason: "the manager was dropped".to_owned(),
                });
            }
        }
    }

    /// The rebuilder of these projections.
    #[must_use]
    pub fn rebuilder(&self) -> Rebuilder {
        Rebuilder::new(Arc::clone(&self.inner))
    }

    /// Starts the daemon that keeps the projections current (see [`ProjectionDaemon`]).
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use = "dropping the daemon stops it"]
    pub fn start_daemon(&self) -> ProjectionDaemon {
        ProjectionDaemon::start(Arc::clone(&self.inner))
    }
}

/// Everything the manager, the daemon and the rebuilder share.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) options: ProjectionOptions,
    /// The projections folder (absolute).
    pub(crate) root: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) projections: Vec<Arc<Tracked>>,
    /// Bumped whenever a checkpoint or a failure changes, for [`ProjectionManager::wait_for`].
    pub(crate) progress: watch::Sender<u64>,
    /// Wakes the daemon: appends in this process, and committed rebuilds.
    pub(crate) wake: Notify,
    /// Wakes callers of `Rebuilder::rebuild` waiting for another rebuild of their projection.
    pub(crate) rebuild_ended: Notify,
    /// Permits for concurrent rebuilds.
    pub(crate) rebuild_slots: Arc<Semaphore>,
    /// What the rebuilder is doing, for its status.
    pub(crate) board: Mutex<Board>,
    /// The folder's lock, once this process maintains it.
    lock: Mutex<Option<FolderLock>>,
    /// True while another process maintains the folder; shared with every [`Tracked`].
    following: Arc<AtomicBool>,
}

impl Inner {
    pub(crate) fn find(&self, name: &str) -> Result<&Arc<Tracked>, Error> {
        self.projections
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| Error::UnknownProjection {
                name: name.to_owned(),
                registered: self
                    .projections
                    .iter()
                    .map(|t| t.name().to_owned())
                    .collect(),
            })
    }

    /// Tells waiters that a checkpoint or a failure changed.
    pub(crate) fn bump(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn lock_board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }

    pub(crate) fn role(&self) -> Role {
        if self.is_following() {
            Role::Follower
        } else {
            Role::Maintainer
        }
    }

    /// True while another process maintains the folder.
    pub(crate) fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// The error for an operation only the maintainer may do.
    pub(crate) fn not_maintainer(&self, action: String) -> Error {
        Error::NotMaintainer {
            action,
            root: self.root.clone(),
        }
    }

    /// A follower tries to become the maintainer: true when it took the folder's lock (the
    /// previous maintainer is gone) and now maintains the folder.
    ///
    /// # Errors
    /// When the lock file or the projection folders cannot be read; the process then stays a
    /// follower and lets go of the lock.
    pub(crate) fn try_take_over(&self) -> Result<bool, Error> {
        if !self.is_following() {
            return Ok(true);
        }
        match FolderLock::acquire(&self.root) {
            Ok(lock) => {
                self.take_over(lock)?;
                tracing::info!(root = %self.root.display(), "the previous maintainer is gone; this process now maintains the projections");
                Ok(true)
            }
            Err(Error::Locked { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// With the folder's lock held: tidies each projection folder after a crash, loads its live
    /// generation and any interrupted rebuild, and makes this process the maintainer. On an
    /// error the lock is released (dropped) and the process stays a follower.
    fn take_over(&self, folder_lock: FolderLock) -> Result<(), Error> {
        for tracked in &self.projections {
            let recovered = generation::recover(&tracked.dir)?;
            let current = match recovered.current {
                Some(number) => Some(Generation::open(&tracked.dir, number, self.durability)?),
                None => None,
            };
            if let Some(journal) = &recovered.journal {
                tracing::info!(
                    projection = tracked.name(),
                    flushed_position = journal.flushed_position,
                    "found an interrupted rebuild; it resumes when the daemon starts"
                );
            }
            tracked.adopt(current, recovered.highest + 1, recovered.journal);
        }
        *lock(&self.lock) = Some(folder_lock);
        self.following.store(false, Ordering::Release);
        self.bump();
        Ok(())
    }
}

/// How often a follower looks at the maintainer's checkpoint while it waits for a position.
const FOLLOWER_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Attempts at opening the live generation a follower finds in `current.json`, which the
/// maintainer may replace and delete in between.
const FOLLOWER_READ_ATTEMPTS: u32 = 5;

/// One registered projection: its runner, its folder and its live generation.
pub(crate) struct Tracked {
    pub(crate) runner: Arc<dyn Runner>,
    pub(crate) dir: PathBuf,
    current: RwLock<Option<Arc<Generation>>>,
    next_generation: AtomicU64,
    /// The journal of a rebuild a crash interrupted, until it is resumed or discarded.
    interrupted: Mutex<Option<Journal>>,
    /// Held while a batch is applied to the live generation, and while a rebuild replaces it.
    pub(crate) writer: tokio::sync::Mutex<()>,
    rebuilding: AtomicBool,
    failure: Mutex<Option<ProjectionFailure>>,
    /// The manager's flag: true while another process maintains the folder.
    following: Arc<AtomicBool>,
    /// Set once this process maintains the projection: its generations are opened for writing,
    /// and a follower's read-only view must no longer replace them.
    adopted: AtomicBool,
}

impl Tracked {
    /// A projection not loaded yet: a follower's [`refresh`](Self::refresh) or the
    /// maintainer's `take_over` loads it.
    fn new(runner: Arc<dyn Runner>, dir: PathBuf, following: Arc<AtomicBool>) -> Tracked {
        Tracked {
            runner,
            dir,
            current: RwLock::new(None),
            next_generation: AtomicU64::new(1),
            interrupted: Mutex::new(None),
            writer: tokio::sync::Mutex::new(()),
            rebuilding: AtomicBool::new(false),
            failure: Mutex::new(None),
            following,
            adopted: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.runner.name()
    }

    /// Installs what the maintainer found when it took over the folder. A follower's view it
    /// replaces is dropped, never deleted (views delete nothing).
    fn adopt(
        &self,
        current: Option<Arc<Generation>>,
        next_generation: u64,
        journal: Option<Journal>,
    ) {
        let mut live = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *live = current;
        // Under the same lock a follower's read installs its views with: none replaces this.
        self.adopted.store(true, Ordering::Release);
        drop(live);
        self.next_generation
            .store(next_generation, Ordering::Relaxed);
        *lock(&self.interrupted) = journal;
    }

    /// In a follower, loads the live generation and its checkpoint as the maintaining process
    /// last wrote them; returns the live generation. In the maintainer, just returns it (this
    /// process writes them).
    pub(crate) fn refresh(&self) -> Result<Option<Arc<Generation>>, Error> {
        self.load_live()
    }

    /// [`refresh`](Self::refresh): in a follower, reads `current.json` and the commits appended
    /// to the live generation since the last look.
    fn load_live(&self) -> Result<Option<Arc<Generation>>, Error> {
        self.load_live_attempt(1)
    }

    fn load_live_attempt(&self, attempt: u32) -> Result<Option<Arc<Generation>>, Error> {
        if !self.following.load(Ordering::Acquire) {
            return Ok(self.current());
        }
        let Some(number) = generation::read_current(&self.dir)? else {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            if !self.adopted.load(Ordering::Acquire) {
                *current = None;
            }
            return Ok(current.clone());
        };
        if let Some(current) = self.current().filter(|g| g.number() == number) {
            current.refresh()?;
            return Ok(Some(current));
        }
        let observed = match Generation::observe(&self.dir, number) {
            Ok(observed) => observed,
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && attempt < FOLLOWER_READ_ATTEMPTS =>
            {
                // Replaced and deleted between reading `current.json` and opening the file:
                // read the pointer again.
                return self.load_live_attempt(attempt + 1);
            }
            Err(e) => return Err(e),
        };
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        // Should this process have taken the folder over meanwhile, its start-up installed a
        // generation opened for writing, which a read-only view must not replace.
        if !self.adopted.load(Ordering::Acquire) {
            *current = Some(Arc::clone(&observed));
        }
        Ok(current.clone())
    }

    /// Runs `read` over the live generation (`None`: the projection was never built). A
    /// follower first loads the live generation from disk and the commits appended to it.
    /// The read sees one generation, as of one commit: a generation's file is only ever
    /// appended to, and a replaced one stays readable through the handle this process holds
    /// (on Windows too: files are opened with sharing for deletion), so a swap in the middle
    /// of a read cannot mix two generations.
    pub(crate) fn read_live<T>(
        &self,
        read: impl FnOnce(Option<&Generation>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let live = self.load_live()?;
        read(live.as_deref())
    }

    /// Writes the live generation as one JSON document (see [`ProjectionStore::export`]).
    pub(crate) fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, Error> {
        let io = |e: std::io::Error| Error::io("write the export of", &self.dir, e);
        let live = self.load_live()?;
        let (generation, checkpoint) = live
            .as_ref()
            .map_or((None, None), |g| (Some(g.number()), g.checkpoint()));
        let head = serde_json::json!({
            "projection": self.name(),
            "generation": generation,
            "checkpoint": checkpoint,
        });
        let head = head.to_string();
        // The header object, left open for the instances.
        let open = head.strip_suffix('}').unwrap_or(&head);
        write!(out, "{open},\"instances\":[").map_err(io)?;
        let mut written = 0_u64;
        if let Some(generation) = live {
            let mut after: Option<String> = None;
            loop {
                let (page, last): (Vec<(u64, u32)>, Option<String>) = {
                    let table = generation.table();
                    let picked: Vec<(&String, (u64, u32))> = table
                        .after(after.as_deref())
                        .take(512)
                        .map(|(k, l)| (k, (l.offset, l.len)))
                        .collect();
                    let last = picked.last().map(|(k, _)| (*k).clone());
                    (picked.into_iter().map(|(_, l)| l).collect(), last)
                };
                if page.is_empty() {
                    break;
                }
                after = last;
                for line in generation.read_lines(&page)? {
                    let separator = if written == 0 { "\n" } else { ",\n" };
                    out.write_all(separator.as_bytes()).map_err(io)?;
                    out.write_all(&line).map_err(io)?;
                    written += 1;
                }
            }
        }
        out.write_all(b"\n]}\n").map_err(io)?;
        Ok(written)
    }

    /// The live generation, if there is one.
    pub(crate) fn current(&self) -> Option<Arc<Generation>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The live generation, created (empty, without a checkpoint) when there is none.
    pub(crate) fn live_generation(&self, durability: Durability) -> Result<Arc<Generation>, Error> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let number = self.allocate_generation();
        let generation = Generation::open(&self.dir, number, durability)?;
        generation::write_current(&self.dir, number, durability)?;
        let _ = self.replace_current(Arc::clone(&generation));
        Ok(generation)
    }

    /// Makes `generation` the live one in this process (the caller wrote `current.json`); the
    /// replaced one is deleted once its last reader is done.
    pub(crate) fn replace_current(&self, generation: Arc<Generation>) -> Option<Arc<Generation>> {
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(generation);
        if let Some(old) = &old {
            old.retire();
        }
        old
    }

    pub(crate) fn allocate_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// The live generation's checkpoint (0 when none).
    pub(crate) fn checkpoint(&self) -> u64 {
        self.current().and_then(|g| g.checkpoint()).unwrap_or(0)
    }

    /// True when the live generation has a checkpoint file.
    pub(crate) fn has_checkpoint(&self) -> bool {
        self.current().is_some_and(|g| g.checkpoint().is_some())
    }

    /// Marks the projection as being rebuilt; false when it already was.
    pub(crate) fn begin_rebuild(&self) -> bool {
        !self.rebuilding.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn end_rebuild(&self) {
        self.rebuilding.store(false, Ordering::Release);
    }

    pub(crate) fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::Acquire)
    }

    /// True when a crash interrupted a rebuild that was not resumed yet.
    pub(crate) fn is_interrupted(&self) -> bool {
        lock(&self.interrupted).is_some()
    }

    pub(crate) fn take_interrupted(&self) -> Option<Journal> {
        lock(&self.interrupted).take()
    }

    /// Records a rebuild that stopped before its end, for the next daemon to resume.
    pub(crate) fn set_interrupted(&self, journal: Journal) {
        *lock(&self.interrupted) = Some(journal);
    }

    pub(crate) fn failure(&self) -> Option<ProjectionFailure> {
        lock(&self.failure).clone()
    }

    /// Records a failure; returns true when it differs from the one recorded before (so it is
    /// worth a warning rather than a debug line).
    pub(crate) fn set_failure(&self, failure: ProjectionFailure) -> bool {
        let mut slot = lock(&self.failure);
        let new = slot.as_ref() != Some(&failure);
        *slot = Some(failure);
        new
    }

    pub(crate) fn clear_failure(&self) -> bool {
        lock(&self.failure).take().is_some()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (plain values, replaced
/// whole).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
