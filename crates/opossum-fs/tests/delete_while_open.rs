//! Deleting a store while other handles still have it open.
//!
//! [`FileEventStore::delete`] promises that every other handle of the store, in this process or
//! another, gets [`Error::StoreDeleted`] from its next append or read on, never an
//! acknowledgement, and that the deleted folder stays gone. The scenarios:
//!
//! 1. **Another handle in this process.** Handles A and B are open on one store; A is deleted
//!    on another thread; B's appends, reads and `read_last` must then all be `StoreDeleted`, and
//!    neither those calls nor closing B may recreate the folder. Once for a store that holds
//!    events, once for a store never appended to (opening a new store already writes its
//!    `head.json`, anchoring the empty log, so the delete still marks it), and once for an empty
//!    store whose `head.json` was removed by hand, so no handle has a file to find a mark in and
//!    B can only notice that the files are gone. A further variant has B appending in a loop on
//!    its own thread while A is deleted.
//! 2. **Another process.** This test binary re-executes itself as a child process
//!    (`<test binary> --exact child_process_entry --nocapture --test-threads=1`, with
//!    `OPOSSUM_DELETE_CHILD_ROLE` naming the role; without it `child_process_entry` is a trivial
//!    pass). An *appender* child appends one event at a time and records each acknowledged
//!    position, flushed, in a file outside the store, until an append fails; it then records the
//!    error's `Debug` text and exits 0. The parent lets it acknowledge some appends, deletes the
//!    store through its own handle and then creates a marker file; the child looks for the
//!    marker before each append, so an acknowledgement of an append that started after the
//!    delete returned is told apart, without clocks, from the one append that may have been in
//!    flight (committed before the delete took the lock). A *reader* child only reads in a loop
//!    and must get `StoreDeleted` the same way. In both the folder must stay gone.
//! 3. **Delete, then re-create.** After A is deleted, a new `open` at the same path creates a
//!    fresh, empty store. The old handle B must still get `StoreDeleted` (the store it knew is
//!    gone; the new one is another store) and must not write into the new store, which holds
//!    only what was appended through the new handle, also after B is closed and the new store
//!    is opened again.
//!
//! Every scenario runs under a hard timeout, so a hang fails the test instead of blocking the
//! run; the children also stop by themselves when the store never refuses them.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use opossum_core::{NewEvent, Payload, Query, ReadOptions, SequencedEvent};
use opossum_fs::{Error, FileEventStore, StoreOptions};
use serde::{Deserialize, Serialize};

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_DELETE_CHILD_ROLE";
const ROOT_VAR: &str = "OPOSSUM_DELETE_CHILD_ROOT";
const STORE_VAR: &str = "OPOSSUM_DELETE_CHILD_STORE";
const SYNC_VAR: &str = "OPOSSUM_DELETE_CHILD_SYNC";

const STORE_NAME: &str = "doomed";

/// Files in a child's sync folder (outside the store).
const ACKS_FILE: &str = "acks";
const READY_FILE: &str = "ready";
const DELETED_MARKER: &str = "deleted";
const OUTCOME_FILE: &str = "outcome";

/// Hang guards only: a healthy scenario takes well under a second or two.
const TEST_TIMEOUT: Duration = Duration::from_secs(150);
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A child whose store never refuses it stops by itself after this long...
const CHILD_RUN_LIMIT: Duration = Duration::from_secs(60);
/// ...or after this many acknowledged appends or successful reads begun after the delete.
const MAX_ANSWERS_AFTER_DELETE: usize = 50;
/// How many appends the child acknowledges before the parent deletes the store.
const ACKS_BEFORE_DELETE: usize = 20;

#[derive(Serialize, Deserialize)]
struct Probe {
    by: String,
    n: u64,
}

fn probe(by: &str, n: u64) -> NewEvent {
    let payload = Probe {
        by: by.to_owned(),
        n,
    };
    NewEvent::builder(
        "Probe",
        Payload::from_value(&payload).expect("encodable payload"),
    )
    .tag("by", by)
    .build()
    .expect("valid event")
}

/// Who appended each event, in log order.
fn writers(events: &[SequencedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.event
                .payload()
                .decode::<Probe>()
                .map_or_else(|e| format!("<undecodable: {e}>"), |p| p.by)
        })
        .collect()
}

