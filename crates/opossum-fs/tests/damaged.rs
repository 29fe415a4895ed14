//! Bad input and damaged stores: each case gets a typed error or a documented repair, and
//! nothing already stored is lost.
//!
//! The damage is done with the store closed, by editing its files the way a crash, a full
//! disk, a careless person or an attacker would. The file layout these tests rely on is the one
//! `docs/format.md` specifies: `events/*.jsonl` segment files with one JSON event per line,
//! `head.json`, `index/` and `recovered/`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use opossum_core::{
    NewEvent, Payload, Position, Query, QueryItem, ReadOptions, SequencedEvent, Tag,
};
use opossum_fs::{BreakKind, ChainBreak, Error, FileEventStore, Repair, verify_folder};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "store";

fn open(root: &Path) -> Result<FileEventStore, Error> {
    FileEventStore::open(root.join(NAME))
}

/// Event `n` of the standard test log: type, tags and payload all derive from `n`.
fn numbered(n: u64) -> NewEvent {
    let event_type = ["Alpha", "Beta", "Gamma"][(n % 3) as usize];
    let parity = if n % 2 == 0 { "even" } else { "odd" };
    let payload = format!(
        r#"{{"n":{n},"amount":{},"note":"event number {n:03}"}}"#,
        1000 + n
    );
    NewEvent::builder(
        event_type,
        Payload::from_json(&payload).expect("valid JSON"),
    )
    .tag("n", n.to_string())
    .tag("parity", parity)
    .tag("group", (n % 5).to_string())
    .build()
    .expect("valid event")
}

/// Appends events `numbers` one append each, and returns them.
fn append_numbered(
    store: &FileEventStore,
    numbers: std::ops::RangeInclusive<u64>,
) -> Result<Vec<NewEvent>, Error> {
    let mut appended = Vec::new();
    for n in numbers {
        let event = numbered(n);
        store.append_blocking(vec![event.clone()], None)?;
        appended.push(event);
    }
    Ok(appended)
}

/// A closed store holding `numbered(1..=count)`.
fn store_with(root: &Path, count: u64) -> Result<Vec<NewEvent>, Error> {
    let store = open(root)?;
    let events = append_numbered(&store, 1..=count)?;
    store.close()?;
    Ok(events)
}

fn read_all(store: &FileEventStore) -> Result<Vec<SequencedEvent>, Error> {
    store
        .read_blocking(&Query::all(), ReadOptions::new())
        .map_err(Error::from)
}

/// Asserts `actual` is exactly `expected`, at positions 1, 2, 3, …
fn assert_events(actual: &[SequencedEvent], expected: &[NewEvent]) {
    assert_eq!(actual.len(), expected.len(), "number of events");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.position.get(), i as u64 + 1, "position of event {i}");
        assert_eq!(&a.event, e, "event at position {}", i + 1);
    }
}

fn assert_intact(store: &FileEventStore, count: u64) -> TestResult {
    let report = store.verify()?;
    assert!(report.is_intact(), "verify: {report:?}");
    assert_eq!(report.events_checked, count, "verify: {report:?}");
    Ok(())
}

/// The store's first chain break, asserting there is one.
fn chain_break(store: &FileEventStore) -> Result<ChainBreak, Box<dyn std::error::Error>> {
    let report = store.verify()?;
    assert!(!report.is_intact(), "verify missed the damage: {report:?}");
    Ok(report
        .problem
        .ok_or("a report that is not intact names its problem")?)
}

/// The first chain break `verify_folder` finds in a store that may not open.
fn folder_break(store_dir: &Path) -> Result<ChainBreak, Box<dyn std::error::Error>> {
    let report = verify_folder(store_dir)?;
    assert!(!report.is_intact(), "verify missed the damage: {report:?}");
    Ok(report
        .problem
        .ok_or("a report that is not intact names its problem")?)
}

// ---------------------------------------------------------------------------------------------
// Poking at the files.

fn segment_files(store_dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files: Vec<PathBuf> = fs::read_dir(store_dir.join("events"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    Ok(files)
}

/// One line of a segment file: bytes `start..end` (`end` past its newline, if it has one).
#[derive(Clone, Debug)]
struct LogLine {
    file: PathBuf,
    start: usize,
    end: usize,
    position: u64,
}

fn log_lines(store_dir: &Path) -> Result<Vec<LogLine>, Box<dyn std::error::Error>> {
    let mut lines = Vec::new();
    for file in segment_files(store_dir)? {
        let bytes = fs::read(&file)?;
        let mut start = 0;
        while start < bytes.len() {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| start + i + 1);
            let value: serde_json::Value = serde_json::from_slice(&bytes[start..end])?;
            let position = value["position"]
                .as_u64()
                .ok_or("a line without position")?;
            lines.push(LogLine {
                file: file.clone(),
                start,
                end,
                position,
            });
            start = end;
        }
    }
    Ok(lines)
}

fn line_of(store_dir: &Path, position: u64) -> Result<LogLine, Box<dyn std::error::Error>> {
    log_lines(store_dir)?
        .into_iter()
        .find(|l| l.position == position)
        .ok_or_else(|| format!("no line holds position {position}").into())
}

fn overwrite(file: &Path, offset: usize, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(file)?;
    f.seek(SeekFrom::Start(offset as u64))?;
    f.write_all(bytes)
}

fn truncate(file: &Path, len: usize) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(file)?
        .set_len(len as u64)
}

/// Every file under `dir` (recursively), by path relative to `dir`, with its bytes.
fn read_tree(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                tree.insert(relative, fs::read(&path)?);
            }
        }
    }
    Ok(tree)
}

