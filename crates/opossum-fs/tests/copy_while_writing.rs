//! "Backup = copy the folder": a store folder copied while other processes append to it.
//!
//! Two writer processes — this test binary re-executed, as in `multiprocess.rs`:
//! `<test binary> --exact child_process_entry --nocapture --test-threads=1` with
//! `OPOSSUM_COPY_CHILD_ROLE=writer` — append single events and batches of two or three to one
//! store until the parent creates a `stop` file. After each acknowledged append a writer adds a
//! line `<append number> <first position> <last position>` to its ack file outside the store,
//! with one unbuffered `write`, so whatever the parent reads there was acknowledged. Every
//! event's payload names its writer, its append and its place in the batch, so the parent can
//! tell which events a position must hold.
//!
//! Just before taking each copy the parent reads the ack files: the appends acknowledged
//! *before the copy began*. Copies are taken three ways while the writers keep appending:
//!
//! 1. `cp -r STORE COPY`, ten times;
//! 2. file by file in alphabetical order of their paths (so `events/…` is copied before
//!    `head.json`, as rsync and robocopy do), with `std::fs::copy` and a pause of 20 ms between
//!    files — the anchor is then usually ahead of the copied log;
//! 3. [`FileEventStore::backup`] through a handle the parent holds on the live store.
//!
//! Once the writers have stopped, the parent checks the original store against the ack files
//! (every event belongs to an acknowledged append, every acknowledged append is there), then
//! every copy:
//! - `verify_folder` on the copy as taken finds it intact or `Truncated` (an anchor ahead of
//!   the copied log), never `Edited`, `Missing`, `Reordered` or `Unreadable`;
//! - `FileEventStore::open` succeeds with no manual step (a backup opens without any repair);
//! - its events are a prefix of the original's — same positions, same events, and the segment
//!   files byte for byte a prefix of the original's;
//! - every append acknowledged before the copy began is in it;
//! - `verify` reports it intact, or `Truncated` with a detail naming `recovered/` exactly when
//!   the open reported `Repair::AnchorAheadOfLog` (whose saved anchor is under `recovered/`);
//!   a backup verifies intact;
//! - a second open is clean, and an append to the copy gets the next position.
//!
//! Every copy is checked before the test fails, and the failure lists each copy that failed
//! with the seed, its repairs and its verify reports. The seed (printed; `OPOSSUM_COPY_SEED`
//! sets it) decides the batch sizes and the pauses between appends and between copies; how the
//! copies interleave with the appends is up to the scheduler. Timeouts only turn a hang into a
//! failure: no check depends on timing.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use opossum_core::{DomainEvent, NewEvent, Query, ReadOptions, SequencedEvent};
use opossum_fs::{
    BackupReport, BreakKind, FileEventStore, Repair, StoreOptions, VerifyReport, verify_folder,
};
use serde::{Deserialize, Serialize};

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_COPY_CHILD_ROLE";
const ROOT_VAR: &str = "OPOSSUM_COPY_CHILD_ROOT";
const WORK_VAR: &str = "OPOSSUM_COPY_CHILD_WORK";
const INDEX_VAR: &str = "OPOSSUM_COPY_CHILD_INDEX";
const SEED_VAR: &str = "OPOSSUM_COPY_SEED";

const WRITERS: usize = 2;
const STORE_NAME: &str = "live";
/// Appends each writer has acknowledged before the first copy is taken.
const WARM_UP_APPENDS: usize = 40;
/// A writer that was never told to stop gives up after this many appends.
const MAX_APPENDS_PER_WRITER: u64 = 200_000;

const CP_COPIES: usize = 10;
const ALPHABETICAL_COPIES: usize = 6;
const BACKUPS: usize = 8;
/// The pause between two files of an alphabetical copy.
const FILE_PAUSE: Duration = Duration::from_millis(20);

/// Hang guards only: a healthy run takes a few seconds.
const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(60);
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);
const WRITER_DEADLINE: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const COPY_TIMEOUT: Duration = Duration::from_secs(60);

/// The payload of every event a writer appends: which append of which writer, and where in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Appended {
    writer: usize,
    append: u64,
    i: usize,
    n: usize,
}

impl DomainEvent for Appended {
    const EVENT_TYPE: &'static str = "Appended";
}

