//! The builder and the application it wires: store, projections, daemon, mediator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opossum_core::records::{Forgotten, KeyStore, Records};
use opossum_core::{
    Durability, EventStore, Metadata, Position, Query, RequiredMetadata, Upcasters,
};
use opossum_decision::{Clock, SystemClock};
use opossum_fs::{FileEventStore, FileKeyStore};
use opossum_mediator::{Handler, Mediator, MediatorBuilder, Message, MessageList};
use opossum_projections::{
    AutoRebuild, Projection, ProjectionManager, ProjectionManagerBuilder, RebuildReport, Role,
};
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::store::{AppStore, Link};
use crate::{Error, ReadModel};

type RegisterProjection =
    Box<dyn FnOnce(ProjectionManagerBuilder) -> ProjectionManagerBuilder + Send>;
type RegisterHandler =
    Box<dyn FnOnce(&AppContext, MediatorBuilder) -> Result<MediatorBuilder, Error> + Send>;
type Require = Box<dyn FnOnce(MediatorBuilder) -> MediatorBuilder + Send>;

/// The entry point: [`Opossum::builder`] or [`Opossum::from_config`].
#[derive(Debug)]
pub struct Opossum;

impl Opossum {
    /// Starts a builder with the default configuration; set at least
    /// [`store_path`](OpossumBuilder::store_path) and [`store_name`](OpossumBuilder::store_name).
    pub fn builder() -> OpossumBuilder {
        Opossum::from_config(Config::default())
    }

    /// Starts a builder from a [`Config`] read from TOML, the environment or code. The
    /// builder's setters can still change it.
    pub fn from_config(config: Config) -> OpossumBuilder {
        OpossumBuilder {
            config,
            clock: Arc::new(SystemClock),
            projections: Vec::new(),
            handlers: Vec::new(),
            required: Vec::new(),
            mediator_timeout: None,
            event_store: None,
            upcasters: Upcasters::new(),
            required_metadata: RequiredMetadata::none(),
            keys: KeyChoice::None,
        }
    }
}

/// Where the app keeps the subjects' keys for crypto-shredding.
enum KeyChoice {
    None,
    /// `keys/` in the store folder.
    StoreFolder,
    Given(Arc<dyn KeyStore>),
}

/// Collects the configuration, the projections and the handlers, then
/// [`build`](OpossumBuilder::build)s the [`OpossumApp`].
#[must_use = "call .build().await to open the store"]
pub struct OpossumBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    projections: Vec<RegisterProjection>,
    handlers: Vec<RegisterHandler>,
    required: Vec<Require>,
    mediator_timeout: Option<Duration>,
    event_store: Option<Arc<dyn EventStore>>,
    upcasters: Upcasters,
    required_metadata: RequiredMetadata,
    keys: KeyChoice,
}

impl std::fmt::Debug for OpossumBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpossumBuilder")
            .field("config", &self.config)
            .field("projections", &self.projections.len())
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}