fn events_bytes(store_dir: &Path) -> std::io::Result<BTreeMap<PathBuf, Vec<u8>>> {
    read_tree(&store_dir.join("events"))
}

/// Everything of a store but its log (and its lock and salvage folder): the head anchor, the
/// index and whatever else the engine keeps beside the log.
struct StateFiles(BTreeMap<PathBuf, Vec<u8>>);

fn is_state_file(relative: &Path) -> bool {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_owned());
    !matches!(
        first.as_ref().and_then(|f| f.to_str()),
        Some("events" | "recovered" | "store.lock")
    )
}

impl StateFiles {
    fn take(store_dir: &Path) -> std::io::Result<StateFiles> {
        let mut tree = read_tree(store_dir)?;
        tree.retain(|relative, _| is_state_file(relative));
        Ok(StateFiles(tree))
    }

    /// Puts the state files back as they were, as if nothing after `take` had reached them.
    fn restore(&self, store_dir: &Path) -> std::io::Result<()> {
        for relative in read_tree(store_dir)?.keys().filter(|r| is_state_file(r)) {
            if !self.0.contains_key(relative) {
                fs::remove_file(store_dir.join(relative))?;
            }
        }
        for (relative, bytes) in &self.0 {
            let path = store_dir.join(relative);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, bytes)?;
        }
        Ok(())
    }
}

/// True when some file under `recovered/` holds `bytes`.
fn recovered_holds(store_dir: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let dir = store_dir.join("recovered");
    if !dir.exists() {
        return Ok(false);
    }
    Ok(read_tree(&dir)?
        .values()
        .any(|content| content.windows(bytes.len()).any(|w| w == bytes)))
}

/// Every segment file is whole lines of JSON, each ending in a newline.
fn assert_well_formed(store_dir: &Path) -> TestResult {
    for file in segment_files(store_dir)? {
        let bytes = fs::read(&file)?;
        assert!(
            bytes.last().is_none_or(|&b| b == b'\n'),
            "{} ends inside a line",
            file.display()
        );
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (a) A torn tail.

/// The state of a crash while event 10 was being written: its line is cut in half, and the head
/// anchor and index are as they were after event 9 (they are written after the log).
#[test]
fn torn_last_line_after_a_crash_is_cut_saved_and_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let earlier = store_with(dir.path(), 9)?;
    let store_dir = dir.path().join(NAME);
    let before_event_10 = StateFiles::take(&store_dir)?;
    let store = open(dir.path())?;
    store.append_blocking(vec![numbered(10)], None)?;
    store.close()?;
    before_event_10.restore(&store_dir)?;

    let line = line_of(&store_dir, 10)?;
    let cut_at = line.start + (line.end - line.start) / 2;
    let torn = fs::read(&line.file)?[line.start..cut_at].to_vec();
    truncate(&line.file, cut_at)?;

    let store = open(dir.path())?;
    let repairs = &store.recovery().repairs;
    assert!(!repairs.is_empty(), "cutting a torn tail is reported");
    eprintln!("repairs: {repairs:?}");
    assert_events(&read_all(&store)?, &earlier);
    assert_intact(&store, 9)?;
    assert!(
        recovered_holds(&store_dir, &torn)?,
        "the torn bytes are saved under recovered/"
    );
    assert_eq!(
        fs::metadata(&line.file)?.len(),
        line.start as u64,
        "the log ends where event 10 began"
    );

    // Position 10 was never committed, so the next append takes it.
    let again = numbered(10);
    assert_eq!(store.append_blocking(vec![again.clone()], None)?.get(), 10);
    store.close()?;
    let store = open(dir.path())?;
    assert!(
        store.recovery().repairs.is_empty(),
        "nothing left to repair"
    );
    let mut expected = earlier;
    expected.push(again);
    assert_events(&read_all(&store)?, &expected);
    assert_intact(&store, 10)?;
    assert_well_formed(&store_dir)
}

/// Half of the last line of a cleanly closed store is cut off. The head anchor records event 10
/// as committed and synced, so this is damage after the fact, not a torn write: open refuses
/// with a typed error and changes nothing, and `verify_folder` reports the loss.
#[test]
fn torn_last_line_behind_the_anchor_opens_as_a_copy_and_verify_reports_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with(dir.path(), 10)?;
    let store_dir = dir.path().join(NAME);
    let line = line_of(&store_dir, 10)?;
    truncate(&line.file, line.start + (line.end - line.start) / 2)?;
    // Before it is opened, the folder verifies as truncated ...
    let problem = folder_break(&store_dir)?;
    assert!(matches!(problem.kind, BreakKind::Truncated), "{problem:?}");
    assert_eq!(problem.position, 10, "{problem:?}");

    // ... and it opens as a copy taken while appends ran would: from the log, with the cut
    // bytes and the old anchor kept and reported.
    let store = open(dir.path())?;
    let repairs = &store.recovery().repairs;
    assert!(
        repairs
            .iter()
            .any(|r| matches!(r, Repair::TornTailCut { .. })),
        "{repairs:?}"
    );
    let saved = repairs
        .iter()
        .find_map(|r| match r {
            Repair::AnchorAheadOfLog {
                anchored: 10,
                found: 9,
                saved_to,
            } => Some(saved_to.clone()),
            _ => None,
        })
        .ok_or("the anchor ahead of the log is reported")?;
    assert!(saved.exists());
    assert_eq!(read_all(&store)?.len(), 9);
    // The truncation stays visible to the audit, also after more appends.
    let problem = chain_break(&store)?;
    assert!(matches!(problem.kind, BreakKind::Truncated), "{problem:?}");
    store.append_blocking(vec![numbered(100), numbered(101)], None)?;
    let problem = chain_break(&store)?;
    assert!(matches!(problem.kind, BreakKind::Truncated), "{problem:?}");
    assert!(problem.detail.contains("recovered"), "{problem:?}");
    store.close()?;
    let again = open(dir.path())?;
    assert!(again.recovery().is_clean(), "{:?}", again.recovery());
    Ok(())
}

