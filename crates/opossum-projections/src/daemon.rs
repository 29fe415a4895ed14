//! [`ProjectionDaemon`]: the tokio task that keeps projections current.

use std::sync::Arc;

use opossum_core::{EventStore, Position};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::manager::Inner;
use crate::{Error, rebuild, update};

/// Keeps the registered projections current, in a tokio task.
///
/// Started by [`ProjectionManager::start_daemon`](crate::ProjectionManager::start_daemon). It
/// first resumes any rebuild a crash interrupted and starts the rebuilds the
/// [`AutoRebuild`](crate::AutoRebuild) mode asks for (they run in the background). Then it
/// loops: it brings every projection that is not being rebuilt up to the store's head, in
/// bounded batches, and sleeps until
///
/// - the store says an event was committed past the head it caught up to
///   ([`EventStore::wait_for_append`]) — by this process or another one sharing the store; the
///   file store learns of other processes' commits from file-change notifications (or by
///   polling, as its `change_detection` option says), typically within milliseconds;
/// - [`notify_appended`](Self::notify_appended) says this process appended events, or
/// - the [polling interval](crate::ProjectionOptions::polling_interval) has passed: the
///   fallback for a store that cannot tell, or one whose waiting failed.
///
/// A projection whose `apply` fails (or panics) stops at that event; the failure is logged
/// once, shown in [`ProjectionManager::status`](crate::ProjectionManager::status), and retried
/// at the next wake-up, while the other projections go on.
///
/// In a [follower](crate::Role::Follower) it applies nothing and does not wait on the store:
/// at every wake-up (its polling interval, or `notify_appended`) it tries to take over the
/// folder, and once the maintaining process is gone it does (tidying the folder and
/// starting the rebuilds a maintainer starts with) and keeps the projections current from then
/// on.
///
/// [`shutdown`](Self::shutdown) stops it cleanly: the batch being applied is committed, running
/// rebuilds stop at their next batch (their journals let the next start resume them). Dropping
/// the daemon asks it to stop without waiting.
pub struct ProjectionDaemon {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProjectionDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionDaemon")
            .field(
                "running",
                &self.task.as_ref().is_some_and(|t| !t.is_finished()),
            )
            .finish_non_exhaustive()
    }
}

impl ProjectionDaemon {
    pub(crate) fn start(inner: Arc<Inner>) -> ProjectionDaemon {
        let (stop, stopped) = watch::channel(false);
        // Reserve the rebuilds before the loop starts, so its first pass leaves them alone.
        let reservations = if inner.is_following() {
            Vec::new()
        } else {
            start_up_rebuilds(&inner)
        };
        let task = tokio::spawn(run(Arc::clone(&inner), reservations, stopped));
        ProjectionDaemon {
            inner,
            stop,
            task: Some(task),
        }
    }

    /// Wakes the daemon at once: call it after appending events in this process (the facade
    /// does). Cheap; calls made while the daemon is busy are merged into one more pass.
    pub fn notify_appended(&self) {
        self.inner.wake.notify_one();
    }

    /// Stops the daemon and waits for it: the batch in progress is committed, rebuilds stop at
    /// their next batch and keep their journals.
    ///
    /// # Errors
    /// [`Error::Task`] when the daemon's task panicked.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.map_err(|e| Error::Task {
                what: "daemon",
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for ProjectionDaemon {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Reserves the rebuilds a maintainer starts with: interrupted ones, and those the
/// [`AutoRebuild`](crate::AutoRebuild) mode asks for.
fn start_up_rebuilds(inner: &Arc<Inner>) -> Vec<rebuild::Reservation> {
    let (reservations, busy) = rebuild::reserve(inner, rebuild::at_start(inner));
    for failure in busy {
        tracing::info!(projection = %failure.name, "already being rebuilt");
    }
    reservations
}

/// Runs reserved rebuilds in a task of their own, logging those that do not complete.
fn spawn_rebuilds(
    inner: &Arc<Inner>,
    reservations: Vec<rebuild::Reservation>,
    stop: &watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if reservations.is_empty() {
        return None;
    }
    let (inner, stop) = (Arc::clone(inner), stop.clone());
    Some(tokio::spawn(async move {
        let report = rebuild::run_reserved(inner, reservations, Some(stop)).await;
        for failure in &report.failed {
            tracing::warn!(projection = %failure.name, reason = %failure.reason, "start-up rebuild did not complete");
        }
    }))
}

async fn run(
    inner: Arc<Inner>,
    reservations: Vec<rebuild::Reservation>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(
        projections = inner.projections.len(),
        rebuilds = reservations.len(),
        role = ?inner.role(),
        polling_ms = inner.options.get_polling_interval().as_millis() as u64,
        "projection daemon started"
    );
    let mut rebuilds: Vec<JoinHandle<()>> = spawn_rebuilds(&inner, reservations, &stop)
        .into_iter()
        .collect();
    let polling = inner.options.get_polling_interval();
    loop {
        if *stop.borrow() {
            break;
        }
        if inner.is_following() {
            // Another process maintains the folder; take over once it is gone.
            match inner.try_take_over() {
                Ok(true) => {
                    let reservations = start_up_rebuilds(&inner);
                    rebuilds.extend(spawn_rebuilds(&inner, reservations, &stop));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not take over the projections folder; trying again at the next poll");
                }
            }
        }
        // The head before the pass is what it surely caught up to (unless a projection failed,
        // which the next append or poll retries); an event committed during the pass makes
        // the wait below end at once, for one more pass.
        let caught_up_to = if inner.is_following() {
            None
        } else {
            head_before_pass(inner.store.as_ref()).await
        };
        update::catch_up(&inner, Some(&stop)).await;
        tokio::select! {
            () = appended_past(inner.store.as_ref(), caught_up_to) => {}
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(polling) => {}
            _ = stop.changed() => {}
        }
    }
    for task in rebuilds {
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "a start-up rebuild task ended unexpectedly");
        }
    }
    tracing::info!("projection daemon stopped");
}

/// The store's head before a pass: `Some(None)` for an empty store, `None` when it cannot be
/// read (the pass reports the store's failure; the daemon then waits for its polling interval).
async fn head_before_pass(store: &dyn EventStore) -> Option<Option<Position>> {
    match store.head().await {
        Ok(head) => Some(head),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the store's head; waiting for the polling interval");
            None
        }
    }
}

/// Resolves once the store's head is past `caught_up_to`; never, when that head is unknown or
/// the store cannot wait (the other wake-ups of the daemon remain).
async fn appended_past(store: &dyn EventStore, caught_up_to: Option<Option<Position>>) {
    let Some(beyond) = caught_up_to else {
        return std::future::pending().await;
    };
    loop {
        // `wait_for_append` may resolve early: look at the head again before waking the daemon,
        // so a spurious wake-up costs one small read instead of a pass over every projection.
        let appended = match store.wait_for_append(beyond).await {
            Ok(()) => store.head().await.map(|head| head > beyond),
            Err(e) => Err(e),
        };
        match appended {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot wait for appends to the store; waiting for the polling interval");
                return std::future::pending().await;
            }
        }
    }
}
