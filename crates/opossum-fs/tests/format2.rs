//! Stores written in format 2 (before the store recorded its commit time, free metadata
//! fields, versions and sealed fields) open as they are, read with what they hold, verify, and
//! move forward in format 3 in the same segment.
//!
//! The format-2 log is written the way format 2 wrote it: the shared line encoding without a
//! commit time (the bytes of the format-2 snapshot test), one append per line, each after the
//! previous was durable; the store has no anchor or index yet, which opening re-derives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use opossum_core::line::{ChainHash, encode_line};
use opossum_core::{NewEvent, Payload, Position, Query, ReadOptions};
use opossum_fs::{FileEventStore, verify_folder};

fn event(n: u64) -> NewEvent {
    NewEvent::builder(
        "Reading",
        Payload::from_json(&format!(r#"{{"n":{n}}}"#)).unwrap(),
    )
    .tag("n", n.to_string())
    .user_id("lab-2")
    .timestamp("2026-02-01T08:00:00Z".parse().unwrap())
    .build()
    .unwrap()
}

fn format_2_store(dir: &Path, events: u64) -> Vec<u8> {
    let mut log = Vec::new();
    let mut prev = ChainHash::GENESIS;
    for n in 1..=events {
        let p = Position::new(n).unwrap();
        prev = encode_line(&mut log, prev, p, p, n - 1, None, &event(n)).unwrap();
    }
    let text = String::from_utf8(log.clone()).unwrap();
    assert!(!text.contains("stored_at") && !text.contains("\"version\""));
    fs::create_dir_all(dir.join("events")).unwrap();
    fs::write(dir.join("events").join("00000000000000000001.jsonl"), &log).unwrap();
    log
}

#[test]
fn a_format_2_store_opens_reads_verifies_and_moves_forward() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("old");
    let old = format_2_store(&dir, 4);
    assert!(verify_folder(&dir).unwrap().is_intact());

    let store = FileEventStore::open(&dir).unwrap();
    let read = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .unwrap();
    assert_eq!(read.len(), 4);
    for (n, e) in (1..).zip(&read) {
        assert_eq!(e.stored_at, None);
        assert_eq!(e.event.version(), 1);
        assert!(e.event.metadata().fields.is_empty());
        assert_eq!(e.event, event(n));
    }
    let fifth = NewEvent::builder("Reading", Payload::from_json(r#"{"n":5}"#).unwrap())
        .field("reason", "recalibrated")
        .build()
        .unwrap();
    store.append_blocking(vec![fifth.clone()], None).unwrap();
    store.close().unwrap();

    let log = fs::read(dir.join("events").join("00000000000000000001.jsonl")).unwrap();
    assert_eq!(
        &log[..old.len()],
        &old[..],
        "the format-2 lines are kept byte for byte"
    );
    let report = verify_folder(&dir).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 5);

    let store = FileEventStore::open(&dir).unwrap();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    let read = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .unwrap();
    assert_eq!(read[4].event, fifth);
    assert!(read[4].stored_at.is_some());
}