fn appended_event(item: &Appended) -> NewEvent {
    NewEvent::from_typed(item)
        .tag("writer", item.writer.to_string())
        .tag("append", format!("w{}-a{}", item.writer, item.append))
        .build()
        .expect("valid event")
}

fn store_options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The number of events (1–3, half of the appends single events) of append `k` of `writer`.
fn append_len(seed: u64, writer: usize, k: u64) -> usize {
    match splitmix64(seed ^ ((writer as u64) << 48) ^ k) % 4 {
        0 | 1 => 1,
        2 => 2,
        _ => 3,
    }
}

/// A pause of 0–1 ms after append `k`, as a client deciding its next step would make, so the
/// two writers interleave.
fn think(seed: u64, writer: usize, k: u64) {
    let micros = splitmix64(seed.rotate_left(17) ^ ((writer as u64) << 48) ^ k) % 1_000;
    thread::sleep(Duration::from_micros(micros));
}

fn ack_path(work: &Path, writer: usize) -> PathBuf {
    work.join(format!("acks-{writer}.txt"))
}

// ---------------------------------------------------------------------------------------------
// The child side.

/// Entry point of the writer processes; a no-op unless `OPOSSUM_COPY_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    assert_eq!(role, "writer", "unknown {ROLE_VAR}");
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("writer without {name}"));
    let root = PathBuf::from(var(ROOT_VAR));
    let work = PathBuf::from(var(WORK_VAR));
    let index: usize = var(INDEX_VAR).parse().expect("writer index is a number");
    let seed: u64 = var(SEED_VAR).parse().expect("seed is a number");
    writer(&root, &work, index, seed);
}

/// Appends until `stop` exists, recording each acknowledged append in its ack file.
fn writer(root: &Path, work: &Path, index: usize, seed: u64) {
    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())
        .unwrap_or_else(|e| panic!("writer {index} could not open the store: {e}"));
    let mut acks = File::create(ack_path(work, index)).expect("create the ack file");
    File::create(work.join(format!("ready-{index}"))).expect("create the ready file");
    let deadline = Instant::now() + RENDEZVOUS_TIMEOUT;
    while !work.join("go").exists() {
        assert!(
            Instant::now() < deadline,
            "writer {index} was never released"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let stop = work.join("stop");
    let deadline = Instant::now() + WRITER_DEADLINE;
    let (mut k, mut events_appended) = (0_u64, 0_usize);
    while !stop.exists() {
        assert!(
            Instant::now() < deadline && k < MAX_APPENDS_PER_WRITER,
            "writer {index} was not told to stop ({k} appends)"
        );
        let n = append_len(seed, index, k);
        let events = (0..n)
            .map(|i| {
                appended_event(&Appended {
                    writer: index,
                    append: k,
                    i,
                    n,
                })
            })
            .collect();
        let last = store
            .append_blocking(events, None)
            .unwrap_or_else(|e| panic!("writer {index}: append {k} failed: {e}"))
            .get();
        let first = last + 1 - n as u64;
        // One write straight to the file (`File` has no buffer): once the parent can read the
        // whole line, the append was acknowledged.
        acks.write_all(format!("{k} {first} {last}\n").as_bytes())
            .expect("record an acknowledged append");
        acks.flush().expect("flush the ack file");
        events_appended += n;
        k += 1;
        think(seed, index, k);
    }
    store
        .close()
        .unwrap_or_else(|e| panic!("writer {index} could not close the store: {e}"));
    eprintln!("writer {index}: {k} appends, {events_appended} events");
}

// ---------------------------------------------------------------------------------------------
// The parent side: the writers.

/// One acknowledged append, as read from an ack file.
#[derive(Clone, Copy, Debug)]
struct Ack {
    writer: usize,
    append: u64,
    first: u64,
    last: u64,
}

/// Every append the writers have acknowledged so far (whole lines of the ack files only).
fn read_acks(work: &Path) -> Vec<Ack> {
    let mut acks = Vec::new();
    for writer in 0..WRITERS {
        let path = ack_path(work, writer);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => panic!("read {}: {e}", path.display()),
        };
        // A line still being written is not yet an acknowledgement the parent knows of.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in whole.lines() {
            let numbers: Vec<u64> = line
                .split(' ')
                .map(|n| n.parse().expect("ack line of numbers"))
                .collect();
            let [append, first, last] = numbers[..] else {
                panic!("malformed ack line {line:?} in {}", path.display());
            };
            acks.push(Ack {
                writer,
                append,
                first,
                last,
            });
        }
    }
    acks
}

