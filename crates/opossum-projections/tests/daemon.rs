//! The daemon: woken by the store and by notifications, polling when the store cannot tell,
//! isolating failures, auto-rebuilding at start, stopping cleanly. Waits are on `wait_for` (which wakes on every committed batch); timeouts only turn a
//! hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, ErrorKind, EventStore, InMemoryEventStore, NewEvent, Position, Query,
    ReadOptions, SequencedEvent,
};
use opossum_projections::{AutoRebuild, Error};
use support::*;

const HANG_GUARD: Duration = Duration::from_secs(60);

/// An in-memory store that cannot wait for appends (as a back end without change detection
/// might): only notifications and polling can wake a daemon on it.
#[derive(Default)]
struct CannotWait(InMemoryEventStore);

#[async_trait]
impl EventStore for CannotWait {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        self.0.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        self.0.read(query, options).await
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        self.0.read_last(query).await
    }

    async fn wait_for_append(&self, _beyond: Option<Position>) -> Result<(), opossum_core::Error> {
        Err(opossum_core::Error::storage(
            ErrorKind::Unsupported,
            "this store cannot wait for appends",
        ))
    }
}

async fn guarded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("hang guard: the daemon did not get there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_wakes_the_daemon_at_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(CannotWait::default());
    // The store cannot wake it and polling would take an hour: only the notification can.
    let options = options(dir.path()).polling_interval(Duration::from_secs(3600));
    let manager = manager(&store, options);
    let daemon = manager.start_daemon();

    let head = append(
        &store,
        vec![registered("s-1", "Ada"), course("c-1", "Rust", 1)],
    )
    .await;
    daemon.notify_appended();
    guarded(manager.wait_for("Students", head)).await?;
    guarded(manager.wait_for("CourseDetails", head)).await?;
    assert_eq!(
        manager.store::<Students>()?.get("s-1")?.unwrap().name,
        "Ada"
    );

    let head = append(&store, vec![enrolled("c-1", "s-1")]).await;
    daemon.notify_appended();
    guarded(manager.wait_for("CourseDetails", head)).await?;
    assert_eq!(
        manager
            .store::<CourseDetails>()?
            .get("c-1")?
            .unwrap()
            .students,
        ["Ada"]
    );
    guarded(daemon.shutdown()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_wakes_the_daemon_when_nobody_notifies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    // Polling would take an hour and nobody calls `notify_appended`: only the store's
    // `wait_for_append` can wake the daemon.
    let options = options(dir.path())
        .polling_interval(Duration::from_secs(3600))
        .auto_rebuild(AutoRebuild::Disabled);
    let manager = manager(&store, options);
    let daemon = manager.start_daemon();
    for i in 0..5 {
        let head = append(&store, vec![registered(&format!("s-{i}"), "Ada")]).await;
        guarded(manager.wait_for("Students", head)).await?;
    }
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 5);
    guarded(daemon.shutdown()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_does_not_stop_the_daemon() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let manager = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Fragile { panics: true })
        .register(Students)
        .open()?;
    let daemon = manager.start_daemon();
    append(&store, vec![registered("s-1", "Ada")]).await;
    let poison = append(&store, vec![poisoned_enrolment("c-1", "s-1")]).await;
    daemon.notify_appended();
    let failed = guarded(manager.wait_for("Fragile", poison)).await;
    assert!(matches!(failed, Err(Error::Failing { position, .. }) if position == poison));

    // Later events still reach the healthy projection, through further wake-ups.
    for i in 0..5 {
        let head = append(&store, vec![enrolled(&format!("c-{i}"), "s-1")]).await;
        daemon.notify_appended();
        guarded(manager.wait_for("Students", head)).await?;
    }
    assert_eq!(manager.store::<Students>()?.get("s-1")?.unwrap().courses, 6);
    let status = manager.status();
    assert_eq!(
        status[0].failure.as_ref().and_then(|f| f.position),
        Some(poison)
    );
    assert!(status[1].failure.is_none());
    guarded(daemon.shutdown()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rebuild_modes_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let head = append(
        &store,
        (0..250)
            .map(|i| registered(&format!("s-{i}"), "N"))
            .collect(),
    )
    .await;

    // Missing checkpoints (the default): a new projection is built by a rebuild.
    let manager = manager(&store, options(dir.path()));
    let daemon = manager.start_daemon();
    guarded(manager.wait_for("Students", head)).await?;
    guarded(daemon.shutdown()).await?;
    let first = live_generation(dir.path(), "Students").unwrap();
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 250);
    drop(manager);

    // It has a checkpoint now: the next start rebuilds nothing.
    let manager = support::manager(&store, options(dir.path()));
    let daemon = manager.start_daemon();
    let head = append(&store, vec![registered("s-new", "N")]).await;
    daemon.notify_appended();
    guarded(manager.wait_for("Students", head)).await?;
    guarded(daemon.shutdown()).await?;
    assert_eq!(live_generation(dir.path(), "Students"), Some(first));
    drop(manager);

    // Forced: every start rebuilds into a new generation.
    let options_forced = options(dir.path()).auto_rebuild(AutoRebuild::ForceFull);
    let manager = support::manager(&store, options_forced);
    let daemon = manager.start_daemon();
    guarded(async {
        while live_generation(dir.path(), "Students") == Some(first) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    guarded(manager.wait_for("Students", head)).await?;
    guarded(daemon.shutdown()).await?;
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 251);
    drop(manager);

    // Disabled: a projection without a checkpoint is brought up to date in ordinary batches.
    let fresh = tempfile::tempdir()?;
    let options_off = options(fresh.path()).auto_rebuild(AutoRebuild::Disabled);
    let manager = support::manager(&store, options_off);
    let daemon = manager.start_daemon();
    guarded(manager.wait_for("Students", head)).await?;
    assert!(manager.rebuilder().status().is_idle());
    guarded(daemon.shutdown()).await?;
    assert_eq!(live_generation(fresh.path(), "Students"), Some(1));
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 251);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_clean_and_a_new_daemon_takes_over() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let manager = manager(&store, options(dir.path()));
    let daemon = manager.start_daemon();
    let head = append(&store, vec![registered("s-1", "Ada")]).await;
    daemon.notify_appended();
    guarded(manager.wait_for("Students", head)).await?;
    guarded(daemon.shutdown()).await?;

    let head = append(&store, vec![registered("s-2", "Grace")]).await;
    let daemon = manager.start_daemon();
    // No notification: a new daemon's first pass catches up by itself.
    guarded(manager.wait_for("Students", head)).await?;
    guarded(daemon.shutdown()).await?;
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn polling_finds_appends_nobody_announced() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A store that cannot wait for appends, no rebuild at start and no notification anywhere:
    // nothing else can wake the daemon (and a store that fails to wait does not make it spin).
    let store: Arc<dyn EventStore> = Arc::new(CannotWait::default());
    let options = options(dir.path())
        .polling_interval(Duration::from_secs(5))
        .auto_rebuild(AutoRebuild::Disabled);
    let manager = manager(&store, options);
    let head = append(&store, vec![registered("s-1", "Ada")]).await;
    let daemon = manager.start_daemon();
    guarded(manager.wait_for("Students", head)).await?;
    // The daemon's first pass is done and it goes to sleep: only its polling can find the next
    // append. With time paused, the runtime moves the clock to the next poll as soon as every
    // task is idle, so the test takes no real time.
    let head = append(&store, vec![registered("s-2", "Grace")]).await;
    let before = tokio::time::Instant::now();
    guarded(manager.wait_for("Students", head)).await?;
    assert!(
        before.elapsed() >= Duration::from_secs(5),
        "found by the poll, not before it"
    );
    guarded(daemon.shutdown()).await?;
    Ok(())
}
