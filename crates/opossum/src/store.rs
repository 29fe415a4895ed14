//! [`AppStore`]: the event store as an application sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use opossum_core::records::{Forgotten, Records};
use opossum_core::{
    AppendCondition, EventStore, Metadata, NewEvent, Position, Query, ReadOptions, SequencedEvent,
};
use opossum_fs::FileEventStore;
use opossum_projections::ProjectionDaemon;

/// What the store handle, the read models and the app share: the daemon to wake, the store's
/// head when the app opened it, and the last position this process appended.
#[derive(Default)]
pub(crate) struct Link {
    daemon: Mutex<Option<ProjectionDaemon>>,
    head_at_open: AtomicU64,
    last_appended: AtomicU64,
}

impl Link {
    fn daemon(&self) -> MutexGuard<'_, Option<ProjectionDaemon>> {
        // The guarded value is only ever replaced whole, so a poisoned lock still holds a valid
        // one.
        self.daemon.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_daemon(&self, daemon: ProjectionDaemon) {
        *self.daemon() = Some(daemon);
    }

    pub(crate) fn take_daemon(&self) -> Option<ProjectionDaemon> {
        self.daemon().take()
    }

    pub(crate) fn daemon_is_running(&self) -> bool {
        self.daemon().is_some()
    }

    pub(crate) fn appended(&self, position: Position) {
        self.last_appended
            .fetch_max(position.get(), Ordering::AcqRel);
        if let Some(daemon) = self.daemon().as_ref() {
            daemon.notify_appended();
        }
    }

    pub(crate) fn last_appended(&self) -> Option<Position> {
        Position::new(self.last_appended.load(Ordering::Acquire)).ok()
    }

    pub(crate) fn opened_at(&self, head: Option<Position>) {
        self.head_at_open
            .store(head.map_or(0, Position::get), Ordering::Release);
    }

    /// The position read models wait for: everything the store held when the app opened it,
    /// and everything this process appended since.
    pub(crate) fn read_position(&self) -> Option<Position> {
        let opened = self.head_at_open.load(Ordering::Acquire);
        let appended = self.last_appended.load(Ordering::Acquire);
        Position::new(opened.max(appended)).ok()
    }
}

/// The application's event store: the [`FileEventStore`], plus two things every append does
/// through it —
///
/// - it wakes the projection daemon, so read models see the events at once rather than at the
///   next poll;
/// - it records the position, so a [`ReadModel`](crate::ReadModel) can wait until its
///   projection has applied everything this process appended (read-your-writes).
///
/// Use it through the [`EventStore`] trait, exactly like the file store: with
/// `build_decision_model`, `execute_decision`, or directly. Reads go straight to the file store.
/// [`AppStore::file_store`] reaches the file store's own operations (`verify`, `stats`).
pub struct AppStore {
    store: Arc<dyn EventStore>,
    file: Option<Arc<FileEventStore>>,
    records: Option<Arc<Records<Arc<dyn EventStore>>>>,
    link: Arc<Link>,
}

impl std::fmt::Debug for AppStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStore")
            .field("path", &self.file.as_ref().map(|f| f.path().to_path_buf()))
            .field("last_appended", &self.link.last_appended())
            .finish()
    }
}

impl AppStore {
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        file: Option<Arc<FileEventStore>>,
        records: Option<Arc<Records<Arc<dyn EventStore>>>>,
        link: Arc<Link>,
    ) -> AppStore {
        AppStore {
            store,
            file,
            records,
            link,
        }
    }

    /// Forgets a data subject (GDPR erasure by crypto-shredding): appends a
    /// `SubjectForgotten` event with `metadata` (its `user_id` says who; `reason` is added to
    /// its fields) and destroys the subject's key, so every read from then on gives that
    /// subject's events without their personal fields. See
    /// [`Records::forget`](opossum_core::records::Records::forget).
    ///
    /// Read models built before keep the fields in their files until they are rebuilt:
    /// [`AppContext::forget`](crate::AppContext::forget) forgets and rebuilds them.
    ///
    /// # Errors
    /// [`Error::InvalidPersonalData`](opossum_core::Error::InvalidPersonalData) when the app was
    /// built without [`shred_personal_data`](crate::OpossumBuilder::shred_personal_data) or a
    /// key store; the store's and the key store's errors.
    pub async fn forget(
        &self,
        subject: &str,
        reason: &str,
        metadata: Metadata,
    ) -> Result<Forgotten, opossum_core::Error> {
        let Some(records) = &self.records else {
            return Err(opossum_core::Error::InvalidPersonalData {
                problem: "this app keeps no personal data: build it with shred_personal_data() \
                          or key_store() to forget subjects"
                    .into(),
            });
        };
        let forgotten = records.forget(subject, reason, metadata).await?;
        self.link.appended(forgotten.position);
        Ok(forgotten)
    }

    /// The file store underneath, for its own operations (`verify`, `stats`, `path`); `None`
    /// when the app was built on another store
    /// ([`OpossumBuilder::event_store`](crate::OpossumBuilder::event_store)).
    ///
    /// Appending through it directly skips the daemon wake-up and read-your-writes tracking;
    /// append through the `AppStore` instead.
    #[must_use]
    pub fn file_store(&self) -> Option<&FileEventStore> {
        self.file.as_deref()
    }

    /// The highest position appended through this store by this process, if any.
    #[must_use]
    pub fn last_appended(&self) -> Option<Position> {
        self.link.last_appended()
    }
}

#[async_trait]
impl EventStore for AppStore {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        let position = self.store.append(events, condition).await?;
        self.link.appended(position);
        Ok(position)
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        self.store.read(query, options).await
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        self.store.read_last(query).await
    }

    async fn head(&self) -> Result<Option<Position>, opossum_core::Error> {
        self.store.head().await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), opossum_core::Error> {
        self.store.wait_for_append(beyond).await
    }
}