/// The writer processes; any still running when this is dropped are killed.
struct Writers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
    work: PathBuf,
}

impl Writers {
    /// Starts the writers on the store `root/STORE_NAME` and releases them together.
    fn start(root: &Path, work: &Path, logs: &Path, seed: u64) -> Writers {
        let exe = std::env::current_exe().expect("the test binary");
        let mut writers = Writers {
            children: Vec::new(),
            logs: Vec::new(),
            work: work.to_path_buf(),
        };
        for index in 0..WRITERS {
            let log_path = logs.join(format!("writer-{index}.log"));
            let log = File::create(&log_path).expect("create a log file");
            let child = Command::new(&exe)
                .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
                .env(ROLE_VAR, "writer")
                .env(ROOT_VAR, root)
                .env(WORK_VAR, work)
                .env(INDEX_VAR, index.to_string())
                .env(SEED_VAR, seed.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("start a writer");
            writers.children.push(child);
            writers.logs.push(log_path);
        }
        let deadline = Instant::now() + RENDEZVOUS_TIMEOUT;
        while (0..WRITERS).any(|i| !work.join(format!("ready-{i}")).exists()) {
            writers.assert_running();
            assert!(
                Instant::now() < deadline,
                "the writers did not become ready\n{}",
                writers.output()
            );
            thread::sleep(Duration::from_millis(5));
        }
        File::create(work.join("go")).expect("create the go file");
        writers
    }

    fn output(&self) -> String {
        self.logs
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
                format!("--- writer {i} ---\n{text}")
            })
            .collect()
    }

    /// Fails when a writer has exited before it was told to stop.
    fn assert_running(&mut self) {
        for i in 0..self.children.len() {
            if let Ok(Some(status)) = self.children[i].try_wait() {
                panic!(
                    "writer {i} exited with {status} while it should append\n{}",
                    self.output()
                );
            }
        }
    }

    fn acked(&self) -> Vec<Ack> {
        read_acks(&self.work)
    }

    /// Waits until every writer has acknowledged `appends` appends.
    fn wait_for_appends(&mut self, appends: usize) {
        let deadline = Instant::now() + WARM_UP_TIMEOUT;
        loop {
            let acks = self.acked();
            if (0..WRITERS).all(|w| acks.iter().filter(|a| a.writer == w).count() >= appends) {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the writers did not get {appends} appends each acknowledged in \
                 {WARM_UP_TIMEOUT:?}\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tells the writers to stop and waits until each has exited successfully.
    fn stop(&mut self) {
        File::create(self.work.join("stop")).expect("create the stop file");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) {
            for (i, child) in self.children.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    statuses[i] = child.try_wait().expect("poll a writer");
                }
            }
            if Instant::now() > deadline {
                self.kill_all();
                panic!(
                    "writers still running {STOP_TIMEOUT:?} after being told to stop; killed \
                     them\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        for (i, status) in statuses.iter().enumerate() {
            let status = status.expect("every writer exited");
            assert!(
                status.success(),
                "writer {i} exited with {status}\n{}",
                self.output()
            );
        }
        eprint!("{}", self.output());
    }

    fn kill_all(&mut self) {
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        self.kill_all();
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side: taking copies.

/// `cp -r from to`. Returns cp's complaints about files that vanished between its listing of
/// a folder and its opening of them (`store.lease` exists only while a writer appends), the one
/// failure any copy of a folder in use can meet; anything else fails the test.
#[cfg(unix)]
fn copy_with_cp(from: &Path, to: &Path) -> Vec<String> {
    let mut child = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cp");
    let deadline = Instant::now() + COPY_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll cp") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cp -r still running after {COPY_TIMEOUT:?}; killed it");
        }
        thread::sleep(Duration::from_millis(1));
    };
    let mut complaints = String::new();
    child
        .stderr
        .take()
        .expect("cp's stderr")
        .read_to_string(&mut complaints)
        .expect("read cp's stderr");
    let complaints: Vec<String> = complaints.lines().map(str::to_owned).collect();
    assert!(
        status.success()
            || (!complaints.is_empty()
                && complaints
                    .iter()
                    .all(|l| l.contains("No such file or directory"))),
        "cp -r {} {} failed with {status}: {complaints:?}",
        from.display(),
        to.display()
    );
    complaints
}