/// A crash left the last batch with every byte but its final newline, and the head anchor from
/// before the batch. The batch was never acknowledged, so keeping it and dropping it are both
/// correct — but only whole, and the next append must start on a fresh line.
#[test]
fn last_batch_without_final_newline_after_a_crash_is_all_or_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut events = store_with(dir.path(), 7)?;
    let store_dir = dir.path().join(NAME);
    let before_batch = StateFiles::take(&store_dir)?;
    let batch: Vec<NewEvent> = (8..=10).map(numbered).collect();
    let store = open(dir.path())?;
    assert_eq!(store.append_blocking(batch.clone(), None)?.get(), 10);
    store.close()?;
    before_batch.restore(&store_dir)?;
    let last = line_of(&store_dir, 10)?;
    assert_eq!(fs::read(&last.file)?.last(), Some(&b'\n'));
    truncate(&last.file, last.end - 1)?;

    let store = open(dir.path())?;
    eprintln!("repairs: {:?}", store.recovery().repairs);
    let found = read_all(&store)?;
    match found.len() {
        10 => events.extend(batch),
        7 => {
            assert!(
                !store.recovery().repairs.is_empty(),
                "dropping a batch is reported"
            );
            let first = line_of(&store_dir, 8);
            assert!(first.is_err(), "the dropped batch left the log");
        }
        n => panic!("the batch of 3 is partly visible: {n} events"),
    }
    assert_events(&found, &events);
    assert_intact(&store, events.len() as u64)?;

    let next = numbered(99);
    let position = store.append_blocking(vec![next.clone()], None)?;
    assert_eq!(position.get(), events.len() as u64 + 1);
    store.close()?;
    events.push(next);
    let store = open(dir.path())?;
    assert!(
        store.recovery().repairs.is_empty(),
        "nothing left to repair"
    );
    assert_events(&read_all(&store)?, &events);
    assert_intact(&store, events.len() as u64)?;
    assert_well_formed(&store_dir)
}

/// The final newline of a cleanly closed store is lost, but every byte of every event is there
/// and hash-valid. Nothing is cut: `verify_folder` finds the log intact, and open writes the
/// newline back (reporting it) so the next append starts on a fresh line.
#[test]
fn last_batch_without_final_newline_of_a_closed_store_gets_its_newline_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut events = store_with(dir.path(), 7)?;
    let store_dir = dir.path().join(NAME);
    let store = open(dir.path())?;
    let batch: Vec<NewEvent> = (8..=10).map(numbered).collect();
    store.append_blocking(batch.clone(), None)?;
    store.close()?;
    events.extend(batch);
    let last = line_of(&store_dir, 10)?;
    truncate(&last.file, last.end - 1)?;

    let report = verify_folder(&store_dir)?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.events_checked, report.uncommitted_bytes), (10, 0));

    let store = open(dir.path())?;
    let repairs = &store.recovery().repairs;
    assert!(
        repairs
            .iter()
            .any(|r| matches!(r, Repair::NewlineRestored { offset, .. } if *offset == last.end as u64 - 1)),
        "{repairs:?}"
    );
    assert_eq!(fs::read(&last.file)?.last(), Some(&b'\n'));
    assert_events(&read_all(&store)?, &events);
    let next = numbered(11);
    assert_eq!(store.append_blocking(vec![next.clone()], None)?.get(), 11);
    events.push(next);
    assert_intact(&store, 11)?;
    store.close()?;
    let store = open(dir.path())?;
    assert!(
        store.recovery().repairs.is_empty(),
        "{:?}",
        store.recovery()
    );
    assert_events(&read_all(&store)?, &events);
    assert_well_formed(&store_dir)
}

// ---------------------------------------------------------------------------------------------
// (b) Garbage in the middle of the log.

const GARBAGE: &[u8] = b"\x00\xff\xfe GARBAGE \x01\x02\x7f";

/// Overwrites the middle of event 10's line with bytes that are not JSON (and no newline).
fn damage_event_10(store_dir: &Path) -> Result<LogLine, Box<dyn std::error::Error>> {
    let line = line_of(store_dir, 10)?;
    overwrite(
        &line.file,
        line.start + (line.end - line.start) / 2,
        GARBAGE,
    )?;
    Ok(line)
}

fn assert_corrupt_at(error: &Error, line: &LogLine) {
    assert_eq!(error.kind(), opossum_core::ErrorKind::Corrupt, "{error}");
    match error {
        Error::CorruptLog { file, offset, .. } => {
            assert_eq!(file, &line.file, "{error}");
            let offset = usize::try_from(*offset).expect("offset fits");
            assert!(
                (line.start..line.end).contains(&offset),
                "offset {offset} is not in the damaged line {line:?}: {error}"
            );
        }
        other => panic!("expected Error::CorruptLog, got {other:?}"),
    }
}