fn store_options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

fn open(root: &Path) -> FileEventStore {
    FileEventStore::open_with(root.join(STORE_NAME), store_options()).expect("open the store")
}

/// The answer the tests demand from a handle whose store was deleted.
fn is_store_deleted(error: &opossum_core::Error) -> bool {
    error.kind() == opossum_core::ErrorKind::Closed
        && matches!(Error::of(error), Some(Error::StoreDeleted { .. }))
}

/// The same, judged on the `Debug` text of the error a child recorded.
fn is_store_deleted_text(debug: &str) -> bool {
    debug.starts_with("StoreDeleted")
}

/// Runs `body` on its own thread and fails the test when it has not finished within `limit`.
fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        let value = body();
        let _ = done.send(());
        value
    });
    match finished.recv_timeout(limit) {
        // Finished, or panicked (the sender dropped): join hands back the value or the panic.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the scenario did not finish within {limit:?}: a hang")
        }
    }
}

/// What a scenario found wrong; reported all at once so one run shows the whole behaviour.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// Records a finding unless `result` is `Err(StoreDeleted)`.
    fn expect_deleted<T: Debug>(&mut self, what: &str, result: Result<T, opossum_core::Error>) {
        match result {
            Err(e) if is_store_deleted(&e) => eprintln!("{what}: {e}"),
            Err(e) => self.0.push(format!(
                "{what}: expected StoreDeleted, got another error: {e:?} ({e})"
            )),
            Ok(value) => self.0.push(format!(
                "{what}: expected StoreDeleted, the store answered Ok({})",
                shortened(&format!("{value:?}"))
            )),
        }
    }

    fn expect_gone(&mut self, folder: &Path, when: &str) {
        if folder.exists() {
            self.0.push(format!(
                "{when}: the store folder {} exists again, holding {:?}",
                folder.display(),
                tree(folder)
            ));
        }
    }

    fn check(&mut self, ok: bool, finding: impl FnOnce() -> String) {
        if !ok {
            self.0.push(finding());
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} finding(s):\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

/// `text`, cut to a readable length.
fn shortened(text: &str) -> String {
    const MAX: usize = 240;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} chars)", &text[..cut], text.chars().count()),
        None => text.to_owned(),
    }
}

/// Every file under `folder`, relative to it.
fn tree(folder: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path.strip_prefix(base).unwrap_or(&path);
                out.push(relative.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(folder, folder, &mut out);
    out.sort();
    out
}

/// Appends one event through `store` and returns its position.
fn append(store: &FileEventStore, by: &str, n: u64) -> u64 {
    store
        .append_blocking(vec![probe(by, n)], None)
        .unwrap_or_else(|e| panic!("append by {by} before the delete failed: {e}"))
        .get()
}

fn read_all(store: &FileEventStore) -> Vec<SequencedEvent> {
    store
        .read_blocking(&Query::all(), ReadOptions::new())
        .expect("read the store")
}

// ---------------------------------------------------------------------------------------------
// 1. Another handle in this process.

/// What the store holds when A deletes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Before {
    /// Events appended through both handles.
    Events,
    /// Never appended to (opening it wrote its `head.json`, anchoring the empty log).
    Empty,
    /// Never appended to, and its `head.json` removed by hand while both handles were open, so
    /// there is no file for the delete to mark: B can only notice that the files are gone.
    EmptyWithoutHead,
}

