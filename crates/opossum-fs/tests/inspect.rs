//! What inspection tools build on: read-only opening that changes nothing, the stored lines
//! with their chain links, the event types, and the store's identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use opossum_core::{ErrorKind, NewEvent, Payload, Query, ReadOptions, Tag};
use opossum_fs::{Error, FileEventStore, StoreOptions, chain_hash};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(kind: &str, i: u64) -> NewEvent {
    NewEvent::builder(
        kind,
        Payload::from_json(&format!(r#"{{"i": {i}}}"#)).unwrap(),
    )
    .tag("i", i.to_string())
    .tag("odd", (i % 2).to_string())
    .build()
    .unwrap()
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn read_only() -> StoreOptions {
    StoreOptions::new().read_only(true)
}

#[test]
fn read_only_opening_needs_a_store_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let err = FileEventStore::open_with(&missing, read_only()).unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!missing.exists());
    // A folder without events/ is no store either.
    std::fs::create_dir(&missing).unwrap();
    assert!(matches!(
        FileEventStore::open_with(&missing, read_only()),
        Err(Error::NotAStore { .. })
    ));
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);
}

#[test]
fn read_only_opening_leaves_a_torn_tail_and_everything_else_as_it_was() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = FileEventStore::open(dir.path().join("s"))?;
    store.append_blocking((1..=5).map(|i| event("T", i)).collect(), None)?;
    let path = store.path().to_path_buf();
    drop(store);
    // A torn write at the end of the log, and no index snapshot.
    let segment = path.join("events/00000000000000000001.jsonl");
    let mut bytes = std::fs::read(&segment)?;
    bytes.extend_from_slice(br#"{"position":6,"type":"T","ta"#);
    std::fs::write(&segment, &bytes)?;
    std::fs::remove_dir_all(path.join("index"))?;
    let before = files(&path);

    let store = FileEventStore::open_with(&path, read_only())?;
    assert!(store.is_read_only());
    assert_eq!(
        store
            .read_blocking(&Query::all(), ReadOptions::new())?
            .len(),
        5
    );
    let err = Error::from(
        store
            .append_blocking(vec![event("T", 6)], None)
            .unwrap_err(),
    );
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    assert!(store.verify()?.uncommitted_bytes > 0);
    drop(store);
    assert_eq!(files(&path), before, "a read-only open changed the folder");
    Ok(())
}

#[test]
fn a_read_only_handle_sees_what_a_writer_commits_later() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = FileEventStore::open(dir.path().join("s"))?;
    writer.append_blocking(vec![event("T", 1)], None)?;
    let reader = FileEventStore::open_with(writer.path(), read_only())?;
    writer.append_blocking(vec![event("T", 2), event("T", 3)], None)?;
    let stored = reader.read_stored(&Query::all(), ReadOptions::new())?;
    assert_eq!(stored.len(), 3);
    Ok(())
}

#[test]
fn stored_lines_are_the_bytes_of_the_log_with_their_chain_links() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = FileEventStore::open(dir.path().join("s"))?;
    for i in 1..=20 {
        let kind = if i % 3 == 0 { "Third" } else { "Other" };
        store.append_blocking(vec![event(kind, i)], None)?;
    }
    let log = std::fs::read_to_string(store.path().join("events/00000000000000000001.jsonl"))?;
    let lines: Vec<&str> = log.lines().collect();

    let all = store.read_stored(&Query::all(), ReadOptions::new())?;
    assert_eq!(all.len(), 20);
    let genesis = "0".repeat(64);
    for (i, stored) in all.iter().enumerate() {
        assert_eq!(stored.line, lines[i], "line {}", i + 1);
        assert_eq!(stored.event.position.get(), i as u64 + 1);
        let previous = if i == 0 { &genesis } else { &all[i - 1].hash };
        assert_eq!(&stored.previous_hash, previous);
        assert_eq!(
            chain_hash(&stored.previous_hash, &stored.line).as_ref(),
            Some(&stored.hash)
        );
        assert!(
            stored
                .line
                .ends_with(&format!("\"hash\":\"{}\"}}", stored.hash))
        );
        assert_eq!(
            &log[stored.offset as usize..stored.offset as usize + stored.line.len()],
            stored.line
        );
        assert!(stored.file.ends_with("00000000000000000001.jsonl"));
    }

    // A filtered read still carries each event's own predecessor, not the previous match.
    let thirds = store.read_stored(&Query::from_event_types(["Third"])?, ReadOptions::new())?;
    assert_eq!(thirds.len(), 6);
    for stored in &thirds {
        let p = stored.event.position.get() as usize;
        assert_eq!(stored.previous_hash, all[p - 2].hash);
    }
    // Descending, limited, by tag, after a position.
    let odd = store.read_stored(
        &Query::from_tags([Tag::new("odd", "1")?])?,
        ReadOptions::new()
            .descending()
            .limit(3)
            .after(opossum_core::Position::new(10)?),
    )?;
    let positions: Vec<u64> = odd.iter().map(|e| e.event.position.get()).collect();
    assert_eq!(positions, vec![19, 17, 15]);
    assert_eq!(odd[0].previous_hash, all[17].hash);
    assert!(
        store
            .read_stored(&Query::all(), ReadOptions::new().limit(0))?
            .is_empty()
    );

    // An edited line no longer matches its hash.
    let edited = all[4].line.replacen("\"i\": 5", "\"i\": 6", 1);
    assert_ne!(
        chain_hash(&all[4].previous_hash, &edited),
        Some(all[4].hash.clone())
    );
    assert_eq!(chain_hash(&all[4].previous_hash, "{}"), None);
    assert_eq!(chain_hash("xyz", &all[4].line), None);
    Ok(())
}

#[test]
fn event_types_are_counted_from_the_index_and_the_identity_is_kept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = FileEventStore::open(dir.path().join("s"))?;
    let at_creation = store.identity()?;
    assert!(store.event_types()?.is_empty());
    store.append_blocking(vec![event("A", 1), event("B", 2), event("A", 3)], None)?;
    assert_eq!(
        store.event_types()?,
        vec![("A".to_owned(), 2), ("B".to_owned(), 1)]
    );
    let identity = store.identity()?.unwrap();
    assert_eq!(identity.len(), 32);
    assert!(identity.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        at_creation.is_none_or(|id| id == identity),
        "the identity changed"
    );
    let path = store.path().to_path_buf();
    drop(store);
    let again = FileEventStore::open_with(&path, read_only())?;
    assert_eq!(again.identity()?, Some(identity.clone()));
    let backup = again.backup(&dir.path().join("copy"))?;
    let copy = FileEventStore::open_with(&backup.path, read_only())?;
    assert_ne!(
        copy.identity()?,
        Some(identity),
        "a backup is a store of its own"
    );
    Ok(())
}