/// Every event but the damaged one can still be read, each by its own tag.
fn assert_undamaged_readable(store: &FileEventStore, events: &[NewEvent]) -> TestResult {
    for (i, event) in events.iter().enumerate() {
        let n = i as u64 + 1;
        if n == 10 {
            continue;
        }
        let query = Query::from_tags([Tag::new("n", n.to_string())?])?;
        let found = store.read_blocking(&query, ReadOptions::new())?;
        assert_eq!(found.len(), 1, "event {n}");
        assert_eq!((found[0].position.get(), &found[0].event), (n, event));
    }
    Ok(())
}

#[test]
fn garbage_in_the_middle_is_a_typed_error_and_changes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    let line = damage_event_10(&store_dir)?;
    let damaged = events_bytes(&store_dir)?;

    let store = open(dir.path())?;
    assert_eq!(
        events_bytes(&store_dir)?,
        damaged,
        "open must not touch damage it cannot repair"
    );

    let before = store.read_blocking(&Query::all(), ReadOptions::new().limit(9))?;
    assert_events(&before, &events[..9]);
    assert_undamaged_readable(&store, &events)?;
    let error = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .expect_err("reading through the damage");
    assert_corrupt_at(&Error::from(error), &line);
    let ten = Query::from_tags([Tag::new("n", "10")?])?;
    let error = store
        .read_blocking(&ten, ReadOptions::new())
        .expect_err("the damaged event");
    assert_corrupt_at(&Error::from(error), &line);

    let problem = chain_break(&store)?;
    assert_eq!(problem.position, 10, "{problem:?}");
    assert!(
        matches!(problem.kind, BreakKind::Unreadable | BreakKind::Edited),
        "{problem:?}"
    );
    assert_eq!(problem.file, line.file, "{problem:?}");
    store.close()?;
    assert_eq!(events_bytes(&store_dir)?, damaged, "nothing was rewritten");
    Ok(())
}

/// With the index gone, open must scan the log and meets the damage: it may refuse with a typed
/// error or open around it, but it must not take the damage for a torn tail and cut the ten
/// events after it.
#[test]
fn garbage_in_the_middle_without_index_is_not_mistaken_for_a_torn_tail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    let line = damage_event_10(&store_dir)?;
    fs::remove_dir_all(store_dir.join("index"))?;
    let damaged = events_bytes(&store_dir)?;

    match open(dir.path()) {
        Err(error) => assert_corrupt_at(&error, &line),
        Ok(store) => {
            eprintln!(
                "opened around the damage; repairs: {:?}",
                store.recovery().repairs
            );
            assert_undamaged_readable(&store, &events)?;
            let problem = chain_break(&store)?;
            assert_eq!(problem.position, 10, "{problem:?}");
            store.close()?;
        }
    }
    assert_eq!(events_bytes(&store_dir)?, damaged, "the log is untouched");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (c) A missing or corrupt index.

/// Fifty events with varied types and tags, plus one whose tag values look like paths.
fn varied_store(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = open(root)?;
    append_numbered(&store, 1..=25)?;
    let odd = NewEvent::builder("Odd", Payload::from_json(r#"{"odd":true}"#)?)
        .tag("path", "../..\\C:/x y")
        .tag("n", "26")
        .build()?;
    store.append_blocking(vec![odd], None)?;
    let batch: Vec<NewEvent> = (27..=50).map(numbered).collect();
    store.append_blocking(batch, None)?;
    store.close()?;
    Ok(())
}

/// What a fixed set of queries returns: the fingerprint an index must not change.
fn query_results(
    store: &FileEventStore,
) -> Result<Vec<Vec<SequencedEvent>>, Box<dyn std::error::Error>> {
    let tag = |k: &str, v: &str| Tag::new(k, v);
    let queries = [
        (Query::all(), ReadOptions::new()),
        (Query::all(), ReadOptions::new().descending().limit(7)),
        (
            Query::all(),
            ReadOptions::new().after(Position::new(20)?).limit(5),
        ),
        (Query::from_event_types(["Alpha"])?, ReadOptions::new()),
        (
            Query::from_event_types(["Alpha", "Gamma"])?,
            ReadOptions::new().descending(),
        ),
        (
            Query::from_tags([tag("parity", "even")?])?,
            ReadOptions::new(),
        ),
        (
            Query::from_tags([tag("parity", "even")?, tag("group", "3")?])?,
            ReadOptions::new(),
        ),
        (
            Query::from_items([
                QueryItem::of_types(["Beta"])?,
                QueryItem::of_tags([tag("group", "1")?]),
            ])?,
            ReadOptions::new(),
        ),
        (
            Query::from_items([QueryItem::of_types(["Alpha"])?.with_tag(tag("parity", "odd")?)])?,
            ReadOptions::new(),
        ),
        (Query::from_tags([tag("n", "17")?])?, ReadOptions::new()),
        (
            Query::from_tags([tag("path", "../..\\C:/x y")?])?,
            ReadOptions::new(),
        ),
        (Query::from_tags([tag("n", "404")?])?, ReadOptions::new()),
    ];
    let mut results = Vec::new();
    for (query, options) in &queries {
        results.push(store.read_blocking(query, *options)?);
    }
    for (query, _) in &queries {
        results.push(store.read_last_blocking(query)?.into_iter().collect());
    }
    Ok(results)
}

fn assert_same_results(
    store: &FileEventStore,
    expected: &[Vec<SequencedEvent>],
    case: &str,
) -> TestResult {
    let actual = query_results(store)?;
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "{case}: query {i} differs");
    }
    assert_eq!(
        expected[0].len(),
        50,
        "the fingerprint covers the whole store"
    );
    Ok(())
}