/// Opens handles A and B, prepares the store as `before` says, deletes it through A on another
/// thread and checks what B answers and leaves behind.
fn other_handle_in_this_process(before: Before) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let folder = root.join(STORE_NAME);
    let head = folder.join("head.json");
    let a = open(&root);
    let b = open(&root);
    match before {
        Before::Events => {
            append(&a, "A", 1);
            append(&b, "B", 2);
            append(&a, "A", 3);
            append(&b, "B", 4);
            assert_eq!(writers(&read_all(&b)), ["A", "B", "A", "B"]);
            assert_eq!(writers(&read_all(&a)), ["A", "B", "A", "B"]);
        }
        Before::Empty => assert!(read_all(&b).is_empty()),
        Before::EmptyWithoutHead => {
            assert!(read_all(&b).is_empty());
            fs::remove_file(&head).expect("remove head.json");
        }
    }
    eprintln!(
        "{before:?}: before the delete the folder holds {:?}",
        tree(&folder)
    );
    assert_eq!(head.exists(), before != Before::EmptyWithoutHead);

    let deleter = thread::spawn(move || a.delete());
    deleter
        .join()
        .expect("the deleting thread panicked")
        .expect("delete through A");
    assert!(!folder.exists(), "delete left {:?}", tree(&folder));

    let mut findings = Findings::default();
    findings.expect_deleted(
        "B's append after the delete",
        b.append_blocking(vec![probe("B", 5)], None),
    );
    findings.expect_gone(&folder, "after B's append");
    findings.expect_deleted(
        "B's read after the delete",
        b.read_blocking(&Query::all(), ReadOptions::new()),
    );
    findings.expect_deleted(
        "B's read_last after the delete",
        b.read_last_blocking(&Query::all()),
    );
    findings.expect_deleted(
        "B's second append after the delete",
        b.append_blocking(vec![probe("B", 6)], None),
    );
    findings.expect_deleted(
        "B's second read after the delete",
        b.read_blocking(&Query::all(), ReadOptions::new()),
    );
    findings.expect_gone(&folder, "after B's appends and reads");
    let closed = b.close();
    eprintln!("closing B after the delete: {closed:?}");
    findings.expect_gone(&folder, "after closing B");
    findings.assert_none();
}

#[test]
fn another_thread_deletes_a_store_with_events_and_the_other_handle_gets_store_deleted() {
    within(TEST_TIMEOUT, || {
        other_handle_in_this_process(Before::Events)
    });
}

#[test]
fn another_thread_deletes_a_never_appended_store_and_the_other_handle_gets_store_deleted() {
    within(TEST_TIMEOUT, || other_handle_in_this_process(Before::Empty));
}

#[test]
fn another_thread_deletes_a_store_without_head_json_and_the_other_handle_gets_store_deleted() {
    within(TEST_TIMEOUT, || {
        other_handle_in_this_process(Before::EmptyWithoutHead);
    });
}

