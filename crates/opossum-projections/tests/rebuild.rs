//! The rebuilder: an atomic commit (readers see the old generation until then), status of
//! running and queued rebuilds, a failed rebuild leaving the live generation alone, and memory
//! bounded by the flush interval. A *gate* pauses a rebuild at a chosen event, so the tests
//! observe it mid-way without relying on timing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use opossum_core::{EventStore, InMemoryEventStore, SequencedEvent};
use opossum_projections::{BoxError, Error, Projection};
use support::*;

const HANG_GUARD: Duration = Duration::from_secs(60);

/// Holds `apply` at one event position while armed, until opened.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
    reached: tokio::sync::Notify,
}

impl Gate {
    fn pass(&self) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        self.reached.notify_one();
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Counts students by name; stops at the gate on event `at`.
struct Gated {
    name: &'static str,
    at: u64,
    gate: Arc<Gate>,
}

impl Projection for Gated {
    type State = u64;
    fn name(&self) -> &str {
        self.name
    }
    fn event_types(&self) -> Vec<&str> {
        vec!["StudentRegistered"]
    }
    fn key(&self, event: &SequencedEvent) -> Option<String> {
        Some(event.decode::<StudentRegistered>().ok()?.name)
    }
    fn apply(
        &self,
        state: Option<u64>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<u64>, BoxError> {
        if event.position.get() == self.at {
            self.gate.pass();
        }
        Ok(Some(state.unwrap_or(0) + 1))
    }
}

async fn registrations(store: &Arc<dyn EventStore>, count: usize) -> opossum_core::Position {
    append(
        store,
        (0..count)
            .map(|i| registered(&format!("s-{i}"), &format!("name-{}", i % 10)))
            .collect(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_the_old_generation_until_the_atomic_commit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    registrations(&store, 500).await;
    let gate = Arc::new(Gate::default());
    let manager = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Gated {
            name: "Names",
            at: 350,
            gate: Arc::clone(&gate),
        })
        .open()?;
    assert!(manager.catch_up().await.is_success());
    let names = manager.store_by_name::<u64>("Names")?;
    assert_eq!(names.get("name-3")?, Some(50));
    let before = live_generation(dir.path(), "Names").unwrap();

    gate.armed.store(true, Ordering::Release);
    let rebuilder = manager.rebuilder();
    let running = tokio::spawn({
        let rebuilder = rebuilder.clone();
        async move { rebuilder.rebuild("Names").await }
    });
    tokio::time::timeout(HANG_GUARD, gate.reached.notified()).await?;

    // Paused at event 350, after three flush points: the old generation still serves reads …
    assert_eq!(names.get("name-3")?, Some(50));
    assert_eq!(live_generation(dir.path(), "Names"), Some(before));
    let journal: serde_json::Value = serde_json::from_slice(&std::fs::read(
        dir.path().join("projections/Names/rebuild.json"),
    )?)?;
    assert_eq!(journal["flushed_position"], 300);
    // … and the status shows the rebuild with its progress.
    let status = rebuilder.status();
    assert_eq!(status.running.len(), 1, "{status:?}");
    assert_eq!(status.running[0].name, "Names");
    assert_eq!(status.running[0].events_applied, 300);
    assert!(status.queued.is_empty());
    // A second request waits for the running rebuild, then rebuilds again.
    let second = tokio::spawn({
        let rebuilder = rebuilder.clone();
        async move { rebuilder.rebuild("Names").await }
    });
    tokio::task::yield_now().await;
    assert!(
        !second.is_finished(),
        "the second rebuild cannot start before the first ends"
    );

    gate.release();
    let rebuilt = tokio::time::timeout(HANG_GUARD, running).await???;
    assert_eq!(rebuilt.events_applied, 500);
    assert_eq!(rebuilt.checkpoint.map(|p| p.get()), Some(500));
    let again = tokio::time::timeout(HANG_GUARD, second).await???;
    assert_eq!(again.events_applied, 500);
    let before = before + 1;
    assert_eq!(live_generation(dir.path(), "Names"), Some(before + 1));
    assert_eq!(names.get("name-3")?, Some(50));
    // The old generation and the journal are gone.
    let mut left: Vec<String> = std::fs::read_dir(dir.path().join("projections/Names"))?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "current.json",
            format!("gen-{:06}.jsonl", before + 1).as_str()
        ]
    );
    assert!(rebuilder.status().is_idle());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_running_and_queued_rebuilds() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    registrations(&store, 50).await;
    let gate = Arc::new(Gate::default());
    gate.armed.store(true, Ordering::Release);
    let manager = options(dir.path())
        .max_concurrent_rebuilds(1)
        .builder(Arc::clone(&store))
        .register(Gated {
            name: "A",
            at: 10,
            gate: Arc::clone(&gate),
        })
        .register(Gated {
            name: "B",
            at: 10,
            gate: Arc::clone(&gate),
        })
        .open()?;
    let rebuilder = manager.rebuilder();
    let running = tokio::spawn({
        let rebuilder = rebuilder.clone();
        async move { rebuilder.rebuild_all().await }
    });
    tokio::time::timeout(HANG_GUARD, gate.reached.notified()).await?;
    let status = rebuilder.status();
    assert_eq!(status.running.len(), 1, "{status:?}");
    assert_eq!(status.queued.len(), 1, "{status:?}");
    assert_ne!(status.running[0].name, status.queued[0]);
    gate.release();
    let report = tokio::time::timeout(HANG_GUARD, running).await??;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.rebuilt.len(), 2);
    assert_eq!(manager.store_by_name::<u64>("B")?.get("name-0")?, Some(5));
    // Two projections of one type: asking by type cannot choose, and says so.
    match manager.store::<Gated>() {
        Err(Error::AmbiguousProjection { names, .. }) => assert_eq!(names, ["A", "B"]),
        other => panic!("expected AmbiguousProjection, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_rebuild_leaves_the_live_generation() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    append(
        &store,
        vec![registered("s-1", "Ada"), enrolled("c-1", "s-1")],
    )
    .await;
    let manager = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Fragile { panics: false })
        .open()?;
    assert!(manager.catch_up().await.is_success());
    let live = live_generation(dir.path(), "Fragile").unwrap();
    let poison = append(&store, vec![poisoned_enrolment("c-1", "s-1")]).await;