fn mentions_index(store: &FileEventStore) -> bool {
    format!("{:?}", store.recovery().repairs)
        .to_lowercase()
        .contains("index")
}

#[test]
fn deleted_index_is_rebuilt_with_identical_query_results() -> TestResult {
    let dir = tempfile::tempdir()?;
    varied_store(dir.path())?;
    let store_dir = dir.path().join(NAME);
    let store = open(dir.path())?;
    let expected = query_results(&store)?;
    store.close()?;

    fs::remove_dir_all(store_dir.join("index"))?;
    let store = open(dir.path())?;
    assert!(
        mentions_index(&store),
        "the rebuild is reported: {:?}",
        store.recovery()
    );
    assert_same_results(&store, &expected, "index deleted")?;
    assert_intact(&store, 50)?;
    store.close()?;

    // The rebuilt index was persisted: the next open has nothing to rebuild.
    let store = open(dir.path())?;
    assert!(
        store.recovery().repairs.is_empty(),
        "{:?}",
        store.recovery()
    );
    assert_same_results(&store, &expected, "after the rebuild")
}

#[test]
fn corrupt_index_is_rebuilt_never_read_as_empty() -> TestResult {
    let dir = tempfile::tempdir()?;
    varied_store(dir.path())?;
    let store_dir = dir.path().join(NAME);
    let store = open(dir.path())?;
    let expected = query_results(&store)?;
    store.close()?;
    let index = read_tree(&store_dir.join("index"))?;
    assert!(!index.is_empty(), "a closed store has a persisted index");

    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    let mut random_bytes = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect()
    };
    type Damage<'a> = (&'a str, Box<dyn FnMut(&[u8]) -> Vec<u8> + 'a>);
    let damages: Vec<Damage> = vec![
        ("random bytes", Box::new(|b: &[u8]| random_bytes(b.len()))),
        ("empty file", Box::new(|_: &[u8]| Vec::new())),
        (
            "truncated to half",
            Box::new(|b: &[u8]| b[..b.len() / 2].to_vec()),
        ),
        (
            "one byte flipped",
            Box::new(|b: &[u8]| {
                let mut b = b.to_vec();
                let middle = b.len() / 2;
                b[middle] ^= 0x5a;
                b
            }),
        ),
    ];
    for (case, mut damage) in damages {
        for (relative, bytes) in &index {
            fs::write(store_dir.join("index").join(relative), damage(bytes))?;
        }
        let store = open(dir.path())
            .map_err(|e| format!("{case}: open with a corrupt index failed: {e}"))?;
        assert!(
            mentions_index(&store),
            "{case}: rebuild reported: {:?}",
            store.recovery()
        );
        assert_same_results(&store, &expected, case)?;
        assert_intact(&store, 50)?;
        store.close()?;
    }
    Ok(())
}

/// An index persisted when the store held 26 events, found beside a log of 50 (as after a
/// crash between writing the log and persisting the index): open catches up from the log.
#[test]
fn stale_index_catches_up_with_the_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store_dir = dir.path().join(NAME);
    let store = open(dir.path())?;
    append_numbered(&store, 1..=26)?;
    store.close()?;
    let stale = StateFiles::take(&store_dir)?;
    let store = open(dir.path())?;
    append_numbered(&store, 27..=50)?;
    let expected_all = read_all(&store)?;
    store.close()?;
    stale.restore(&store_dir)?;

    let store = open(dir.path())?;
    assert_eq!(read_all(&store)?, expected_all);
    for n in [1_u64, 26, 27, 50] {
        let query = Query::from_tags([Tag::new("n", n.to_string())?])?;
        let found = store.read_blocking(&query, ReadOptions::new())?;
        assert_eq!(
            found.iter().map(|e| e.position.get()).collect::<Vec<_>>(),
            [n]
        );
    }
    // The last Gamma (n % 3 == 2) is beyond what the stale index covered.
    let last = store.read_last_blocking(&Query::from_event_types(["Gamma"])?)?;
    assert_eq!(last.map(|e| e.position.get()), Some(50));
    assert_eq!(store.append_blocking(vec![numbered(51)], None)?.get(), 51);
    assert_intact(&store, 51)
}

// ---------------------------------------------------------------------------------------------
// (d) A read-only folder.

#[cfg(unix)]
mod read_only {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Makes a store folder read-only for the life of the guard, and always undoes it on drop.
    ///
    /// Permission bits do not stop root, so when a probe write still succeeds under `chmod`, the
    /// guard falls back to the immutable attribute (`chattr +i`), which stops root too.
    struct ReadOnly {
        dir: PathBuf,
        how: Option<ReadOnlyHow>,
    }

    #[derive(Clone, Copy, Debug)]
    enum ReadOnlyHow {
        Permissions,
        Immutable,
    }

    impl ReadOnly {
        /// Protects `dir`, or says why it cannot be done here.
        fn protect(dir: &Path) -> Result<ReadOnly, String> {
            let mut guard = ReadOnly {
                dir: dir.to_path_buf(),
                how: Some(ReadOnlyHow::Permissions),
            };
            set_tree_read_only(dir, true).map_err(|e| format!("chmod failed: {e}"))?;
            if !is_writable(dir) {
                return Ok(guard);
            }
            guard.undo();
            guard.how = Some(ReadOnlyHow::Immutable);
            let status = Command::new("chattr").arg("-R").arg("+i").arg(dir).status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => return Err(format!("running as root, and `chattr -R +i` failed ({s})")),
                Err(e) => return Err(format!("running as root, and chattr cannot run: {e}")),
            }
            if is_writable(dir) {
                return Err("the folder is still writable under chattr +i".to_owned());
            }
            Ok(guard)
        }