/// Handle B appends in a loop on its own thread while A is deleted: no append that began after
/// the delete returned is acknowledged, and B's first failure is `StoreDeleted`.
#[test]
fn a_handle_appending_on_another_thread_while_the_store_is_deleted_gets_store_deleted() {
    within(TEST_TIMEOUT, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let folder = root.join(STORE_NAME);
        let a = open(&root);
        let b = open(&root);
        let deleted = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let appender = {
            let (deleted, acked) = (Arc::clone(&deleted), Arc::clone(&acked));
            thread::spawn(move || {
                // (position, began after the delete returned)
                let mut acks: Vec<(u64, bool)> = Vec::new();
                let started = Instant::now();
                for n in 1.. {
                    let after = deleted.load(Ordering::SeqCst);
                    match b.append_blocking(vec![probe("B", n)], None) {
                        Ok(position) => {
                            acks.push((position.get(), after));
                            acked.fetch_add(1, Ordering::SeqCst);
                            let late = acks.iter().filter(|(_, after)| *after).count();
                            if late >= MAX_ANSWERS_AFTER_DELETE
                                || started.elapsed() > CHILD_RUN_LIMIT
                            {
                                return (acks, None, b);
                            }
                        }
                        Err(e) => return (acks, Some(e), b),
                    }
                }
                unreachable!("the loop only ends by returning")
            })
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while acked.load(Ordering::SeqCst) < ACKS_BEFORE_DELETE {
            assert!(
                !appender.is_finished() && Instant::now() < deadline,
                "B stopped or stalled before the delete"
            );
            thread::sleep(Duration::from_millis(1));
        }
        a.delete().expect("delete through A");
        deleted.store(true, Ordering::SeqCst);
        let (acks, error, b) = appender.join().expect("B's appending thread panicked");

        let mut findings = Findings::default();
        let late: Vec<u64> = acks.iter().filter(|(_, a)| *a).map(|(p, _)| *p).collect();
        findings.check(late.is_empty(), || {
            format!(
                "B acknowledged {} append(s) begun after the delete returned, at positions {late:?}",
                late.len()
            )
        });
        match &error {
            Some(e) if is_store_deleted(e) => eprintln!("B's first failure: {e}"),
            Some(e) => findings.0.push(format!(
                "B's first failure is not StoreDeleted: {e:?} ({e})"
            )),
            None => findings.0.push(format!(
                "B never failed: {} acknowledgements in all",
                acks.len()
            )),
        }
        eprintln!(
            "B acknowledged {} appends, {} of them begun after the delete",
            acks.len(),
            late.len()
        );
        findings.expect_gone(&folder, "after B's failed append");
        findings.expect_deleted(
            "B's read after the delete",
            b.read_blocking(&Query::all(), ReadOptions::new()),
        );
        let closed = b.close();
        eprintln!("closing B after the delete: {closed:?}");
        findings.expect_gone(&folder, "after closing B");
        findings.assert_none();
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Another process: the child side.

/// Entry point of the child processes; a no-op unless `OPOSSUM_DELETE_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let params = ChildParams::from_env();
    match role.as_str() {
        "appender" => appender_child(&params),
        "reader" => reader_child(&params),
        other => panic!("unknown {ROLE_VAR} {other:?}"),
    }
}

struct ChildParams {
    root: PathBuf,
    store: String,
    sync: PathBuf,
}

impl ChildParams {
    fn from_env() -> ChildParams {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("child process without {name}"))
        };
        ChildParams {
            root: PathBuf::from(var(ROOT_VAR)),
            store: var(STORE_VAR),
            sync: PathBuf::from(var(SYNC_VAR)),
        }
    }

    fn set_on(&self, role: &str, command: &mut Command) {
        command
            .env(ROLE_VAR, role)
            .env(ROOT_VAR, &self.root)
            .env(STORE_VAR, &self.store)
            .env(SYNC_VAR, &self.sync);
    }

    fn open(&self) -> FileEventStore {
        FileEventStore::open_with(self.root.join(&self.store), store_options())
            .unwrap_or_else(|e| panic!("child could not open the store: {e}"))
    }

    fn folder(&self) -> PathBuf {
        self.root.join(&self.store)
    }

    /// Whether the parent has announced that its delete returned.
    fn delete_returned(&self) -> bool {
        self.sync.join(DELETED_MARKER).exists()
    }

    /// Waits (bounded) until the parent's delete has returned, so what the child then finds in
    /// the folder is not the delete still at work. Returns whether it has.
    fn wait_for_delete_returned(&self) -> bool {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.delete_returned() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Writes the outcome, `key: value` lines, in one piece.
    fn write_outcome(&self, lines: &[(&str, String)]) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let tmp = self.sync.join(format!("{OUTCOME_FILE}.tmp"));
        fs::write(&tmp, text).expect("write the outcome");
        fs::rename(&tmp, self.sync.join(OUTCOME_FILE)).expect("publish the outcome");
    }
}

/// Appends one event at a time until an append fails, recording each acknowledgement.
fn appender_child(params: &ChildParams) {
    let store = params.open();
    let mut acks = File::create(params.sync.join(ACKS_FILE)).expect("create the acks file");
    let started = Instant::now();
    let mut late = 0;
    let mut failure = None;
    for n in 1.. {
        let after = params.delete_returned();
        match store.append_blocking(vec![probe("child", n)], None) {
            Ok(position) => {
                // One write per line, so the parent never reads half of one.
                let line = format!("{} {}\n", position.get(), u8::from(after));
                acks.write_all(line.as_bytes()).expect("record an ack");
                acks.flush().expect("flush the acks file");
                late += usize::from(after);
                if late >= MAX_ANSWERS_AFTER_DELETE || started.elapsed() > CHILD_RUN_LIMIT {
                    break;
                }
            }
            Err(e) => {
                // The file store's own error, as its variant names it.
                failure = Some(format!("{:?}", Error::from(e)));
                break;
            }
        }
    }
    let delete_returned = params.wait_for_delete_returned();
    let folder_after_failure = params.folder().exists();
    let closed = store.close();
    params.write_outcome(&[
        (
            "first-failure",
            failure.unwrap_or_else(|| format!("none ({late} acks begun after the delete)")),
        ),
        ("delete-returned", delete_returned.to_string()),
        ("folder-after-failure", folder_after_failure.to_string()),
        ("close", format!("{closed:?}")),
        ("folder-after-close", params.folder().exists().to_string()),
    ]);
}