/// Copies the folder `from` to `to` entry by entry, in alphabetical order of their paths
/// (`events/…` before `head.json`), with `pause` between entries. Returns the files that
/// vanished before they could be copied.
fn copy_alphabetically(from: &Path, to: &Path, pause: Duration) -> Vec<String> {
    let mut entries = Vec::new();
    list_recursively(from, Path::new(""), &mut entries);
    entries.sort();
    fs::create_dir(to).expect("create the copy's folder");
    let mut vanished = Vec::new();
    for (n, (relative, is_dir)) in entries.iter().enumerate() {
        if n > 0 {
            thread::sleep(pause);
        }
        let target = to.join(relative);
        if *is_dir {
            fs::create_dir_all(&target).expect("create a folder of the copy");
            continue;
        }
        fs::create_dir_all(target.parent().expect("a parent")).expect("create a folder");
        match fs::copy(from.join(relative), &target) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                vanished.push(format!("{relative}: vanished before it was copied"));
            }
            Err(e) => panic!("copy {relative}: {e}"),
        }
    }
    vanished
}

/// Adds `(path relative to root, is a folder)` for everything under `root/relative`.
fn list_recursively(root: &Path, relative: &Path, out: &mut Vec<(String, bool)>) {
    let listing = match fs::read_dir(root.join(relative)) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => panic!("list {}: {e}", root.join(relative).display()),
    };
    for entry in listing {
        let entry = entry.expect("a folder entry");
        let Ok(kind) = entry.file_type() else {
            continue; // vanished since the listing
        };
        let path = relative.join(entry.file_name());
        let name = path.to_string_lossy().replace('\\', "/");
        out.push((name, kind.is_dir()));
        if kind.is_dir() {
            list_recursively(root, &path, out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side: one scenario and its checks.

/// A copy as taken: where it is and what had been acknowledged when it began.
struct Taken {
    number: usize,
    name: String,
    acked_before: Vec<Ack>,
    /// What the copying tool complained about (files that vanished).
    notes: Vec<String>,
    backup: Option<BackupReport>,
}

impl Taken {
    fn new(number: usize, name: String, acked_before: Vec<Ack>) -> Taken {
        Taken {
            number,
            name,
            acked_before,
            notes: Vec::new(),
            backup: None,
        }
    }

    /// The last position acknowledged before the copy began.
    fn needed(&self) -> u64 {
        self.acked_before.iter().map(|a| a.last).max().unwrap_or(0)
    }
}

/// The original store once the writers have stopped.
struct Original {
    events: Vec<SequencedEvent>,
    segments: Vec<(String, Vec<u8>)>,
}

/// One run: a store, its two writers, and the folder the copies go to.
struct Run {
    _dir: tempfile::TempDir,
    root: PathBuf,
    seed: u64,
    writers: Writers,
}

impl Run {
    /// Creates the store, starts the writers and waits until each has some appends acknowledged.
    fn start(label: &str) -> Run {
        let seed = std::env::var(SEED_VAR).map_or_else(
            |_| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("a clock after 1970")
                    .as_nanos();
                splitmix64(u64::try_from(nanos % u128::from(u64::MAX)).expect("fits"))
            },
            |s| s.parse().expect("OPOSSUM_COPY_SEED is a number"),
        );
        eprintln!("{label}: seed {seed} (set {SEED_VAR}={seed} to repeat the batch sizes)");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (root, work, logs) = (
            dir.path().join("stores"),
            dir.path().join("work"),
            dir.path().join("logs"),
        );
        for folder in [&root, &work, &logs] {
            fs::create_dir(folder).expect("create a folder");
        }
        FileEventStore::open_with(root.join(STORE_NAME), store_options())
            .expect("create the store")
            .close()
            .expect("close the new store");
        let mut writers = Writers::start(&root, &work, &logs, seed);
        writers.wait_for_appends(WARM_UP_APPENDS);
        Run {
            _dir: dir,
            root,
            seed,
            writers,
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.root.join(STORE_NAME)
    }

    /// A pause of 30–150 ms between two copies, decided by the seed.
    fn between_copies(&self, number: usize) {
        let millis = 30 + splitmix64(self.seed ^ 0xC0FF_EE00 ^ number as u64) % 121;
        thread::sleep(Duration::from_millis(millis));
    }

    /// Stops the writers and checks the original store against everything they acknowledged.
    fn finish(&mut self) -> Original {
        self.writers.stop();
        let acks = self.writers.acked();
        let store = FileEventStore::open_with(self.root.join(STORE_NAME), store_options())
            .expect("open the original store");
        eprintln!("original store opened with {:?}", store.recovery());
        let events = store
            .read_blocking(&Query::all(), ReadOptions::new())
            .expect("read the original store");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event.position.get(), i as u64 + 1, "positions run from 1");
        }
        let mut covered = 0;
        for ack in &acks {
            if let Err(problem) = holds_ack(&events, ack) {
                panic!("the original store: {problem}");
            }
            covered += ack.last + 1 - ack.first;
        }
        assert_eq!(
            covered,
            events.len() as u64,
            "every event of the original belongs to exactly one acknowledged append"
        );
        let report = store.verify().expect("verify the original store");
        assert!(
            report.is_intact() && report.events_checked == events.len() as u64,
            "the original store: {report:?}"
        );
        store.close().expect("close the original store");
        eprintln!(
            "original store: {} events from {} acknowledged appends",
            events.len(),
            acks.len()
        );
        Original {
            events,
            segments: read_segments(&self.store_dir()),
        }
    }
}

/// Checks that `events` (from position 1) hold the events of the acknowledged append `ack`.
fn holds_ack(events: &[SequencedEvent], ack: &Ack) -> Result<(), String> {
    let n = usize::try_from(ack.last + 1 - ack.first).expect("small");
    for (i, position) in (ack.first..=ack.last).enumerate() {
        let expected = Appended {
            writer: ack.writer,
            append: ack.append,
            i,
            n,
        };
        let index = usize::try_from(position - 1).expect("fits");
        let Some(event) = events.get(index) else {
            return Err(format!(
                "append {} of writer {} was acknowledged at positions {}..={}, but the log ends \
                 at {}",
                ack.append,
                ack.writer,
                ack.first,
                ack.last,
                events.len()
            ));
        };
        let found = event.decode::<Appended>().map_err(|e| e.to_string());
        if found.as_ref() != Ok(&expected) {
            return Err(format!(
                "position {position} holds {found:?}, but append {} of writer {} was \
                 acknowledged there as {expected:?}",
                ack.append, ack.writer
            ));
        }
    }
    Ok(())
}

/// The segment files of `store` with their data: without the zero bytes a writer reserved at
/// the end of a segment (the format's free space, never data).
fn read_segments(store: &Path) -> Vec<(String, Vec<u8>)> {
    let events = store.join("events");
    let mut segments: Vec<(String, Vec<u8>)> = fs::read_dir(&events)
        .expect("list the segment files")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            let mut bytes = fs::read(&path).expect("read a segment file");
            let data = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            bytes.truncate(data);
            (name, bytes)
        })
        .collect();
    segments.sort();
    segments
}