        fn undo(&mut self) {
            match self.how.take() {
                Some(ReadOnlyHow::Permissions) => {
                    let _ = set_tree_read_only(&self.dir, false);
                }
                Some(ReadOnlyHow::Immutable) => {
                    let undone = Command::new("chattr")
                        .arg("-R")
                        .arg("-i")
                        .arg(&self.dir)
                        .status();
                    if !undone.as_ref().is_ok_and(|s| s.success()) {
                        eprintln!(
                            "could not undo chattr +i on {}: {undone:?}",
                            self.dir.display()
                        );
                    }
                }
                None => {}
            }
        }
    }

    impl Drop for ReadOnly {
        fn drop(&mut self) {
            self.undo();
        }
    }

    fn set_tree_read_only(dir: &Path, read_only: bool) -> std::io::Result<()> {
        let mut pending = vec![dir.to_path_buf()];
        let mut folders = Vec::new();
        while let Some(folder) = pending.pop() {
            for entry in fs::read_dir(&folder)? {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let mode = if read_only { 0o444 } else { 0o644 };
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
                }
            }
            folders.push(folder);
        }
        for folder in folders {
            let mode = if read_only { 0o555 } else { 0o755 };
            fs::set_permissions(&folder, fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }

    /// Whether a new file can be created in `dir` or its segment appended to.
    fn is_writable(dir: &Path) -> bool {
        let probe = dir.join("write-probe");
        if fs::File::create(&probe).is_ok() {
            let _ = fs::remove_file(&probe);
            return true;
        }
        segment_files(dir)
            .unwrap_or_default()
            .iter()
            .any(|f| OpenOptions::new().append(true).open(f).is_ok())
    }

    #[test]
    fn read_only_folder_rejects_appends_with_a_typed_error_and_still_reads() -> TestResult {
        let dir = tempfile::tempdir()?;
        let events = store_with(dir.path(), 12)?;
        let store_dir = dir.path().join(NAME);
        let before = read_tree(&store_dir)?;

        // Declared after `dir`, so it is undone before the temporary folder is removed.
        let guard = match ReadOnly::protect(&store_dir) {
            Ok(guard) => guard,
            Err(why) => {
                eprintln!("SKIPPED read-only case: cannot make a folder read-only here: {why}");
                return Ok(());
            }
        };
        eprintln!("store folder made read-only with {:?}", guard.how);

        let store = open(dir.path())
            .map_err(|e| format!("a read-only store must open for reading: {e}"))?;
        assert_events(&read_all(&store)?, &events);
        let error = store
            .append_blocking(vec![numbered(13)], None)
            .expect_err("append to a read-only folder");
        assert!(
            matches!(Error::of(&error), Some(Error::ReadOnly { .. })),
            "expected Error::ReadOnly, got {error:?}"
        );
        eprintln!("append said: {error}");
        // The store stays usable for reading after the failed append.
        assert_events(&read_all(&store)?, &events);
        let last = store.read_last_blocking(&Query::from_tags([Tag::new("n", "12")?])?)?;
        assert_eq!(last.map(|e| e.position.get()), Some(12));
        assert_intact(&store, 12)?;
        drop(store);
        drop(guard);

        let after = read_tree(&store_dir)?;
        let data = |tree: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<(PathBuf, Vec<u8>)> {
            tree.iter()
                .filter(|(p, _)| p.starts_with("events") || p.as_path() == Path::new("head.json"))
                .map(|(p, b)| (p.clone(), b.clone()))
                .collect()
        };
        assert_eq!(data(&after), data(&before), "log and head anchor unchanged");

        // Writable again: the failed append left nothing behind.
        let store = open(dir.path())?;
        assert_events(&read_all(&store)?, &events);
        assert_eq!(store.append_blocking(vec![numbered(13)], None)?.get(), 13);
        assert_intact(&store, 13)
    }
}

// ---------------------------------------------------------------------------------------------
// (e), (f) Big events.

#[test]
fn multi_megabyte_payload_round_trips_and_survives_reopen() -> TestResult {
    const SIZE: usize = 4 * 1024 * 1024;
    let dir = tempfile::tempdir()?;
    let piece = "plain ascii, \"quotes\", back\\slash, tab\t, newline\n, é€😀 ";
    let mut blob = String::with_capacity(SIZE + piece.len());
    while blob.len() < SIZE {
        blob.push_str(piece);
    }
    let payload = Payload::from_value(&serde_json::json!({ "blob": blob, "size": blob.len() }))?;
    let big = NewEvent::builder("Big", payload)
        .tag("size", "4MB")
        .build()?;
    let mut events = vec![numbered(1), big, numbered(3)];

    let store = open(dir.path())?;
    for event in &events {
        store.append_blocking(vec![event.clone()], None)?;
    }
    assert_events(&read_all(&store)?, &events);
    store.close()?;

    let store = open(dir.path())?;
    assert!(
        store.recovery().repairs.is_empty(),
        "{:?}",
        store.recovery()
    );
    assert_events(&read_all(&store)?, &events);
    let found = store.read_blocking(
        &Query::from_tags([Tag::new("size", "4MB")?])?,
        ReadOptions::new(),
    )?;
    assert_eq!(found.len(), 1);
    assert!(found[0].event.payload().as_json().len() > SIZE);
    assert_eq!(found[0].event, events[1]);
    events.push(numbered(4));
    assert_eq!(
        store.append_blocking(vec![events[3].clone()], None)?.get(),
        4
    );
    assert_intact(&store, 4)
}