impl OpossumBuilder {
    /// Builds on `store` — any [`EventStore`], such as `opossum_postgres::PgEventStore` —
    /// instead of opening the folder store. The [`store_path`](Self::store_path) folder is then
    /// this process's local folder for the read models (`<store_path>/projections`, unless
    /// [`projections_path`](Self::projections_path) says otherwise), rebuilt from the shared log
    /// when missing; the folder store itself is not opened, and
    /// [`AppStore::file_store`](crate::AppStore::file_store) is `None`.
    pub fn event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.event_store = Some(store);
        self
    }

    /// Reads every event through `upcasters` (see [`Upcasters`]): decision models, projections,
    /// read models and subscriptions then see the versions the code reads, while the stored
    /// lines stay as written.
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Metadata fields every append must carry (for example `user_id` and `reason`), enforced
    /// by the folder store ([`StoreOptions::require_metadata`](opossum_fs::StoreOptions::require_metadata)).
    /// For a store given with [`event_store`](Self::event_store), set it in that store's own
    /// options.
    pub fn require_metadata(mut self, required: RequiredMetadata) -> Self {
        self.required_metadata = required;
        self
    }

    /// Seals personal data (see `opossum_core::records`) with keys kept in the store folder's
    /// `keys/` folder, and allows [`AppStore::forget`]. With a store given by
    /// [`event_store`](Self::event_store), the keys would be kept in `keys/` of this process's
    /// [`store_path`](Self::store_path) folder, which other servers do not see: give every
    /// server the same [`key_store`](Self::key_store) instead (the PostgreSQL store is one).
    pub fn shred_personal_data(mut self) -> Self {
        self.keys = KeyChoice::StoreFolder;
        self
    }

    /// Seals personal data with keys from `keys` (for example the `opossum_postgres::PgEventStore`
    /// the app is built on, which keeps them in its schema), and allows [`AppStore::forget`].
    pub fn key_store(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = KeyChoice::Given(keys);
        self
    }

    /// The store folder (created when missing; a relative path is taken from the current
    /// folder). Its last component is the store's name.
    pub fn store_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.store.path = path.into();
        self
    }

    /// When appends and projection files count as written (default
    /// [`Durability::Immediate`]: on stable storage). For one of them only, set
    /// `store.durability` or `projections.durability` with [`configure`](Self::configure).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.store.durability = durability;
        self.config.projections.durability = durability;
        self
    }

    /// How long an append waits for another process's lock (default 5 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.config.store.lock_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The projections folder (default: `projections` inside the store folder).
    pub fn projections_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.projections.path = Some(path.into());
        self
    }

    /// How often the daemon looks for other processes' appends (default 5 s).
    pub fn polling_interval(mut self, interval: Duration) -> Self {
        self.config.projections.polling_interval_ms =
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// What the daemon rebuilds when it starts (default: projections without a checkpoint).
    pub fn auto_rebuild(mut self, mode: AutoRebuild) -> Self {
        self.config.projections.auto_rebuild = mode;
        self
    }

    /// Any other setting: `configure(|c| c.projections.batch_size = 200)`.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// The configuration so far.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock handlers read through [`AppContext::clock`] (default [`SystemClock`]); give a
    /// [`ManualClock`](opossum_decision::ManualClock) in tests of time rules.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Registers a projection; the daemon keeps it current. Names are checked by
    /// [`build`](Self::build).
    pub fn projection<P: Projection>(mut self, projection: P) -> Self {
        self.projections
            .push(Box::new(move |builder| builder.register(projection)));
        self
    }

    /// Registers a ready-made handler for message type `M` (inferred when `H` handles one
    /// message type).
    pub fn handler<M, H>(mut self, handler: H) -> Self
    where
        M: Message,
        H: Handler<M>,
    {
        self.handlers
            .push(Box::new(move |_, mediator| Ok(mediator.handler(handler))));
        self
    }

    /// Registers a handler made by `make` once the store is open, from the [`AppContext`]: the
    /// way to give a handler the store, the clock or a read model through its fields.
    ///
    /// ```no_run
    /// # use opossum::{AppContext, AppStore, Handler, Message, Opossum};
    /// # use std::sync::Arc;
    /// struct CountEvents;
    /// impl Message for CountEvents { type Output = usize; }
    ///
    /// struct CountEventsHandler { store: Arc<AppStore> }
    /// impl Handler<CountEvents> for CountEventsHandler {
    ///     async fn handle(&self, _: CountEvents) -> usize {
    ///         use opossum::{EventStore, Query, ReadOptions};
    ///         self.store.read(&Query::all(), ReadOptions::new()).await.map_or(0, |e| e.len())
    ///     }
    /// }
    ///
    /// let builder = Opossum::builder()
    ///     .handler_with(|app: &AppContext| Ok(CountEventsHandler { store: app.store() }));
    /// # let _ = builder;
    /// ```
    pub fn handler_with<M, H, F>(mut self, make: F) -> Self
    where
        M: Message,
        H: Handler<M>,
        F: FnOnce(&AppContext) -> Result<H, Error> + Send + 'static,
    {
        self.handlers.push(Box::new(move |context, mediator| {
            Ok(mediator.handler::<M, H>(make(context)?))
        }));
        self
    }

    /// Requires a handler for message type `M`: [`build`](Self::build) fails with
    /// [`MediatorError::MissingHandlers`](opossum_mediator::MediatorError::MissingHandlers)
    /// when none was registered (see
    /// [`MediatorBuilder::require`](opossum_mediator::MediatorBuilder::require)).
    pub fn require<M: Message>(mut self) -> Self {
        self.required.push(Box::new(MediatorBuilder::require::<M>));
        self
    }

    /// [`require`](Self::require) for every message type of the tuple `L` (up to 16).
    pub fn require_all<L: MessageList + 'static>(mut self) -> Self {
        self.required
            .push(Box::new(MediatorBuilder::require_all::<L>));
        self
    }

    /// Cancels any mediator send whose handler runs longer than `timeout`.
    pub fn mediator_timeout(mut self, timeout: Duration) -> Self {
        self.mediator_timeout = Some(timeout);
        self
    }

    /// Validates the configuration, opens the store, opens the projections, builds the
    /// mediator with every handler, and starts the projection daemon.
    ///
    /// Call it inside a Tokio runtime (the daemon is a Tokio task).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing every problem of the configuration; [`Error::Store`]
    /// when the store does not open (damaged, read-only, locked); [`Error::Projections`] for
    /// a bad projection definition or unreadable projection files; [`Error::Mediator`] for two
    /// handlers of one message; a handler factory's error.
    ///
    /// Several processes (on one machine, or PCs sharing the folder) may build an app over the
    /// same store at once: the events are shared safely, the first process maintains the
    /// projections, and the others [follow](opossum_projections::Role::Follower) it — they read
    /// the same projections, see their own writes in them once the maintainer has applied them
    /// (the maintainer's daemon wakes on other processes' appends through the store's change
    /// detection, within milliseconds on a local disk), and take over when it stops.
    pub async fn build(self) -> Result<OpossumApp, Error> {
        let started = Instant::now();
        let checked = self.config.validated()?;
        let (folder, store_options) = (
            checked.store_folder,
            checked.store.require_metadata(self.required_metadata),
        );
        let key_folder = folder.clone();
        let (file, shared, head) = match self.event_store {
            Some(store) => {
                let head = store.head().await?;
                (None, store, head)
            }
            None => {
                let (file, head) = tokio::task::spawn_blocking(move || {
                    let file = FileEventStore::open_with(folder, store_options)?;
                    let head = file.read_last_blocking(&Query::all())?.map(|e| e.position);
                    Ok::<_, Error>((file, head))
                })
                .await
                .map_err(Error::task)??;
                let file = Arc::new(file);
                let shared: Arc<dyn EventStore> = file.clone();
                (Some(file), shared, head)
            }
        };
        let keys = match self.keys {
            KeyChoice::None => None,
            KeyChoice::StoreFolder => {
                Some(Arc::new(FileKeyStore::for_store(&key_folder)) as Arc<dyn KeyStore>)
            }
            KeyChoice::Given(keys) => Some(keys),
        };
        let records = if keys.is_some() || !self.upcasters.is_empty() {
            let mut records = Records::new(Arc::clone(&shared)).with_upcasters(self.upcasters);
            if let Some(keys) = keys {
                records = records.with_key_store(keys);
            }
            let records = Arc::new(records);
            // Finish any `forget` a crash interrupted, before anything reads.
            records.recover().await?;
            Some(records)
        } else {
            None
        };
        let shared: Arc<dyn EventStore> = match &records {
            Some(records) => records.clone(),
            None => shared,
        };
        let mut registry =
            ProjectionManager::builder(Arc::clone(&shared), checked.projections_folder.clone())
                .options(checked.projections);
        for register in self.projections {
            registry = register(registry);
        }
        let projections = registry.open_or_follow()?;
        let link = Arc::new(Link::default());
        link.opened_at(head);
        let context = AppContext {
            store: Arc::new(AppStore::new(
                shared,
                file.clone(),
                records,
                Arc::clone(&link),
            )),
            file,
            projections,
            clock: self.clock,
            link,
            read_timeout: self.config.read_your_writes_timeout(),
        };
        let mut mediator = Mediator::builder();
        if let Some(timeout) = self.mediator_timeout {
            mediator = mediator.timeout(timeout);
        }
        for register in self.handlers {
            mediator = register(&context, mediator)?;
        }
        for require in self.required {
            mediator = require(mediator);
        }
        let mediator = mediator.build()?;
        context.link.set_daemon(context.projections.start_daemon());
        tracing::info!(
            read_models = %checked.projections_folder.display(),
            projections = context.projections.projections().len(),
            millis = started.elapsed().as_millis() as u64,
            "opossum app started"
        );
        Ok(OpossumApp { context, mediator })
    }
}

