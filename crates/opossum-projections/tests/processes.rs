//! Real processes on one store folder: the daemon catches up with appends made by another
//! process, woken by the store itself even when its polling would take an hour; a rebuild killed with SIGKILL resumes from its last flush point and ends where a
//! clean rebuild ends; and a process following another's projections reads them, then takes
//! over when that process is killed.
//!
//! The parent re-executes this test binary as the child
//! (`<test binary> --exact child_process_entry --nocapture --test-threads=1`, with
//! `OPOSSUM_CHILD_ROLE` naming the role). Without that variable `child_process_entry` returns at
//! once. The parent never judges by time: it waits for files and positions, and timeouts only
//! turn a hang into a failure.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "test helpers: a failed expectation is a test failure; the child reports on stdout"
)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opossum_core::{Durability, EventStore, Position, SequencedEvent};
use opossum_fs::{FileEventStore, StoreOptions};
use opossum_projections::{BoxError, Projection, ProjectionManager, ProjectionOptions, Role};
use support::*;

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_CHILD_ROLE";
const ROOT_VAR: &str = "OPOSSUM_CHILD_ROOT";
const STORE_NAME: &str = "school";
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Events in the store the rebuild child works on.
const REBUILD_EVENTS: usize = 3_000;
/// Each event costs the rebuild child this long, so that a rebuild lasts about a second and
/// the parent finds it mid-way.
const SLOW_APPLY: Duration = Duration::from_micros(300);

fn open_store(root: &Path) -> Result<FileEventStore, opossum_fs::Error> {
    FileEventStore::open_with(
        root.join(STORE_NAME),
        StoreOptions::new().durability(Durability::Eventual),
    )
}

fn projection_options(root: &Path) -> Opts {
    Opts::new(
        root.join(STORE_NAME).join("projections"),
        ProjectionOptions::new()
            .rebuild_batch_size(100)
            .rebuild_flush_interval(100)
            .polling_interval(Duration::from_millis(100)),
    )
}

/// Counts registrations per name; slow in the rebuild child.
struct Names {
    slow: Option<Duration>,
}