/// What was found while checking one copy, kept for the report when a check fails.
#[derive(Default)]
struct Findings {
    raw_verify: Option<VerifyReport>,
    repairs: Option<Vec<Repair>>,
    events: Option<u64>,
    verify: Option<VerifyReport>,
    verify_after_append: Option<VerifyReport>,
}

impl Findings {
    fn anchor_ahead(&self) -> bool {
        self.repairs
            .iter()
            .flatten()
            .any(|r| matches!(r, Repair::AnchorAheadOfLog { .. }))
    }
}

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// Every check of one copy (see the module documentation). `backup` copies must open without
/// any repair and verify intact.
fn check_copy(
    root: &Path,
    original: &Original,
    taken: &Taken,
    findings: &mut Findings,
) -> Result<(), String> {
    let dir = root.join(&taken.name);
    let raw = verify_folder(&dir).map_err(|e| format!("verify_folder failed: {e}"))?;
    findings.raw_verify = Some(raw.clone());
    ensure!(
        raw.problem
            .as_ref()
            .is_none_or(|p| p.kind == BreakKind::Truncated),
        "verify_folder of the copy as taken found damage other than truncation"
    );

    let store = FileEventStore::open_with(root.join(&taken.name), store_options())
        .map_err(|e| format!("open failed: {e} ({e:?})"))?;
    let repairs = store.recovery().repairs.clone();
    findings.repairs = Some(repairs.clone());
    if taken.backup.is_some() {
        ensure!(repairs.is_empty(), "a backup opened with repairs");
    }

    let events = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .map_err(|e| format!("read failed: {e}"))?;
    let n = events.len();
    findings.events = Some(n as u64);
    ensure!(
        n <= original.events.len(),
        "the copy holds {n} events, the original only {}",
        original.events.len()
    );
    if let Some(i) = (0..n).find(|&i| events[i] != original.events[i]) {
        return Err(format!(
            "not a prefix of the original: at index {i} the copy holds {:?}, the original {:?}",
            events[i], original.events[i]
        ));
    }
    ensure!(
        taken.needed() <= n as u64,
        "the copy holds {n} events, but appends up to position {} were acknowledged before it \
         began",
        taken.needed()
    );
    for ack in &taken.acked_before {
        holds_ack(&events, ack)?;
    }
    if let Some(backup) = &taken.backup {
        ensure!(
            backup.events == n as u64 && backup.head.map(|p| p.get()) == Some(n as u64),
            "the backup reported {} events (head {:?}); the copy holds {n}",
            backup.events,
            backup.head
        );
    }

    // Byte for byte: each copied segment is a prefix of the original's, all but the last whole.
    let copied = read_segments(&dir);
    ensure!(
        copied.len() <= original.segments.len(),
        "the copy has {} segment files, the original {}",
        copied.len(),
        original.segments.len()
    );
    for (k, ((name, bytes), (original_name, original_bytes))) in
        copied.iter().zip(&original.segments).enumerate()
    {
        ensure!(
            name == original_name,
            "segment file {name} where the original has {original_name}"
        );
        let whole = k + 1 < copied.len();
        ensure!(
            original_bytes.starts_with(bytes) && (!whole || bytes.len() == original_bytes.len()),
            "segment file {name} ({} bytes) is not a prefix of the original's ({} bytes)",
            bytes.len(),
            original_bytes.len()
        );
    }

    for repair in &repairs {
        if let Repair::AnchorAheadOfLog {
            anchored,
            found,
            saved_to,
        } = repair
        {
            ensure!(
                *found == n as u64 && anchored > found,
                "AnchorAheadOfLog {{ anchored: {anchored}, found: {found} }} for a copy of {n} \
                 events"
            );
            ensure!(
                saved_to.starts_with(dir.join("recovered")) && saved_to.is_file(),
                "the old anchor was not saved under recovered/: {}",
                saved_to.display()
            );
        }
    }
    if findings.anchor_ahead() {
        ensure!(
            raw.problem
                .as_ref()
                .is_some_and(|p| p.kind == BreakKind::Truncated),
            "the open found the anchor ahead of the log, but verify_folder of the copy as taken \
             did not report it truncated"
        );
    }

    let report = store.verify().map_err(|e| format!("verify failed: {e}"))?;
    findings.verify = Some(report.clone());
    ensure!(
        report.events_checked == n as u64
            && report.head.map(|p| p.get()) == (n > 0).then_some(n as u64),
        "verify checked {} events up to {:?}; the copy holds {n}",
        report.events_checked,
        report.head
    );
    check_verdict(&report, findings.anchor_ahead())?;
    store.close().map_err(|e| format!("close failed: {e}"))?;

    let again = FileEventStore::open_with(root.join(&taken.name), store_options())
        .map_err(|e| format!("second open failed: {e}"))?;
    ensure!(
        again.recovery().is_clean(),
        "the second open repaired again: {:?}",
        again.recovery()
    );
    let event = appended_event(&Appended {
        writer: usize::MAX,
        append: taken.number as u64,
        i: 0,
        n: 1,
    });
    let position = again
        .append_blocking(vec![event], None)
        .map_err(|e| format!("append to the copy failed: {e}"))?;
    ensure!(
        position.get() == n as u64 + 1,
        "an append to the copy of {n} events got position {position:?}"
    );
    let report = again
        .verify()
        .map_err(|e| format!("verify after the append failed: {e}"))?;
    findings.verify_after_append = Some(report.clone());
    check_verdict(&report, findings.anchor_ahead())?;
    again
        .close()
        .map_err(|e| format!("close after the append failed: {e}"))?;
    Ok(())
}