/// Reads the whole store in a loop until a read fails.
fn reader_child(params: &ChildParams) {
    let store = params.open();
    let started = Instant::now();
    let (mut reads, mut late) = (0_usize, 0_usize);
    let mut failure = None;
    loop {
        let after = params.delete_returned();
        match store.read_blocking(&Query::all(), ReadOptions::new()) {
            Ok(events) => {
                reads += 1;
                if reads == 1 {
                    fs::write(params.sync.join(READY_FILE), events.len().to_string())
                        .expect("announce the first read");
                }
                late += usize::from(after);
                if late >= MAX_ANSWERS_AFTER_DELETE || started.elapsed() > CHILD_RUN_LIMIT {
                    break;
                }
            }
            Err(e) => {
                // The file store's own error, as its variant names it.
                failure = Some(format!("{:?}", Error::from(e)));
                break;
            }
        }
        thread::sleep(Duration::from_micros(200));
    }
    let delete_returned = params.wait_for_delete_returned();
    let read_last = store.read_last_blocking(&Query::all()).map_err(Error::from);
    let folder_after_failure = params.folder().exists();
    let closed = store.close();
    params.write_outcome(&[
        (
            "first-failure",
            failure.unwrap_or_else(|| format!("none ({late} reads begun after the delete)")),
        ),
        ("delete-returned", delete_returned.to_string()),
        ("reads", reads.to_string()),
        ("reads-begun-after-delete", late.to_string()),
        ("read-last-after", format!("{read_last:?}")),
        ("folder-after-failure", folder_after_failure.to_string()),
        ("close", format!("{closed:?}")),
        ("folder-after-close", params.folder().exists().to_string()),
    ]);
}

// ---------------------------------------------------------------------------------------------
// 2. Another process: the parent side.

/// One child process; killed when dropped while still running.
struct ChildProcess {
    child: Child,
    log: PathBuf,
    sync: PathBuf,
}

impl ChildProcess {
    fn spawn(role: &str, params: &ChildParams, log_dir: &Path) -> ChildProcess {
        let exe = std::env::current_exe().expect("the test binary");
        let log = log_dir.join(format!("{role}.log"));
        let log_file = File::create(&log).expect("create the child's log");
        let mut command = Command::new(exe);
        command
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file);
        params.set_on(role, &mut command);
        ChildProcess {
            child: command.spawn().expect("spawn the child"),
            log,
            sync: params.sync.clone(),
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<{e}>"))
    }

    /// Waits until `ready` holds, failing when the child exits first or it takes too long.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&Path) -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready(&self.sync) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the child exited with {status} before {what}\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the child did not reach {what} within {READY_TIMEOUT:?}\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "the child still ran {CHILD_TIMEOUT:?} after the delete (hang?); killed it\n{}",
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn outcome(&self) -> BTreeMap<String, String> {
        let text = fs::read_to_string(self.sync.join(OUTCOME_FILE)).unwrap_or_else(|e| {
            panic!("the child left no outcome ({e})\n{}", self.output());
        });
        text.lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The acknowledgements an appender child recorded: (position, began after the delete).
fn recorded_acks(sync: &Path) -> Vec<(u64, bool)> {
    let text = fs::read_to_string(sync.join(ACKS_FILE)).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            let (position, after) = line.trim_end().split_once(' ').expect("an ack line");
            (
                position.parse().expect("a position"),
                after == "1", // written as 0 or 1
            )
        })
        .collect()
}

struct Scene {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sync: PathBuf,
    logs: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("temp dir");
        let (root, sync, logs) = (
            dir.path().join("root"),
            dir.path().join("sync"),
            dir.path().join("logs"),
        );
        for folder in [&root, &sync, &logs] {
            fs::create_dir(folder).expect("create a scene folder");
        }
        Scene {
            _dir: dir,
            root,
            sync,
            logs,
        }
    }

    fn params(&self) -> ChildParams {
        ChildParams {
            root: self.root.clone(),
            store: STORE_NAME.to_owned(),
            sync: self.sync.clone(),
        }
    }

    fn folder(&self) -> PathBuf {
        self.root.join(STORE_NAME)
    }

    fn announce_delete_returned(&self) {
        File::create(self.sync.join(DELETED_MARKER)).expect("create the delete marker");
    }
}