impl Projection for Names {
    type State = u64;
    fn name(&self) -> &str {
        "Names"
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
        _event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<u64>, BoxError> {
        if let Some(slow) = self.slow {
            std::thread::sleep(slow);
        }
        Ok(Some(state.unwrap_or(0) + 1))
    }
}

fn names_manager(
    store: Arc<dyn EventStore>,
    options: Opts,
    slow: Option<Duration>,
) -> ProjectionManager {
    options
        .builder(store)
        .register(Names { slow })
        .register(Students)
        .open()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Entry point of the child processes; a no-op unless `OPOSSUM_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let root = PathBuf::from(std::env::var(ROOT_VAR).expect("child without a root"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "appender" => runtime.block_on(appender(&root)),
        "rebuilder" => runtime.block_on(rebuilder(&root)),
        "maintainer" => runtime.block_on(maintainer(&root)),
        other => panic!("unknown {ROLE_VAR} {other}"),
    }
}

/// Appends 20 batches of registrations to the store, then reports the last position.
async fn appender(root: &Path) {
    let store = open_store(root).unwrap();
    let mut last = None;
    for batch in 0..20 {
        let events = (0..5)
            .map(|i| registered(&format!("p-{batch}-{i}"), &format!("name-{i}")))
            .collect();
        last = Some(store.append(events, None).await.unwrap());
    }
    println!("LAST {}", last.unwrap().get());
}

/// Rebuilds `Names` slowly until the parent kills it.
async fn rebuilder(root: &Path) {
    let store: Arc<dyn EventStore> = Arc::new(open_store(root).unwrap());
    let manager = names_manager(store, projection_options(root), Some(SLOW_APPLY));
    let rebuilt = manager.rebuilder().rebuild("Names").await.unwrap();
    // Reaching here means the parent did not kill us in time; it checks for this line.
    println!("FINISHED {}", rebuilt.events_applied);
}

/// Maintains the projections: appends 20 batches, waits until its daemon applied them, reports
/// the last position, then keeps maintaining until the parent kills it.
async fn maintainer(root: &Path) {
    let store = Arc::new(open_store(root).unwrap());
    let shared: Arc<dyn EventStore> = store.clone();
    let manager = names_manager(shared, projection_options(root), None);
    assert_eq!(manager.role(), Role::Maintainer);
    let daemon = manager.start_daemon();
    let mut last = None;
    for batch in 0..20 {
        let events = (0..5)
            .map(|i| registered(&format!("m-{batch}-{i}"), &format!("name-{i}")))
            .collect();
        last = Some(store.append(events, None).await.unwrap());
        daemon.notify_appended();
    }
    let last = last.unwrap();
    manager.wait_for("Names", last).await.unwrap();
    manager.wait_for("Students", last).await.unwrap();
    println!("LAST {}", last.get());
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn child(root: &Path, role: &str) -> Command {
    child_command(CHILD_TEST, (ROLE_VAR, role), (ROOT_VAR, root))
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// A child process appends 100 registrations while this process's daemon runs with the
/// options `options` makes for the test's folder; nobody here announces them. Returns once
/// both projections applied them all.
async fn a_child_appends_and_the_daemon_applies(options: impl FnOnce(&Path) -> Opts) -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let store: Arc<dyn EventStore> = Arc::new(open_store(root)?);
    let first = append(&store, vec![registered("s-0", "name-0")]).await;
    let manager = names_manager(Arc::clone(&store), options(root), None);
    let daemon = manager.start_daemon();
    tokio::time::timeout(HANG_GUARD, manager.wait_for("Names", first)).await??;

    let child_root = root.to_path_buf();
    let output =
        tokio::task::spawn_blocking(move || child(&child_root, "appender").output()).await??;
    assert!(output.status.success(), "appender failed: {output:?}");
    let stdout = String::from_utf8(output.stdout)?;
    let last: u64 = stdout
        .split_once("LAST ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no LAST line in {stdout:?}"))?;
    let last = Position::new(last)?;

    tokio::time::timeout(HANG_GUARD, manager.wait_for("Names", last)).await??;
    tokio::time::timeout(HANG_GUARD, manager.wait_for("Students", last)).await??;
    let names = manager.store::<Names>()?;
    assert_eq!(names.get("name-0")?, Some(21));
    assert_eq!(names.get("name-4")?, Some(20));
    assert_eq!(manager.store::<Students>()?.get_all()?.len(), 101);
    daemon.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_catches_up_with_appends_from_another_process() -> TestResult {
    a_child_appends_and_the_daemon_applies(projection_options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_wakes_the_daemon_for_another_process_appends_without_polling() -> TestResult {
    // Its polling would take an hour and nobody here calls `notify_appended`: only the store's
    // `wait_for_append` (file-change notifications, or the anchor read every 100 ms) can wake it.
    a_child_appends_and_the_daemon_applies(|root| {
        projection_options(root).polling_interval(Duration::from_secs(3600))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_mid_way_resumes_from_its_last_flush_point() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let store: Arc<dyn EventStore> = Arc::new(open_store(root)?);
    let head = append(
        &store,
        (0..REBUILD_EVENTS)
            .map(|i| registered(&format!("s-{i}"), &format!("name-{}", i % 37)))
            .collect(),
    )
    .await;
    // A live generation first, so the kill also shows that it is left untouched.
    let manager = names_manager(Arc::clone(&store), projection_options(root), None);
    assert!(manager.catch_up().await.is_success());
    let live_before = manager.store::<Names>()?.entries()?;
    drop(manager);
    let folder = root.join(STORE_NAME).join("projections").join("Names");
    let live_generation = read_json(&folder.join("current.json"))?["generation"].clone();

    let mut rebuilding = child(root, "rebuilder").spawn()?;
    let journal_file = folder.join("rebuild.json");
    let started = Instant::now();
    loop {
        let flushed = read_json(&journal_file)
            .ok()
            .and_then(|j| j["flushed_position"].as_u64())
            .unwrap_or(0);
        if flushed >= 500 {
            break;
        }
        if let Some(status) = rebuilding.try_wait()? {
            return Err(format!("the rebuilding child ended by itself: {status}").into());
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "hang guard: no flush point reached"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    rebuilding.kill()?; // SIGKILL
    let status = rebuilding.wait()?;
    assert_eq!(status.signal(), Some(9), "{status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut rebuilding.stdout.take().unwrap(), &mut stdout)?;
    assert!(
        !stdout.contains("FINISHED"),
        "the rebuild completed before the kill"
    );

    // The kill left a journal, a half-built generation, and the live generation as it was.
    let journal = read_json(&journal_file)?;
    let flushed = journal["flushed_position"].as_u64().unwrap();
    assert!((500..head.get()).contains(&flushed), "{journal}");
    assert_eq!(
        read_json(&folder.join("current.json"))?["generation"],
        live_generation
    );

    // The next start resumes from the flush point (or the one after, whose checkpoint was
    // written just before the kill) instead of starting over.
    let manager = names_manager(Arc::clone(&store), projection_options(root), None);
    assert_eq!(manager.store::<Names>()?.entries()?, live_before);
    let report = manager.rebuilder().resume_interrupted().await;
    assert!(report.is_success(), "{report:?}");
    let resumed = &report.rebuilt[0];
    let from = resumed.resumed_from.map_or(0, Position::get);
    assert!(
        from >= flushed && from < head.get(),
        "resumed from {from}, journal said {flushed}"
    );
    assert_eq!(
        resumed.events_applied,
        head.get() - from,
        "each remaining event applied once"
    );
    assert_eq!(resumed.checkpoint, Some(head));
    let resumed_states = manager.store::<Names>()?.entries()?;
    assert!(!journal_file.exists());
    drop(manager);

    // A clean rebuild, in a folder of its own, ends in the same states; so did the live updates.
    let clean_root = root.join("clean");
    let clean = names_manager(
        Arc::clone(&store),
        Opts::new(clean_root, ProjectionOptions::new()).rebuild_flush_interval(100),
        None,
    );
    clean.rebuilder().rebuild("Names").await?;
    assert_eq!(clean.store::<Names>()?.entries()?, resumed_states);
    assert_eq!(resumed_states, live_before);
    assert_eq!(
        resumed_states.iter().map(|(_, n)| n).sum::<u64>(),
        REBUILD_EVENTS as u64
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_another_process_projections_and_takes_over_when_it_is_killed()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let store: Arc<dyn EventStore> = Arc::new(open_store(root)?);
    let mut maintaining = child(root, "maintainer").spawn()?;
    let stdout = maintaining.stdout.take().ok_or("no stdout")?;
    // The child reports once its projections are current (on the line libtest began).
    let reading = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if std::io::BufRead::read_line(&mut reader, &mut line)? == 0 || line.contains("LAST ") {
                return Ok::<_, std::io::Error>(line);
            }
        }
    });
    let line = match tokio::time::timeout(HANG_GUARD, reading).await {
        Ok(read) => read??,
        Err(_) => {
            maintaining.kill()?; // ends the read, so the test ends
            return Err("hang guard: the maintainer never reported".into());
        }
    };
    let last = line
        .split_once("LAST ")
        .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no LAST line from the maintainer: {line:?}"))?;
    let last = Position::new(last)?;

    // This process follows: it reads what the child wrote, and applies nothing itself.
    let follower = projection_options(root)
        .builder(Arc::clone(&store))
        .register(Names { slow: None })
        .register(Students)
        .open_or_follow()?;
    assert_eq!(follower.role(), Role::Follower);
    assert_eq!(follower.checkpoint("Names")?, Some(last));
    let names = follower.store::<Names>()?;
    assert_eq!(names.get("name-0")?, Some(20));
    assert_eq!(follower.store::<Students>()?.get_all()?.len(), 100);
    assert!(matches!(
        follower.rebuilder().rebuild("Names").await,
        Err(opossum_projections::Error::NotMaintainer { .. })
    ));

    // Its daemon takes over once the child is killed, and applies what comes next.
    let daemon = follower.start_daemon();
    maintaining.kill()?; // SIGKILL
    let status = maintaining.wait()?;
    assert_eq!(status.signal(), Some(9), "{status}");
    let next = append(&store, vec![registered("p-1", "name-0")]).await;
    daemon.notify_appended();
    tokio::time::timeout(HANG_GUARD, follower.wait_for("Names", next)).await??;
    tokio::time::timeout(HANG_GUARD, follower.wait_for("Students", next)).await??;
    assert_eq!(follower.role(), Role::Maintainer);
    assert_eq!(names.get("name-0")?, Some(21));
    assert_eq!(follower.store::<Students>()?.get_all()?.len(), 101);
    daemon.shutdown().await?;
    Ok(())
}

fn read_json(path: &Path) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}