/// A copy verifies intact, unless its open set an anchor ahead of its log aside: then verify
/// reports the copy `Truncated` because of that anchor under `recovered/`.
fn check_verdict(report: &VerifyReport, anchor_ahead: bool) -> Result<(), String> {
    match (&report.problem, anchor_ahead) {
        (None, false) => Ok(()),
        (Some(p), true) if p.kind == BreakKind::Truncated && p.detail.contains("recovered") => {
            Ok(())
        }
        (None, true) => Err(
            "the anchor was ahead of the log, but verify reports the copy \
                             intact: the truncation went undetected"
                .to_owned(),
        ),
        (Some(_), _) => Err("verify reports a problem it should not".to_owned()),
    }
}

fn describe(repair: &Repair) -> String {
    match repair {
        Repair::AnchorAheadOfLog {
            anchored, found, ..
        } => format!("AnchorAheadOfLog(anchored {anchored}, found {found})"),
        Repair::TornTailCut { bytes, .. } => format!("TornTailCut({bytes} bytes)"),
        Repair::CommitsAdopted { from, to } => {
            format!("CommitsAdopted({}..={})", from.get(), to.get())
        }
        Repair::IndexRebuilt { events_scanned, .. } => {
            format!("IndexRebuilt({events_scanned} scanned)")
        }
        other => format!("{other:?}"),
    }
}

