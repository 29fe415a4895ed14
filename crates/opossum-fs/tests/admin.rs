//! Admin operations and the locking and grouping guarantees of the append path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use opossum_core::{AppendCondition, EventStore, NewEvent, Payload, Query, ReadOptions, Tag};
use opossum_fs::{Error, FileEventStore, StoreOptions};

fn event(tag: &str) -> NewEvent {
    NewEvent::builder("Thing", Payload::from_json(r#"{"x":1}"#).unwrap())
        .tag("k", tag)
        .build()
        .unwrap()
}

/// Holds the store's lock file the way another process would.
fn hold_lock(store_dir: &std::path::Path) -> fd_lock::RwLock<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store_dir.join("store.lock"))
        .unwrap();
    fd_lock::RwLock::new(file)
}

#[test]
fn stats_report_count_head_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("s")).unwrap();
    let empty = store.stats().unwrap();
    assert_eq!((empty.event_count, empty.head), (0, None));
    store
        .append_blocking(vec![event("a"), event("b")], None)
        .unwrap();
    store.append_blocking(vec![event("c")], None).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.event_count, 3);
    assert_eq!(stats.head.map(|p| p.get()), Some(3));
    assert_eq!(stats.segments, 1);
    assert_eq!(stats.appends_committed, 2);
    let log = std::fs::metadata(store.path().join("events/00000000000000000001.jsonl")).unwrap();
    assert!(stats.size_on_disk >= log.len(), "{stats:?}");
}

#[test]
fn an_append_waits_for_the_lock_and_times_out_naming_file_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new().lock_timeout(Duration::from_millis(200));
    let store = FileEventStore::open_with(dir.path().join("s"), options).unwrap();
    let mut other = hold_lock(store.path());
    let guard = other.try_write().unwrap();
    let err = Error::from(store.append_blocking(vec![event("a")], None).unwrap_err());
    match &err {
        Error::LockTimeout { path, waited, .. } => {
            assert!(path.ends_with("store.lock"));
            assert!(*waited >= Duration::from_millis(200));
        }
        other => panic!("expected LockTimeout, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("store.lock") && message.contains("lock_timeout"));
    assert_eq!(err.kind(), opossum_core::ErrorKind::LockTimeout);
    drop(guard);
    assert_eq!(
        store.append_blocking(vec![event("a")], None).unwrap().get(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_appends_share_a_commit_and_are_checked_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileEventStore::open(dir.path().join("s")).unwrap());
    // Another "process" holds the lock, so every append queues behind the first.
    let mut other = hold_lock(store.path());
    let guard = other.try_write().unwrap();
    let unique = AppendCondition::new(Query::from_tags([Tag::new("k", "same").unwrap()]).unwrap());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            let unique = unique.clone();
            tokio::spawn(async move { store.append(vec![event("same")], Some(unique)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(guard);
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_condition_failed(), "{e}"),
        }
    }
    // Each append is checked against the ones accepted before it in its group.
    assert_eq!(ok, 1);
    let stats = store.stats().unwrap();
    assert_eq!(stats.event_count, 1);
    assert!(
        stats.group_commits < 10,
        "10 queued appends should share commits: {stats:?}"
    );
}

#[test]
fn delete_removes_the_folder_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new().lock_timeout(Duration::from_millis(100));
    let store = FileEventStore::open_with(dir.path().join("s"), options.clone()).unwrap();
    store.append_blocking(vec![event("a")], None).unwrap();
    let path = store.path().to_path_buf();

    // While another process holds the lock, delete waits and gives up, deleting nothing. (The
    // store's writer may keep the lock a moment after its append: wait for it.)
    let mut other = hold_lock(&path);
    let guard = other.write().unwrap();
    let err = store.delete().unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    drop(guard);
    drop(other);
    assert!(path.join("events").is_dir());

    let store = FileEventStore::open_with(&path, options).unwrap();
    assert_eq!(
        store
            .read_blocking(&Query::all(), ReadOptions::new())
            .unwrap()
            .len(),
        1
    );
    store.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn appends_after_close_of_another_handle_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("s");
    let a = FileEventStore::open(&folder).unwrap();
    let b = FileEventStore::open(&folder).unwrap();
    a.append_blocking(vec![event("1")], None).unwrap();
    // `b` has not read anything yet; its append must land after `a`'s.
    assert_eq!(b.append_blocking(vec![event("2")], None).unwrap().get(), 2);
    assert_eq!(
        a.read_blocking(&Query::all(), ReadOptions::new())
            .unwrap()
            .len(),
        2
    );
    assert!(b.verify().unwrap().is_intact());
}