/// What handler factories get (see [`OpossumBuilder::handler_with`]): the opened store, the
/// projections, the clock and read models. [`OpossumApp`] exposes the same. Clones share
/// everything.
#[derive(Clone)]
pub struct AppContext {
    store: Arc<AppStore>,
    file: Option<Arc<FileEventStore>>,
    projections: ProjectionManager,
    clock: Arc<dyn Clock>,
    link: Arc<Link>,
    read_timeout: Duration,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("store", &self.store)
            .field("projections", &self.projections)
            .finish_non_exhaustive()
    }
}

impl AppContext {
    /// The event store: append through it so the daemon wakes and read models see the events.
    #[must_use]
    pub fn store(&self) -> Arc<AppStore> {
        Arc::clone(&self.store)
    }

    /// The clock handlers should read (and stamp events with), so tests can control time.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The projection manager: status, checkpoints, the rebuilder, typed stores.
    #[must_use]
    pub fn projections(&self) -> &ProjectionManager {
        &self.projections
    }

    /// Forgets a data subject and then rebuilds every read model, so that no projection file
    /// in the folder keeps the erased fields: [`AppStore::forget`] appends the
    /// `SubjectForgotten` event and destroys the key, and the rebuild re-derives each
    /// projection from the log, where the fields are now erased, and removes the generations
    /// built before. A rebuild reads the whole log: forgetting is rare, and thorough.
    ///
    /// # Errors
    /// [`AppStore::forget`]'s errors. Projections that fail to rebuild are listed in
    /// [`ForgetReport::rebuilt`] (their older files may still hold the data: rebuild them again).
    pub async fn forget(
        &self,
        subject: &str,
        reason: &str,
        metadata: Metadata,
    ) -> Result<ForgetReport, Error> {
        let forgotten = self.store.forget(subject, reason, metadata).await?;
        let rebuilt = self.projections.rebuilder().rebuild_all().await;
        if !rebuilt.failed.is_empty() {
            tracing::warn!(subject = %subject, failed = rebuilt.failed.len(), "read models that failed to rebuild after a forget may still hold its personal data");
        }
        Ok(ForgetReport { forgotten, rebuilt })
    }