fn describe_verify(report: Option<&VerifyReport>) -> String {
    match report {
        None => "-".to_owned(),
        Some(report) => match &report.problem {
            None => format!("intact ({} events)", report.events_checked),
            Some(p) => format!("{:?} at {}: {}", p.kind, p.position, p.detail),
        },
    }
}

/// What checking all copies of a run found.
struct Summary {
    copies: usize,
    repaired: usize,
    anchor_ahead: usize,
    anchor_ahead_truncated: usize,
    failures: Vec<String>,
}

/// Checks every copy, prints one line per copy, and collects the failures.
fn check_all(run: &Run, label: &str, original: &Original, taken: &[Taken]) -> Summary {
    let mut summary = Summary {
        copies: taken.len(),
        repaired: 0,
        anchor_ahead: 0,
        anchor_ahead_truncated: 0,
        failures: Vec::new(),
    };
    eprintln!(
        "{label}: {} copies of a store that ended with {} events",
        taken.len(),
        original.events.len()
    );
    for copy in taken {
        let mut findings = Findings::default();
        let result = check_copy(&run.root, original, copy, &mut findings);
        let repairs: Vec<String> = findings.repairs.iter().flatten().map(describe).collect();
        if !repairs.is_empty() {
            summary.repaired += 1;
        }
        if findings.anchor_ahead() {
            summary.anchor_ahead += 1;
            if findings
                .verify
                .as_ref()
                .and_then(|v| v.problem.as_ref())
                .is_some_and(|p| p.kind == BreakKind::Truncated)
            {
                summary.anchor_ahead_truncated += 1;
            }
        }
        let mut line = format!(
            "{label} copy {}: acknowledged before {} (up to position {}), copy holds {}, \
             repairs [{}], verify as taken: {}; after open: {}; after an append: {}",
            copy.number,
            copy.acked_before.len(),
            copy.needed(),
            findings
                .events
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            repairs.join(", "),
            describe_verify(findings.raw_verify.as_ref()),
            describe_verify(findings.verify.as_ref()),
            describe_verify(findings.verify_after_append.as_ref()),
        );
        if !copy.notes.is_empty() {
            let _ = write!(line, "; while copying: {:?}", copy.notes);
        }
        if let Err(problem) = result {
            let _ = write!(line, "\n    FAILED: {problem}");
            summary.failures.push(format!(
                "seed {}, {label} copy {} ({}): {problem}\n    repairs: {:?}\n    verify as \
                 taken: {:?}\n    verify after open: {:?}\n    verify after an append: {:?}",
                run.seed,
                copy.number,
                copy.name,
                findings.repairs,
                findings.raw_verify,
                findings.verify,
                findings.verify_after_append
            ));
        }
        eprintln!("{line}");
    }
    eprintln!(
        "{label}: {} copies, {} needed repairs, {} had the anchor ahead of the log ({} of them \
         verified Truncated), {} failed",
        summary.copies,
        summary.repaired,
        summary.anchor_ahead,
        summary.anchor_ahead_truncated,
        summary.failures.len()
    );
    summary
}

