//! Subscriptions on the file store, beyond the shared conformance suite (which runs them on a
//! watching store in `dcb_conformance.rs`):
//!
//! 1. The subscription cases of the suite again, on stores that poll for changes
//!    ([`ChangeDetection::Poll`]).
//! 2. `change_detection()` reports the mode asked for, also once a subscriber waits (a
//!    watching store has set up its notifications by then and still says `Watch`).
//! 3. A subscriber of a store that another handle deletes ends with the store-deleted error,
//!    once for each mode.
//! 4. **Another process appends.** This test binary re-executes itself as a child process
//!    (`<test binary> --exact child_process_entry --nocapture --test-threads=1`, with
//!    `OPOSSUM_SUBSCRIBE_CHILD_ROLE` naming the role; without it `child_process_entry` is a
//!    trivial pass). The child opens the store the parent's subscriber is already waiting on and
//!    appends batches; the subscriber must receive every event, in order, once. With `Watch`
//!    the poll interval is set to an hour, so only the file-change notifications can wake the
//!    subscriber; with `Poll` only the polling can.
//!
//! Nothing here judges by time: every wait has a hang guard that turns a hang into a failure.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "test helpers: a failed expectation is a test failure; the child reports on stdout"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use opossum_core::stream;
use opossum_core::{ErrorKind, EventStore, NewEvent, Payload, Query, ReadOptions, SequencedEvent};
use opossum_fs::{ChangeDetection, Error, FileEventStore, StoreOptions};
use opossum_testkit::streams::{guarded, next_item, take_events, until_true};
use opossum_testkit::{Guarded, Probe, positions, records};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_SUBSCRIBE_CHILD_ROLE";
const STORE_VAR: &str = "OPOSSUM_SUBSCRIBE_CHILD_STORE";

/// The child's appends: batches of 1 to 4 events.
const CHILD_BATCHES: u64 = 60;

fn batch_size(batch: u64) -> u64 {
    1 + batch % 4
}

/// Every event the child appends.
fn child_events() -> u64 {
    (0..CHILD_BATCHES).map(batch_size).sum()
}

/// The payload of the child's events: batch and index in it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    batch: u64,
    k: u64,
}

fn step_event(batch: u64, k: u64) -> NewEvent {
    let payload = Payload::from_value(&Step { batch, k }).expect("encodable payload");
    NewEvent::builder("Step", payload)
        .tag("batch", batch.to_string())
        .build()
        .expect("valid event")
}

/// The options of a store that learns of other processes' appends only by `detection`: the
/// other mechanism is taken out (a watching store's safety-net poll comes once an hour).
fn options(detection: ChangeDetection) -> StoreOptions {
    let poll = match detection {
        ChangeDetection::Watch => Duration::from_secs(3600),
        _ => Duration::from_millis(20),
    };
    StoreOptions::new()
        .change_detection(detection)
        .change_poll_interval(poll)
}

fn fresh_folder() -> (TempDir, PathBuf) {
    let folder = TempDir::new().expect("create a temporary folder");
    let path = std::path::absolute(folder.path())
        .expect("absolute temporary folder")
        .join("store");
    (folder, path)
}

// ---------------------------------------------------------------------------------------------
// 1. The subscription cases on polling stores.

mod polling {
    use super::*;

    /// A new, empty store that polls for other processes' appends.
    fn polling_store() -> Guarded<FileEventStore, TempDir> {
        let (folder, path) = fresh_folder();
        let store = FileEventStore::open_with(path, options(ChangeDetection::Poll))
            .expect("open the store");
        assert_eq!(store.change_detection(), ChangeDetection::Poll);
        Guarded::new(store, folder)
    }

    opossum_testkit::subscription_conformance_tests!(polling_store);
}

// ---------------------------------------------------------------------------------------------
// 2. The mode a store reports.