    /// A read-your-writes view of the registered projection `P`: `read_model::<Courses>()` is
    /// a `ReadModel<Course>` when `Courses` keeps `Course` states. The compiler checks the
    /// state type.
    ///
    /// # Errors
    /// [`Error::Projections`] when no projection of type `P` is registered, or several are.
    pub fn read_model<P: Projection>(&self) -> Result<ReadModel<P::State>, Error> {
        Ok(ReadModel::new(
            self.projections.store::<P>()?,
            &self.projections,
            Arc::clone(&self.link),
            self.read_timeout,
        ))
    }

    /// A read-your-writes view of the projection named `name`, whose state type must be `S`:
    /// for tools that know projections by their folder's name. Prefer
    /// [`read_model`](Self::read_model), which the compiler checks.
    ///
    /// # Errors
    /// [`Error::Projections`] for an unknown projection or another state type.
    pub fn read_model_by_name<S: DeserializeOwned + Send + 'static>(
        &self,
        name: &str,
    ) -> Result<ReadModel<S>, Error> {
        Ok(ReadModel::new(
            self.projections.store_by_name::<S>(name)?,
            &self.projections,
            Arc::clone(&self.link),
            self.read_timeout,
        ))
    }
}

/// What [`AppContext::forget`] did: the forget itself, and the rebuild of the read models.
#[derive(Debug)]
pub struct ForgetReport {
    /// The `SubjectForgotten` event's position, and whether a key was destroyed.
    pub forgotten: Forgotten,
    /// Every projection rebuilt from the log without the erased fields, and any that failed.
    pub rebuilt: RebuildReport,
}

/// A running Opossum application: the store, the projections kept current by their daemon,
/// and the mediator with every handler.
///
/// Stop it with [`shutdown`](OpossumApp::shutdown); dropping it stops the daemon without
/// waiting and closes the store once the last handle is gone.
pub struct OpossumApp {
    context: AppContext,
    mediator: Mediator,
}

impl std::fmt::Debug for OpossumApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpossumApp")
            .field("context", &self.context)
            .field("daemon_running", &self.context.link.daemon_is_running())
            .finish_non_exhaustive()
    }
}

impl OpossumApp {
    /// The event store (see [`AppStore`]).
    #[must_use]
    pub fn store(&self) -> &Arc<AppStore> {
        &self.context.store
    }

    /// The projection manager: status, checkpoints, the rebuilder, typed stores.
    #[must_use]
    pub fn projections(&self) -> &ProjectionManager {
        &self.context.projections
    }

    /// The mediator with every registered handler.
    #[must_use]
    pub fn mediator(&self) -> &Mediator {
        &self.mediator
    }

