//! Stores written in format 1 (lines without `synced_to`, a 128-byte unchecked `head.json`) open
//! as they are, read and verify, and move forward on the first append.
//!
//! A format-1 store is made from a format-2 one by rewriting its files the way format 1 wrote
//! them: each line without its `synced_to` field (with the hash chain recomputed over the new
//! bytes), and the anchor as one padded 128-byte JSON record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed expectation is a test failure"
)]

use std::fs;
use std::path::{Path, PathBuf};

use opossum_core::{NewEvent, Payload, Query, ReadOptions};
use opossum_fs::{Error, FileEventStore, Repair, verify_folder};
use sha2::{Digest, Sha256};

const NAME: &str = "old";

fn event(n: u64) -> NewEvent {
    NewEvent::builder(
        "Reading",
        Payload::from_json(&format!(r#"{{"n":{n}}}"#)).unwrap(),
    )
    .tag("n", n.to_string())
    .build()
    .unwrap()
}

fn segment(store: &Path) -> PathBuf {
    store.join("events").join("00000000000000000001.jsonl")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites the store's only segment and its anchor in format 1; returns the head hash.
fn to_format_1(store: &Path) -> String {
    let text = fs::read_to_string(segment(store)).unwrap();
    let mut prev = [0u8; 32];
    let mut out = String::new();
    let mut last = 0;
    for line in text.lines() {
        let body_end = line.len() - 75;
        let body = &line[..body_end];
        let without = match body.find(",\"synced_to\":") {
            Some(at) => body[..at].to_owned(),
            None => body.to_owned(),
        };
        let mut h = Sha256::new();
        h.update(prev);
        h.update(without.as_bytes());
        prev = h.finalize().into();
        out.push_str(&format!("{without},\"hash\":\"{}\"}}\n", hex(&prev)));
        last += 1;
    }
    fs::write(segment(store), out).unwrap();
    let anchor = format!(
        "{{\"position\":{last},\"hash\":\"{}\",\"synced\":true}}",
        hex(&prev)
    );
    fs::write(store.join("head.json"), format!("{anchor:<127}\n")).unwrap();
    let _ = fs::remove_dir_all(store.join("index"));
    hex(&prev)
}

fn format_1_store(root: &Path, events: u64) -> PathBuf {
    let store = FileEventStore::open(root.join(NAME)).unwrap();
    for n in 1..=events {
        store.append_blocking(vec![event(n)], None).unwrap();
    }
    store.close().unwrap();
    let dir = root.join(NAME);
    to_format_1(&dir);
    assert!(
        !fs::read_to_string(segment(&dir))
            .unwrap()
            .contains("synced_to")
    );
    dir
}

fn payloads(store: &FileEventStore) -> Vec<String> {
    store
        .read_blocking(&Query::all(), ReadOptions::new())
        .unwrap()
        .iter()
        .map(|e| e.event.payload().as_json().to_owned())
        .collect()
}

#[test]
fn a_format_1_store_opens_reads_verifies_and_moves_forward() {
    let root = tempfile::tempdir().unwrap();
    let dir = format_1_store(root.path(), 5);
    assert!(verify_folder(&dir).unwrap().is_intact());

    let store = FileEventStore::open(root.path().join(NAME)).unwrap();
    assert_eq!(payloads(&store).len(), 5);
    // Rewritten in format 2 at once: one 512-byte slot written, the second to come.
    let anchor = fs::read_to_string(dir.join("head.json")).unwrap();
    assert_eq!(anchor.len(), 512, "{anchor}");
    assert!(anchor.starts_with("{\"seq\":1,\"store\":\""), "{anchor}");
    assert!(anchor.contains(",\"position\":5,"), "{anchor}");
    assert_eq!(
        store.append_blocking(vec![event(6)], None).unwrap().get(),
        6
    );
    store.close().unwrap();

    let text = fs::read_to_string(segment(&dir)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[..5].iter().all(|l| !l.contains("synced_to")));
    assert!(lines[5].contains("\"synced_to\":5"), "{}", lines[5]);
    let report = verify_folder(&dir).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 6);
    let store = FileEventStore::open(root.path().join(NAME)).unwrap();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert_eq!(payloads(&store).len(), 6);
}

/// Format 1 wrote its anchor in place without a checksum: a torn write of it splices the new
/// position with the old hash. That is not proof of rewritten history: the anchor is restored.
#[test]
fn a_torn_format_1_anchor_is_restored_not_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = format_1_store(root.path(), 4);
    let anchor = fs::read_to_string(dir.join("head.json")).unwrap();
    let other_hash = "ab".repeat(32);
    let start = anchor.find("\"hash\":\"").unwrap() + 8;
    let spliced = format!("{}{other_hash}{}", &anchor[..start], &anchor[start + 64..]);
    fs::write(dir.join("head.json"), spliced).unwrap();

    let store = FileEventStore::open(root.path().join(NAME)).unwrap();
    assert!(
        store
            .recovery()
            .repairs
            .iter()
            .any(|r| matches!(r, Repair::AnchorRestored { .. })),
        "{:?}",
        store.recovery()
    );
    assert_eq!(payloads(&store).len(), 4);
    assert!(store.verify().unwrap().is_intact());
}

/// The rule of format 1 still holds for its lines: damage followed by intact format-1 lines is
/// damage to committed events, refused, not cut.
#[test]
fn damage_before_format_1_lines_is_refused_and_a_torn_format_1_tail_is_cut() {
    let root = tempfile::tempdir().unwrap();
    let dir = format_1_store(root.path(), 6);
    fs::remove_file(dir.join("head.json")).unwrap();
    let text = fs::read(segment(&dir)).unwrap();
    let second_line = text.iter().position(|b| *b == b'\n').unwrap() + 1;

    let mut damaged = text.clone();
    damaged[second_line + 5] = b'#';
    fs::write(segment(&dir), &damaged).unwrap();
    let error = FileEventStore::open(root.path().join(NAME)).unwrap_err();
    assert!(matches!(error, Error::CorruptLog { .. }), "{error}");
    assert_eq!(fs::read(segment(&dir)).unwrap(), damaged, "nothing changed");

    // The last line half written: a torn tail, cut.
    let mut torn = text.clone();
    torn.truncate(text.len() - 40);
    fs::write(segment(&dir), &torn).unwrap();
    let store = FileEventStore::open(root.path().join(NAME)).unwrap();
    assert_eq!(payloads(&store).len(), 5);
    assert!(
        store
            .recovery()
            .repairs
            .iter()
            .any(|r| matches!(r, Repair::TornTailCut { .. }))
    );
}