#[test]
fn a_thousand_tags_round_trip_and_are_each_queryable_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store_dir = dir.path().join(NAME);
    let tags: Vec<Tag> = (0..1000)
        .map(|i| Tag::new(format!("k{i:03}"), format!("v{i}/..\\: {i}")))
        .collect::<Result<_, _>>()?;
    let even: Vec<Tag> = tags.iter().step_by(2).cloned().collect();
    let payload = || Payload::from_json("{}");
    let events = vec![
        NewEvent::builder("Half", payload()?).tags(even).build()?,
        NewEvent::builder("Many", payload()?)
            .tags(tags.clone())
            .build()?,
        NewEvent::builder("None", payload()?).build()?,
    ];
    let store = open(dir.path())?;
    store.append_blocking(events.clone(), None)?;
    store.close()?;

    // Once from the persisted index, once from an index rebuilt from the log.
    for case in ["reopened", "index rebuilt"] {
        let store = open(dir.path())?;
        let all = read_all(&store)?;
        assert_events(&all, &events);
        assert_eq!(
            all[1].event.tags(),
            tags.as_slice(),
            "{case}: tags in order"
        );
        for (i, tag) in tags.iter().enumerate() {
            let found =
                store.read_blocking(&Query::from_tags([tag.clone()])?, ReadOptions::new())?;
            let positions: Vec<u64> = found.iter().map(|e| e.position.get()).collect();
            let expected: &[u64] = if i % 2 == 0 { &[1, 2] } else { &[2] };
            assert_eq!(positions, expected, "{case}: tag {tag:?}");
        }
        let every = Query::from_tags(tags.clone())?;
        let found = store.read_blocking(&every, ReadOptions::new())?;
        assert_eq!(
            found.iter().map(|e| e.position.get()).collect::<Vec<_>>(),
            [2]
        );
        assert_intact(&store, 3)?;
        store.close()?;
        fs::remove_dir_all(store_dir.join("index"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (g) Invalid options.

#[test]
fn invalid_paths_and_options_list_every_problem() -> TestResult {
    let dir = tempfile::tempdir()?;
    let absolute = dir.path().to_path_buf();
    // The last component of the path is the store's name: it must be a portable folder name.
    let cases: Vec<(PathBuf, usize, Vec<&str>)> = vec![
        (absolute.join(".."), 1, vec![]),
        (PathBuf::from("/"), 1, vec![]),
        (absolute.join("CON"), 1, vec!["CON"]),
        (absolute.join("nul"), 1, vec!["nul"]),
        (absolute.join("COM1"), 1, vec!["COM1"]),
        (absolute.join("a\\b"), 1, vec!["path separators"]),
        (absolute.join("a:b"), 1, vec!["a:b"]),
        (absolute.join("trailing."), 1, vec!["trailing."]),
        (absolute.join("CON."), 2, vec![]),
    ];
    for (path, count, mentioned) in cases {
        let case = format!("path {path:?}");
        match FileEventStore::open(&path) {
            Err(ref error @ Error::InvalidPath { ref problems, .. }) => {
                assert_eq!(error.kind(), opossum_core::ErrorKind::InvalidInput);
                assert!(
                    problems.len() >= count,
                    "{case}: every problem is listed: {problems:?}"
                );
                // Each offending value is named, and separate problems are separate entries.
                for fragment in &mentioned {
                    assert!(
                        problems.iter().any(|p| p.contains(fragment)),
                        "{case}: {fragment:?} not named in {problems:?}"
                    );
                }
            }
            Err(other) => panic!("{case}: expected InvalidPath, got {other:?}"),
            Ok(_) => panic!("{case}: an invalid path was accepted"),
        }
    }
    // Options: every problem listed at once, in one error.
    let options = opossum_fs::StoreOptions::new()
        .lock_timeout(std::time::Duration::ZERO)
        .stale_lock_after(std::time::Duration::ZERO);
    match FileEventStore::open_with(absolute.join("store"), options) {
        Err(Error::InvalidOptions { problems }) => {
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert!(problems[0].contains("lock_timeout"), "{problems:?}");
            assert!(problems[1].contains("stale_lock_after"), "{problems:?}");
        }
        other => panic!("expected InvalidOptions, got {other:?}"),
    }
    assert_eq!(
        fs::read_dir(&absolute)?.count(),
        0,
        "nothing is created for an invalid path or invalid options"
    );
    Ok(())
}

/// A relative path is taken from the current folder, as every file API takes one.
#[test]
fn a_relative_path_opens_the_store_under_the_current_folder() -> TestResult {
    let dir = tempfile::tempdir()?;
    let folder = std::path::absolute(dir.path())?.join("relative-store");
    // The folder named relative to the current folder.
    let relative = pathdiff(&folder, &std::env::current_dir()?);
    assert!(relative.is_relative(), "{relative:?}");
    let store = FileEventStore::open(&relative)?;
    assert!(store.path().is_absolute());
    store.append_blocking(vec![numbered(1)], None)?;
    store.close()?;
    // The same store, named by its absolute path.
    let store = FileEventStore::open(&folder)?;
    assert_eq!(read_all(&store)?.len(), 1);
    Ok(())
}

/// `path` relative to `base`, with `..` where needed.
fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for component in &path[common..] {
        relative.push(component);
    }
    relative
}

// ---------------------------------------------------------------------------------------------
// (h) Tampering with history.

/// Checks, twice (so that an open which "repairs" the evidence away is caught), that open either
/// works or refuses with a typed error, that verify names `position` as the first break, and
/// that nothing in the store was modified.
fn assert_break(root: &Path, position: u64, kind: fn(&BreakKind) -> bool) -> TestResult {
    let store_dir = root.join(NAME);
    let tampered = read_tree(&store_dir)?;
    for attempt in ["first open", "second open"] {
        let problem = match open(root) {
            Ok(store) => {
                let problem = chain_break(&store)?;
                store.close()?;
                problem
            }
            Err(error) => {
                assert!(
                    matches!(
                        error,
                        Error::CorruptLog { .. } | Error::AnchorMismatch { .. }
                    ),
                    "{attempt}: open failed with an unexpected error: {error:?}"
                );
                eprintln!("{attempt}: open refused: {error}");
                folder_break(&store_dir)?
            }
        };
        eprintln!("{attempt}: {problem:?}");
        assert!(
            kind(&problem.kind),
            "{attempt}: unexpected kind in {problem:?}"
        );
        assert_eq!(
            problem.position, position,
            "{attempt}: first broken position: {problem:?}"
        );
        assert!(
            !problem.detail.is_empty(),
            "{attempt}: the break is explained"
        );
        let mut now = read_tree(&store_dir)?;
        // A store that opened may persist its index; the log and the anchor are the evidence.
        now.retain(|p, _| !p.starts_with("index") && p.as_path() != Path::new("store.lock"));
        let mut before = tampered.clone();
        before.retain(|p, _| !p.starts_with("index") && p.as_path() != Path::new("store.lock"));
        assert!(
            now == before,
            "{attempt}: the log or the anchor was modified"
        );
    }
    Ok(())
}

#[test]
fn verify_finds_an_edited_payload_byte() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    let line = line_of(&store_dir, 10)?;
    let bytes = fs::read(&line.file)?;
    let text = &bytes[line.start..line.end];
    let needle = b"\"amount\":1010";
    let at = text
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or("amount of event 10 not found")?;
    // 1010 becomes 1019: still valid JSON, still the same length.
    overwrite(&line.file, line.start + at + needle.len() - 1, b"9")?;
    let store = open(dir.path())?;
    let found = store.read_blocking(
        &Query::from_tags([Tag::new("n", "10")?])?,
        ReadOptions::new(),
    )?;
    assert!(
        found[0].event.payload().as_json().contains("1019"),
        "the edit is what is read"
    );
    store.close()?;
    assert_break(dir.path(), 10, |k| matches!(k, BreakKind::Edited))
}

#[test]
fn verify_finds_a_deleted_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    let line = line_of(&store_dir, 10)?;
    let mut bytes = fs::read(&line.file)?;
    bytes.drain(line.start..line.end);
    fs::write(&line.file, bytes)?;
    assert_break(dir.path(), 10, |k| {
        matches!(k, BreakKind::Missing | BreakKind::Edited)
    })
}