    /// The clock given to the builder.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.context.clock()
    }

    /// What handler factories were given.
    #[must_use]
    pub fn context(&self) -> &AppContext {
        &self.context
    }

    /// A read-your-writes view of the registered projection `P`; see
    /// [`AppContext::read_model`].
    ///
    /// # Errors
    /// As [`AppContext::read_model`].
    pub fn read_model<P: Projection>(&self) -> Result<ReadModel<P::State>, Error> {
        self.context.read_model::<P>()
    }

    /// A read-your-writes view of the projection named `name`; see
    /// [`AppContext::read_model_by_name`].
    ///
    /// # Errors
    /// As [`AppContext::read_model_by_name`].
    pub fn read_model_by_name<S: DeserializeOwned + Send + 'static>(
        &self,
        name: &str,
    ) -> Result<ReadModel<S>, Error> {
        self.context.read_model_by_name(name)
    }

    /// True until [`shutdown`](Self::shutdown) or [`delete_store`](Self::delete_store).
    #[must_use]
    pub fn daemon_is_running(&self) -> bool {
        self.context.link.daemon_is_running()
    }

    /// Waits until every projection has applied every event the store held when the app opened
    /// it and every event this process appended (for example before reporting that a bulk
    /// import is visible), at most `timeout`.
    ///
    /// # Errors
    /// [`Error::ReadModelBehind`] naming the first projection still behind; [`Error::Projections`]
    /// when one is stopped at an event it cannot apply.
    pub async fn wait_for_projections(&self, timeout: Duration) -> Result<(), Error> {
        let Some(position) = self.context.link.read_position() else {
            return Ok(());
        };
        self.wait_until(position, timeout).await
    }

    async fn wait_until(&self, position: Position, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        for name in self.context.projections.projections() {
            let waited = tokio::time::timeout_at(
                deadline,
                self.context.projections.wait_for(&name, position),
            )
            .await;
            match waited {
                Ok(result) => result?,
                Err(_elapsed) => {
                    return Err(Error::ReadModelBehind {
                        projection: name,
                        position,
                        waited: timeout,
                    });
                }
            }
        }
        Ok(())
    }

    /// Stops the daemon (committing the batch in progress; running rebuilds stop at their next
    /// batch and resume at the next start), drops the mediator, and closes the store, saving
    /// its index so the next open is fast.
    ///
    /// # Errors
    /// [`Error::Projections`] when the daemon's task panicked; [`Error::Store`] when the
    /// store's index snapshot could not be saved (the events are safe either way).
    pub async fn shutdown(self) -> Result<(), Error> {
        let file = self.stop().await?;
        match file.map(Arc::try_unwrap) {
            Some(Ok(file)) => tokio::task::spawn_blocking(move || file.close())
                .await
                .map_err(Error::task)??,
            Some(Err(shared)) => {
                // Someone kept a handle (a clone of the mediator or the store): the store
                // closes when the last one is dropped.
                tracing::debug!(
                    handles = Arc::strong_count(&shared),
                    "store still shared at shutdown; it closes with its last handle"
                );
            }
            // A store given to the builder closes when its last handle is dropped.
            None => {}
        }
        tracing::info!("opossum app stopped");
        Ok(())
    }

    /// Stops everything like [`shutdown`](Self::shutdown), then deletes the whole store folder
    /// — events, index and the projections kept inside it — under the store's cross-process
    /// lock. Build a new app to start afresh.
    ///
    /// # Errors
    /// [`Error::InUse`] when a clone of the mediator, the store or a read model is still
    /// alive; [`Error::OpenElsewhere`] when another process maintains the projections (so it
    /// has the store open); nothing is deleted then. [`Error::Store`] when the folder cannot be
    /// deleted.
    pub async fn delete_store(self) -> Result<(), Error> {
        let Some(path) = self.context.file.as_ref().map(|f| f.path().to_path_buf()) else {
            return Err(Error::NotAFolderStore {
                operation: "delete_store",
            });
        };
        if self.context.projections.role() == Role::Follower {
            return Err(Error::OpenElsewhere { path });
        }
        let file = self.stop().await?.ok_or(Error::NotAFolderStore {
            operation: "delete_store",
        })?;
        let file = Arc::try_unwrap(file).map_err(|_| Error::InUse {
            what: "a clone of the mediator, the store or a read model",
        })?;
        tokio::task::spawn_blocking(move || file.delete())
            .await
            .map_err(Error::task)??;
        Ok(())
    }

    /// Stops the daemon and drops everything but the file store, which it returns (`None` for
    /// a store given to the builder).
    async fn stop(self) -> Result<Option<Arc<FileEventStore>>, Error> {
        let OpossumApp { context, mediator } = self;
        let daemon = context.link.take_daemon();
        if let Some(daemon) = daemon {
            daemon.shutdown().await?;
        }
        drop(mediator);
        let AppContext {
            store,
            file,
            projections,
            ..
        } = context;
        drop(store);
        drop(projections);
        Ok(file)
    }
}