fn assert_no_failures(summary: &Summary) {
    assert!(
        summary.failures.is_empty(),
        "{} of {} copies failed:\n{}",
        summary.failures.len(),
        summary.copies,
        summary.failures.join("\n")
    );
}

/// The copies were taken while appends went on: the later ones began with more acknowledged.
fn assert_taken_while_appending(taken: &[Taken]) {
    let (first, last) = (
        taken.first().expect("copies"),
        taken.last().expect("copies"),
    );
    assert!(
        last.acked_before.len() > first.acked_before.len(),
        "no appends were acknowledged between the first and the last copy"
    );
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// `cp -r` of the store folder, ten times, while two processes append.
#[cfg(unix)]
#[test]
fn cp_r_while_two_processes_append_gives_working_prefixes() {
    let label = "cp -r";
    let mut run = Run::start(label);
    let mut taken = Vec::new();
    for number in 0..CP_COPIES {
        run.writers.assert_running();
        let name = format!("cp-{number:02}");
        let mut copy = Taken::new(number, name, run.writers.acked());
        copy.notes = copy_with_cp(&run.store_dir(), &run.root.join(&copy.name));
        taken.push(copy);
        run.between_copies(number);
    }
    let original = run.finish();
    let summary = check_all(&run, label, &original, &taken);
    assert_no_failures(&summary);
    assert_taken_while_appending(&taken);
}

/// File by file in alphabetical order, 20 ms between files, while two processes append: the
/// anchor, copied after the log, is usually ahead of it.
#[test]
fn alphabetical_copy_while_two_processes_append_gives_working_prefixes() {
    let label = "alphabetical";
    let mut run = Run::start(label);
    let mut taken = Vec::new();
    for number in 0..ALPHABETICAL_COPIES {
        run.writers.assert_running();
        let name = format!("alpha-{number:02}");
        let mut copy = Taken::new(number, name, run.writers.acked());
        copy.notes = copy_alphabetically(&run.store_dir(), &run.root.join(&copy.name), FILE_PAUSE);
        taken.push(copy);
        run.between_copies(number);
    }
    let original = run.finish();
    let summary = check_all(&run, label, &original, &taken);
    assert_no_failures(&summary);
    assert_taken_while_appending(&taken);
    assert!(
        summary.anchor_ahead >= 1,
        "no alphabetical copy had its anchor ahead of its log (seed {})",
        run.seed
    );
    assert_eq!(
        summary.anchor_ahead_truncated, summary.anchor_ahead,
        "every copy whose anchor was ahead verifies Truncated"
    );
}

/// `FileEventStore::backup` through a handle in the parent, eight times, while two processes
/// append: each backup opens without repair and verifies intact.
#[test]
fn backup_while_two_processes_append_gives_clean_prefixes() {
    let label = "backup";
    let mut run = Run::start(label);
    let handle = FileEventStore::open_with(run.root.join(STORE_NAME), store_options())
        .expect("open a parent handle");
    let mut taken = Vec::new();
    for number in 0..BACKUPS {
        run.writers.assert_running();
        let name = format!("backup-{number:02}");
        let mut copy = Taken::new(number, name, run.writers.acked());
        let dest = run.root.join(&copy.name);
        let report = handle
            .backup(&dest)
            .unwrap_or_else(|e| panic!("backup {number} failed: {e} (seed {})", run.seed));
        assert_eq!(report.path, dest);
        copy.backup = Some(report);
        taken.push(copy);
        run.between_copies(number);
    }
    handle.close().expect("close the parent handle");
    let original = run.finish();
    let summary = check_all(&run, label, &original, &taken);
    assert_no_failures(&summary);
    assert_taken_while_appending(&taken);
    assert_eq!(summary.repaired, 0, "a backup opens without any repair");
}