#[test]
fn verify_finds_swapped_lines() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    let (ten, eleven) = (line_of(&store_dir, 10)?, line_of(&store_dir, 11)?);
    assert_eq!(
        (&ten.file, ten.end),
        (&eleven.file, eleven.start),
        "adjacent lines"
    );
    let bytes = fs::read(&ten.file)?;
    let mut swapped = bytes[..ten.start].to_vec();
    swapped.extend_from_slice(&bytes[eleven.start..eleven.end]);
    swapped.extend_from_slice(&bytes[ten.start..ten.end]);
    swapped.extend_from_slice(&bytes[eleven.end..]);
    fs::write(&ten.file, swapped)?;
    // Whether or not open notices, a read never hands out the wrong event for a position.
    if let Ok(store) = open(dir.path()) {
        let ten = Query::from_tags([Tag::new("n", "10")?])?;
        for result in [
            read_all(&store),
            store
                .read_blocking(&ten, ReadOptions::new())
                .map_err(Error::from),
        ] {
            match result {
                Err(Error::CorruptLog { .. }) => {}
                Ok(events) => assert!(
                    events.iter().all(|e| e.event == numbered(e.position.get())),
                    "a read returned an event at the wrong position"
                ),
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
    }
    assert_break(dir.path(), 10, |k| matches!(k, BreakKind::Reordered))
}

#[test]
fn verify_finds_a_truncated_tail() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with(dir.path(), 20)?;
    let store_dir = dir.path().join(NAME);
    // Whole lines go, so the log itself is well formed: only the head anchor knows.
    let line = line_of(&store_dir, 18)?;
    assert_eq!(line.file, line_of(&store_dir, 20)?.file, "one segment");
    truncate(&line.file, line.start)?;
    let problem = folder_break(&store_dir)?;
    assert!(matches!(problem.kind, BreakKind::Truncated), "{problem:?}");
    assert_eq!(problem.position, 18, "{problem:?}");
    // Opening accepts the log as it is (a copy looks the same) and keeps the evidence.
    for attempt in ["first open", "second open"] {
        let store = open(dir.path())?;
        assert_eq!(read_all(&store)?.len(), 17, "{attempt}");
        let problem = chain_break(&store)?;
        assert!(
            matches!(problem.kind, BreakKind::Truncated),
            "{attempt}: {problem:?}"
        );
        assert_eq!(problem.position, 18, "{attempt}: {problem:?}");
        store.close()?;
    }
    Ok(())
}