/// Opens a store with `detection`, drives a subscriber into its wait, and returns what the store
/// reported before and during the wait.
async fn reported_modes(detection: ChangeDetection) -> (ChangeDetection, ChangeDetection) {
    let (_folder, path) = fresh_folder();
    let store = Arc::new(Probe::new(
        FileEventStore::open_with(path, options(detection)).expect("open the store"),
    ));
    let before = store.inner().change_detection();
    let mut live = stream::subscribe(Arc::clone(&store), Query::all(), None);
    let waiting = async {
        until_true("the subscriber waits", || store.waits_in_flight() == 1).await;
        store.inner().change_detection()
    };
    tokio::select! {
        item = next_item(&mut live, "an empty store") => panic!("an empty store yielded {item:?}"),
        during = waiting => (before, during),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn change_detection_reports_the_mode_asked_for() {
    assert_eq!(
        reported_modes(ChangeDetection::Watch).await,
        (ChangeDetection::Watch, ChangeDetection::Watch),
        "a watching store on a local folder keeps watching once its notifications are set up"
    );
    assert_eq!(
        reported_modes(ChangeDetection::Poll).await,
        (ChangeDetection::Poll, ChangeDetection::Poll)
    );
    let (before, during) = reported_modes(ChangeDetection::Auto).await;
    assert_ne!(
        before,
        ChangeDetection::Auto,
        "Auto resolves to a mechanism"
    );
    assert_eq!(before, during);
}

// ---------------------------------------------------------------------------------------------
// 3. A store deleted under a subscriber.

async fn subscriber_of_a_deleted_store(detection: ChangeDetection) {
    let (_folder, path) = fresh_folder();
    let store = Arc::new(Probe::new(
        FileEventStore::open_with(&path, options(detection)).expect("open the store"),
    ));
    let events = (0..3).map(|k| step_event(0, k)).collect();
    store.append(events, None).await.expect("append");
    let mut live = stream::subscribe(Arc::clone(&store), Query::all(), None);
    let stored = take_events(&mut live, 3, "the stored events").await;
    assert_eq!(positions(&stored), [1, 2, 3]);

    let other = FileEventStore::open_with(&path, options(detection)).expect("open a second handle");
    let deleting = async {
        until_true("the subscriber waits", || store.waits_in_flight() == 1).await;
        let deleted = tokio::task::spawn_blocking(move || other.delete());
        guarded("the delete", deleted)
            .await
            .expect("the delete panicked")
            .expect("delete the store");
    };
    let (item, ()) = tokio::join!(
        next_item(&mut live, "the subscriber of a deleted store"),
        deleting
    );
    match item {
        Some(Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Closed, "{e:?}");
            assert!(
                matches!(Error::of(&e), Some(Error::StoreDeleted { .. })),
                "expected StoreDeleted, got {e:?}"
            );
        }
        other => panic!("{detection:?}: the subscriber must end with an error, got {other:?}"),
    }
    assert!(
        next_item(&mut live, "the end after the error")
            .await
            .is_none(),
        "the subscription ends after its error"
    );
    drop(live);
    assert_eq!(store.calls_in_flight(), 0);
    assert!(!path.exists(), "the folder is gone");
    let store = Arc::into_inner(store).expect("the subscription let go of the store");
    drop(store);
    assert!(
        !path.exists(),
        "the deleted folder stays gone once the subscriber's handle closes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watching_subscriber_of_a_deleted_store_ends_with_an_error() {
    subscriber_of_a_deleted_store(ChangeDetection::Watch).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_polling_subscriber_of_a_deleted_store_ends_with_an_error() {
    subscriber_of_a_deleted_store(ChangeDetection::Poll).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Another process appends.

/// Entry point of the child process; a no-op unless `OPOSSUM_SUBSCRIBE_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let store = PathBuf::from(std::env::var(STORE_VAR).expect("child without a store"));
    match role.as_str() {
        "appender" => appender(&store),
        other => panic!("unknown {ROLE_VAR} {other:?}"),
    }
}

/// Appends [`CHILD_BATCHES`] batches, one at a time, then reports the last position.
fn appender(path: &Path) {
    let store = FileEventStore::open(path).expect("the child opens the store");
    let mut last = None;
    for batch in 0..CHILD_BATCHES {
        let events = (0..batch_size(batch))
            .map(|k| step_event(batch, k))
            .collect();
        last = Some(
            store
                .append_blocking(events, None)
                .expect("the child appends"),
        );
    }
    store.close().expect("the child closes the store");
    println!("LAST {}", last.expect("the child appended").get());
}

fn child(role: &str, store: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(STORE_VAR, store)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// The child's steps as the events carry them.
fn steps(events: &[SequencedEvent]) -> Vec<Step> {
    events
        .iter()
        .map(|e| e.event.payload().decode().expect("a step payload"))
        .collect()
}

async fn subscriber_follows_another_process(detection: ChangeDetection) {
    let (_folder, path) = fresh_folder();
    let store = Arc::new(Probe::new(
        FileEventStore::open_with(&path, options(detection)).expect("open the store"),
    ));
    assert_eq!(store.inner().change_detection(), detection);
    let total = child_events();
    let mut live = stream::subscribe(Arc::clone(&store), Query::all(), None);
    let mut batch_one = stream::subscribe(
        Arc::clone(&store),
        opossum_testkit::tags_query(&[("batch", "1")]),
        None,
    );
    let subscriber = tokio::spawn(async move {
        let count = usize::try_from(total).expect("small");
        take_events(&mut live, count, "the child's events").await
    });
    let query_subscriber = tokio::spawn(async move {
        let count = usize::try_from(batch_size(1)).expect("small");
        take_events(&mut batch_one, count, "the child's batch 1").await
    });
    // Both subscribers wait on the empty store before the child exists: every event reaches
    // them through the change detection.
    until_true("both subscribers wait", || store.waits_in_flight() == 2).await;
    assert_eq!(store.inner().change_detection(), detection);

    let output = {
        let mut command = child("appender", &path);
        let started = command.spawn().expect("start the child");
        guarded(
            "the child",
            tokio::task::spawn_blocking(move || started.wait_with_output()),
        )
        .await
        .expect("the waiting task panicked")
        .expect("wait for the child")
    };
    assert!(
        output.status.success(),
        "the child failed: {:?}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reported = stdout
        .lines()
        .find_map(|l| l.split_once("LAST ").map(|(_, n)| n))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(
        reported,
        Some(total),
        "the child's last position; its output: {stdout}"
    );

    let got = guarded("the subscriber", subscriber)
        .await
        .expect("the subscriber panicked");
    assert_eq!(
        positions(&got),
        (1..=total).collect::<Vec<_>>(),
        "{detection:?}: every position once, in order"
    );
    let expected: Vec<Step> = (0..CHILD_BATCHES)
        .flat_map(|batch| (0..batch_size(batch)).map(move |k| Step { batch, k }))
        .collect();
    assert_eq!(
        steps(&got),
        expected,
        "the child's events in the order it appended"
    );
    let stored = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(records(&got), records(&stored), "the events as stored");

    let batch_one = guarded("the query subscriber", query_subscriber)
        .await
        .expect("the query subscriber panicked");
    assert_eq!(positions(&batch_one), [2, 3], "only the events of batch 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watching_subscriber_receives_another_process_appends() {
    subscriber_follows_another_process(ChangeDetection::Watch).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_polling_subscriber_receives_another_process_appends() {
    subscriber_follows_another_process(ChangeDetection::Poll).await;
}