    let report = manager.rebuilder().rebuild_many(&["Fragile"]).await?;
    assert!(!report.is_success());
    assert_eq!(report.failed[0].position, Some(poison));
    assert_eq!(live_generation(dir.path(), "Fragile"), Some(live));
    assert_eq!(manager.store::<Fragile>()?.get("c-1")?, Some(1));
    let mut left: Vec<String> = std::fs::read_dir(dir.path().join("projections/Fragile"))?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["current.json", format!("gen-{live:06}.jsonl").as_str()]
    );
    assert!(matches!(
        manager.rebuilder().rebuild_many(&["Nope"]).await,
        Err(Error::UnknownProjection { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn many_instances_rebuild_with_a_small_flush_interval() -> TestResult {
    // 3,000 instances and a flush every 100 events: the cache is emptied at every flush point,
    // so instances are written, dropped and read back again as their events come.
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let mut events = Vec::new();
    for round in 0..2 {
        for i in 0..1_500 {
            let student = format!("s-{}", (i * 7 + round) % 3_000);
            events.push(registered(&student, &format!("n{round}")));
            if i % 3 == 0 {
                events.push(enrolled("c", &student));
            }
        }
    }
    append(&store, events).await;
    let manager = manager(&store, options(dir.path()).batch_size(1_000));
    assert!(manager.catch_up().await.is_success());
    let incremental = manager.store::<Students>()?.entries()?;
    let rebuilt = manager.rebuilder().rebuild("Students").await?;
    assert!(rebuilt.events_applied > 3_000);
    assert_eq!(manager.store::<Students>()?.entries()?, incremental);
    Ok(())
}

#[tokio::test]
async fn a_folder_in_the_layout_of_earlier_versions_is_rebuilt_on_first_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    append(
        &store,
        vec![registered("s-1", "Ada"), registered("s-2", "Grace")],
    )
    .await;
    // What an earlier version left: a generation folder with a file per instance and tag
    // markers, behind current.json.
    let folder = dir.path().join("projections/Students");
    std::fs::create_dir_all(folder.join("gen-000004/state"))?;
    std::fs::create_dir_all(folder.join("gen-000004/tags/active/yes"))?;
    std::fs::write(
        folder.join("gen-000004/state/s-1.json"),
        br#"{"key":"s-1","position":1,"state":{"id":"s-1","name":"Ada","courses":0}}"#,
    )?;
    std::fs::write(folder.join("gen-000004/tags/active/yes/s-1"), b"")?;
    std::fs::write(
        folder.join("gen-000004/checkpoint.json"),
        br#"{"position":1,"updated_at":"2026-11-01T00:00:00Z"}"#,
    )?;
    std::fs::write(folder.join("current.json"), br#"{"generation": 4}"#)?;

    let manager = manager(&store, options(dir.path()));
    assert!(
        !manager
            .status()
            .iter()
            .any(|s| s.name == "Students" && s.has_checkpoint),
        "the old layout is not read"
    );
    let report = manager.rebuilder().rebuild_missing().await;
    assert!(report.is_success(), "{report:?}");
    let students = manager.store::<Students>()?;
    assert_eq!(students.count()?, 2);
    assert_eq!(
        students.get("s-2")?.map(|s| s.name),
        Some("Grace".to_owned())
    );
    let mut names: Vec<String> = std::fs::read_dir(&folder)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        ["current.json", "gen-000005.jsonl"],
        "the old folder is gone; numbering goes on after it"
    );
    Ok(())
}