/// Checks the parts of a child's outcome common to both roles.
fn check_child_outcome(
    findings: &mut Findings,
    child: &mut ChildProcess,
    status: ExitStatus,
    folder: &Path,
) -> BTreeMap<String, String> {
    if !status.success() {
        findings.0.push(format!(
            "the child exited with {status} (a panic?)\n{}",
            child.output()
        ));
        return BTreeMap::new();
    }
    let outcome = child.outcome();
    eprintln!("child outcome: {outcome:#?}");
    let first = outcome.get("first-failure").cloned().unwrap_or_default();
    findings.check(is_store_deleted_text(&first), || {
        format!("the child's first failure is not StoreDeleted: {first}")
    });
    findings.check(
        outcome.get("delete-returned").is_some_and(|v| v == "true"),
        || "the child never saw the delete marker".to_owned(),
    );
    // Both looked after the delete had returned (the child waits for the marker first).
    for key in ["folder-after-failure", "folder-after-close"] {
        findings.check(outcome.get(key).is_some_and(|v| v == "false"), || {
            format!(
                "the child saw the store folder {}: {key} = {:?}",
                folder.display(),
                outcome.get(key)
            )
        });
    }
    findings.expect_gone(folder, "after the child exited");
    outcome
}

/// A process appending in a loop gets `StoreDeleted`, and no append it began after the delete
/// returned is acknowledged.
#[test]
fn a_process_appending_in_a_loop_gets_store_deleted_and_no_ack_after_the_delete() {
    within(TEST_TIMEOUT, || {
        let scene = Scene::new();
        let parent = open(&scene.root);
        let mut child = ChildProcess::spawn("appender", &scene.params(), &scene.logs);
        child.wait_until(&format!("{ACKS_BEFORE_DELETE} acknowledgements"), |sync| {
            recorded_acks(sync).len() >= ACKS_BEFORE_DELETE
        });
        parent.delete().expect("delete through the parent's handle");
        scene.announce_delete_returned();
        let acked_before_return = recorded_acks(&scene.sync).len();
        let status = child.wait();

        let mut findings = Findings::default();
        check_child_outcome(&mut findings, &mut child, status, &scene.folder());
        let acks = recorded_acks(&scene.sync);
        let late: Vec<u64> = acks.iter().filter(|(_, a)| *a).map(|(p, _)| *p).collect();
        findings.check(late.is_empty(), || {
            format!(
                "the child got {} acknowledgement(s) for appends begun after the delete returned, \
                 at positions {late:?}",
                late.len()
            )
        });
        let positions: Vec<u64> = acks.iter().map(|(p, _)| *p).collect();
        findings.check(positions.iter().copied().eq(1..=acks.len() as u64), || {
            format!("acknowledged positions are not 1..=n: {positions:?}")
        });
        eprintln!(
            "the child recorded {acked_before_return} acks when the delete had returned, {} in \
             all ({} begun after the delete)",
            acks.len(),
            late.len()
        );
        findings.assert_none();
    });
}

/// A process that only reads gets `StoreDeleted` from its reads after the delete.
fn reader_process(events_before: u64) {
    let scene = Scene::new();
    let parent = open(&scene.root);
    for n in 1..=events_before {
        append(&parent, "parent", n);
    }
    let mut child = ChildProcess::spawn("reader", &scene.params(), &scene.logs);
    let expected = events_before.to_string();
    child.wait_until("its first read", |sync| {
        fs::read_to_string(sync.join(READY_FILE)).is_ok_and(|n| n == expected)
    });
    parent.delete().expect("delete through the parent's handle");
    scene.announce_delete_returned();
    let status = child.wait();

    let mut findings = Findings::default();
    let outcome = check_child_outcome(&mut findings, &mut child, status, &scene.folder());
    if let Some(late) = outcome.get("reads-begun-after-delete") {
        findings.check(late == "0", || {
            format!("{late} read(s) begun after the delete returned succeeded")
        });
    }
    if let Some(read_last) = outcome.get("read-last-after") {
        findings.check(read_last.starts_with("Err(StoreDeleted"), || {
            format!("read_last after the failed read answered {read_last}")
        });
    }
    findings.assert_none();
}

#[test]
fn a_process_reading_a_store_with_events_in_a_loop_gets_store_deleted() {
    within(TEST_TIMEOUT, || reader_process(5));
}

#[test]
fn a_process_reading_a_never_appended_store_in_a_loop_gets_store_deleted() {
    within(TEST_TIMEOUT, || reader_process(0));
}

// ---------------------------------------------------------------------------------------------
// 3. Delete, then re-create.

/// After A is deleted and a new store is created at the same path, the old handle B is refused
/// and writes nothing into the new store.
fn delete_then_recreate(with_events: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let a = open(&root);
    let b = open(&root);
    if with_events {
        append(&a, "A", 1);
        append(&b, "B", 2);
        assert_eq!(writers(&read_all(&b)), ["A", "B"]);
    }
    a.delete().expect("delete through A");

    let c = open(&root);
    assert!(
        read_all(&c).is_empty(),
        "a new store at the path starts empty"
    );
    let mut findings = Findings::default();
    // The new store has no head.json yet...
    findings.expect_deleted(
        "B's append into a fresh store at its path (nothing appended there yet)",
        b.append_blocking(vec![probe("B", 10)], None),
    );
    findings.expect_deleted(
        "B's read of the fresh store (nothing appended there yet)",
        b.read_blocking(&Query::all(), ReadOptions::new()),
    );
    // ...and now it has.
    append(&c, "C", 1);
    append(&c, "C", 2);
    findings.expect_deleted(
        "B's append into the new store holding C's events",
        b.append_blocking(vec![probe("B", 11)], None),
    );
    findings.expect_deleted(
        "B's read of the new store",
        b.read_blocking(&Query::all(), ReadOptions::new()),
    );
    findings.expect_deleted(
        "B's read_last of the new store",
        b.read_last_blocking(&Query::all()),
    );

    let seen_by_c = read_all(&c);
    findings.check(writers(&seen_by_c) == ["C", "C"], || {
        format!(
            "the new store holds {:?}, not just C's two events",
            writers(&seen_by_c)
        )
    });
    // Closing B saves nothing into the new store: not even its index snapshot, which would
    // describe B's store rather than this one.
    let snapshot = root.join(STORE_NAME).join("index").join("snapshot.bin");
    let snapshot_before = fs::read(&snapshot).ok();
    let closed = b.close();
    eprintln!("closing B after the re-create: {closed:?}");
    findings.check(fs::read(&snapshot).ok() == snapshot_before, || {
        format!(
            "closing B rewrote the new store's {} (it held {} bytes before, {} after)",
            snapshot.display(),
            snapshot_before.as_ref().map_or(0, Vec::len),
            fs::read(&snapshot).map_or(0, |b| b.len())
        )
    });
    // A handle opened now, while C is still open, finds C's events only.
    let e = open(&root);
    let seen_by_e = read_all(&e);
    findings.check(writers(&seen_by_e) == ["C", "C"], || {
        format!(
            "opened after B's close, the new store holds {:?}, not just C's two events",
            writers(&seen_by_e)
        )
    });
    drop(e);
    append(&c, "C", 3);
    c.close().expect("close C");

    // Opened afresh (no handle's memory involved), the new store holds C's events only.
    let d = open(&root);
    let events = read_all(&d);
    let positions: Vec<u64> = events.iter().map(|e| e.position.get()).collect();
    findings.check(
        writers(&events) == ["C", "C", "C"] && positions == [1, 2, 3],
        || {
            format!(
                "reopened, the new store holds {:?} at {positions:?}, not C's three events",
                writers(&events)
            )
        },
    );
    match d.verify() {
        Ok(report) => findings.check(report.is_intact() && report.events_checked == 3, || {
            format!("verify of the new store: {report:?}")
        }),
        Err(e) => findings
            .0
            .push(format!("verify of the new store failed: {e:?}")),
    }
    findings.assert_none();
}

#[test]
fn after_delete_and_recreate_the_old_handle_of_a_store_with_events_is_refused() {
    within(TEST_TIMEOUT, || delete_then_recreate(true));
}

#[test]
fn after_delete_and_recreate_the_old_handle_of_a_never_appended_store_is_refused() {
    within(TEST_TIMEOUT, || delete_then_recreate(false));
}
