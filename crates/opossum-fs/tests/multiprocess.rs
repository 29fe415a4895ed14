//! Several real processes appending to one store folder at the same time.
//!
//! Each scenario re-executes this test binary as its child processes:
//! `<test binary> --exact child_process_entry --nocapture --test-threads=1`, with
//! `OPOSSUM_CHILD_ROLE` naming the role and the other `OPOSSUM_CHILD_*` variables carrying its
//! parameters. Without `OPOSSUM_CHILD_ROLE`, `child_process_entry` returns at once, so in a
//! normal test run it is a trivial pass.
//!
//! Children rendezvous before they start: each creates `ready-<i>` in a sync folder and waits
//! for the parent to create `go`, so their appends genuinely overlap (the invoice children open
//! the store only after the rendezvous, so they also race to create its folder). The parent
//! never judges by time; timeouts here only turn a hang into a failure.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use opossum_core::{
    AppendCondition, DomainEvent, NewEvent, Payload, Position, Query, ReadOptions, SequencedEvent,
    Tag,
};
use opossum_fs::{FileEventStore, StoreOptions};
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_CHILD_ROLE";
const ROOT_VAR: &str = "OPOSSUM_CHILD_ROOT";
const STORE_VAR: &str = "OPOSSUM_CHILD_STORE";
const INDEX_VAR: &str = "OPOSSUM_CHILD_INDEX";
const QUOTA_VAR: &str = "OPOSSUM_CHILD_QUOTA";
const SYNC_VAR: &str = "OPOSSUM_CHILD_SYNC";

const CHILDREN: usize = 4;
const INVOICES_PER_CHILD: usize = 25;
const BATCHES_PER_CHILD: usize = 200;
const STORE_NAME: &str = "shared";

/// Hang guards only: a healthy run takes a few seconds.
const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(60);
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A child that fails this many conditions in a row without creating an invoice is live-locked
/// (for example because `read_last` never sees the other processes' appends).
const MAX_CONSECUTIVE_CONFLICTS: u32 = 20_000;

#[derive(Serialize, Deserialize)]
struct InvoiceCreated {
    number: u64,
    child: usize,
}

impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}

/// The payload of each event of the batch workload.
#[derive(Serialize, Deserialize)]
struct BatchItem {
    batch: String,
    i: usize,
    n: usize,
}

// ---------------------------------------------------------------------------------------------
// The child side.

/// Entry point of the child processes; a no-op unless `OPOSSUM_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let params = ChildParams::from_env();
    match role.as_str() {
        "invoices" => invoice_child(&params),
        "batches" => batch_child(&params),
        other => panic!("unknown {ROLE_VAR} {other:?}"),
    }
}

struct ChildParams {
    root: PathBuf,
    store: String,
    index: usize,
    quota: usize,
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
            index: var(INDEX_VAR).parse().expect("child index is a number"),
            quota: var(QUOTA_VAR).parse().expect("quota is a number"),
            sync: PathBuf::from(var(SYNC_VAR)),
        }
    }

    fn set_on(&self, role: &str, command: &mut Command) {
        command
            .env(ROLE_VAR, role)
            .env(ROOT_VAR, &self.root)
            .env(STORE_VAR, &self.store)
            .env(INDEX_VAR, self.index.to_string())
            .env(QUOTA_VAR, self.quota.to_string())
            .env(SYNC_VAR, &self.sync);
    }

    /// Announces this child is up, then waits until the parent lets every child go at once.
    fn rendezvous(&self) {
        File::create(self.sync.join(format!("ready-{}", self.index))).expect("create ready file");
        let go = self.sync.join("go");
        let deadline = Instant::now() + RENDEZVOUS_TIMEOUT;
        while !go.exists() {
            assert!(
                Instant::now() < deadline,
                "child {} was never released",
                self.index
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn open(&self) -> FileEventStore {
        FileEventStore::open_with(self.root.join(&self.store), store_options())
            .unwrap_or_else(|e| panic!("child {} could not open the store: {e}", self.index))
    }
}

fn store_options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

/// Creates `quota` gap-free invoice numbers with the DCB decide-append-retry loop.
fn invoice_child(params: &ChildParams) {
    params.rendezvous();
    // Opening here, after the rendezvous, makes the children race to create the store folder.
    let store = params.open();
    let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE]).expect("query");
    let (mut created, mut conflicts, mut consecutive) = (0, 0_u64, 0_u32);
    while created < params.quota {
        let last = store
            .read_last_blocking(&invoices)
            .unwrap_or_else(|e| panic!("child {}: read_last failed: {e}", params.index));
        let next = match &last {
            Some(event) => {
                event
                    .decode::<InvoiceCreated>()
                    .expect("invoice payload")
                    .number
                    + 1
            }
            None => 1,
        };
        let event = NewEvent::from_typed(&InvoiceCreated {
            number: next,
            child: params.index,
        })
        .tag("invoice", next.to_string())
        .tag("child", params.index.to_string())
        .build()
        .expect("valid event");
        let guard = AppendCondition::new(invoices.clone()).after(last.map(|e| e.position));
        match store.append_blocking(vec![event], Some(guard)) {
            Ok(_) => {
                created += 1;
                think(params.index, created);
                consecutive = 0;
            }
            Err(e) if e.is_condition_failed() => {
                conflicts += 1;
                consecutive += 1;
                assert!(
                    consecutive < MAX_CONSECUTIVE_CONFLICTS,
                    "child {}: {consecutive} condition failures in a row after {created} \
                     invoices; is read_last blind to other processes' appends?",
                    params.index
                );
            }
            Err(e) => panic!(
                "child {}: append of invoice {next} failed: {e}",
                params.index
            ),
        }
    }
    eprintln!(
        "child {}: created {created} invoices, {conflicts} condition failures",
        params.index
    );
}

/// Appends `quota` unconditional batches of 1–5 events and, every few appends, checks that what
/// it can read (including other processes' batches) never shows half a batch.
fn batch_child(params: &ChildParams) {
    let store = params.open();
    params.rendezvous();
    let mut seen = 0_u64;
    for k in 0..params.quota {
        think(params.index, k);
        let id = batch_id(params.index, k);
        let len = batch_len(params.index, k);
        let events = (0..len).map(|i| batch_event(&id, i, len)).collect();
        let last = store
            .append_blocking(events, None)
            .unwrap_or_else(|e| panic!("child {}: append of batch {id} failed: {e}", params.index));
        assert!(
            last.get() >= len as u64,
            "batch {id} of {len} events ended at position {last:?}"
        );
        if k % 10 == 9 {
            let options = match Position::new(seen) {
                Ok(position) => ReadOptions::new().after(position),
                Err(_) => ReadOptions::new(), // nothing seen yet
            };
            let fresh = store
                .read_blocking(&Query::all(), options)
                .unwrap_or_else(|e| panic!("child {}: read failed: {e}", params.index));
            if let Err(problem) = scan_batches(&fresh, seen + 1) {
                panic!(
                    "child {} saw an inconsistent log after position {seen}: {problem}",
                    params.index
                );
            }
            seen += fresh.len() as u64;
        }
    }
}

/// A pause of 0–1 ms between appends, as a real client deciding its next step would make.
///
/// Without it one process tends to re-take the lock file straight after releasing it while the
/// others sleep in their back-off, and the processes run one after another instead of
/// interleaving. The pause only changes how often they interleave, never what is checked.
fn think(child: usize, step: usize) {
    let micros = splitmix64(((child as u64) << 40) ^ step as u64) % 1_000;
    thread::sleep(Duration::from_micros(micros));
}

fn batch_event(id: &str, i: usize, n: usize) -> NewEvent {
    let item = BatchItem {
        batch: id.to_owned(),
        i,
        n,
    };
    NewEvent::builder(
        "BatchItem",
        Payload::from_value(&item).expect("encodable payload"),
    )
    .tag("batch", id)
    .build()
    .expect("valid event")
}

fn batch_id(child: usize, k: usize) -> String {
    format!("c{child}-b{k}")
}

/// The length (1–5) of batch `k` of `child`: deterministic, so the parent can recompute it.
fn batch_len(child: usize, k: usize) -> usize {
    let mixed = splitmix64(((child as u64) << 32) | k as u64);
    1 + usize::try_from(mixed % 5).expect("small")
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A batch as found in the log.
struct FoundBatch {
    id: String,
    first: u64,
    len: usize,
}

/// Checks that `events` start at `first`, are contiguous, and consist of whole batches whose
/// events are adjacent and in order.
fn scan_batches(events: &[SequencedEvent], first: u64) -> Result<Vec<FoundBatch>, String> {
    let mut found: Vec<FoundBatch> = Vec::new();
    let mut open: Option<(String, usize, usize)> = None; // (id, next index, len)
    for (offset, event) in events.iter().enumerate() {
        let position = event.position.get();
        if position != first + offset as u64 {
            return Err(format!(
                "expected position {}, found {position}",
                first + offset as u64
            ));
        }
        let item: BatchItem = event
            .event
            .payload()
            .decode()
            .map_err(|e| format!("position {position}: payload does not decode: {e}"))?;
        let tagged = event
            .event
            .tags()
            .iter()
            .any(|t| t.key() == "batch" && t.value() == item.batch);
        if !tagged {
            return Err(format!(
                "position {position}: batch tag does not match the payload"
            ));
        }
        match open.take() {
            None => {
                if item.i != 0 {
                    return Err(format!(
                        "position {position}: batch {} starts with event {} of {}",
                        item.batch, item.i, item.n
                    ));
                }
                found.push(FoundBatch {
                    id: item.batch.clone(),
                    first: position,
                    len: item.n,
                });
            }
            Some((id, next, len)) => {
                if item.batch != id || item.i != next || item.n != len {
                    return Err(format!(
                        "position {position}: batch {id} expected event {next} of {len}, found \
                         event {} of {} of batch {} (batches interleaved or torn)",
                        item.i, item.n, item.batch
                    ));
                }
            }
        }
        if item.i + 1 < item.n {
            open = Some((item.batch, item.i + 1, item.n));
        }
    }
    match open {
        Some((id, next, len)) => Err(format!(
            "batch {id} is half visible: only {next} of its {len} events can be read"
        )),
        None => Ok(found),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side.

/// Child processes of one scenario; any still running when this is dropped are killed.
struct Fleet {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
    sync: PathBuf,
}

impl Fleet {
    fn spawn(role: &str, params: &[ChildParams], log_dir: &Path) -> Result<Fleet, std::io::Error> {
        let exe = std::env::current_exe()?;
        let mut fleet = Fleet {
            children: Vec::new(),
            logs: Vec::new(),
            sync: params[0].sync.clone(),
        };
        for p in params {
            let log_path = log_dir.join(format!("{role}-{}.log", p.index));
            let log = File::create(&log_path)?;
            let mut command = Command::new(&exe);
            command
                .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            p.set_on(role, &mut command);
            fleet.children.push(command.spawn()?);
            fleet.logs.push(log_path);
        }
        Ok(fleet)
    }

    fn output_of_all(&self) -> String {
        self.logs
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
                format!("--- child {i} ---\n{text}")
            })
            .collect()
    }

    /// Waits until every child is ready, then lets them all go at once.
    fn release_together(&mut self) {
        let deadline = Instant::now() + RENDEZVOUS_TIMEOUT;
        loop {
            let ready = (0..self.children.len())
                .filter(|i| self.sync.join(format!("ready-{i}")).exists())
                .count();
            if ready == self.children.len() {
                break;
            }
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "child {i} exited with {status} before the start\n{}",
                        self.output_of_all()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "only {ready} of {} children became ready\n{}",
                self.children.len(),
                self.output_of_all()
            );
            thread::sleep(Duration::from_millis(5));
        }
        File::create(self.sync.join("go")).expect("create go file");
    }

    /// Waits for every child to exit and asserts each exited with 0.
    fn wait_all_succeeded(&mut self) {
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) {
            for (i, child) in self.children.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    statuses[i] = child.try_wait().expect("poll child");
                }
            }
            if Instant::now() > deadline {
                self.kill_all();
                panic!(
                    "children still running after {RUN_TIMEOUT:?} (hang?); killed them\n{}",
                    self.output_of_all()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
        for (i, status) in statuses.iter().enumerate() {
            let status = status.expect("every child exited");
            assert!(
                status.success(),
                "child {i} exited with {status}\n{}",
                self.output_of_all()
            );
        }
        eprintln!("{}", self.output_of_all());
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

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn child_params(root: &Path, sync: &Path, quota: usize) -> Vec<ChildParams> {
    (0..CHILDREN)
        .map(|index| ChildParams {
            root: root.to_path_buf(),
            store: STORE_NAME.to_owned(),
            index,
            quota,
            sync: sync.to_path_buf(),
        })
        .collect()
}

fn assert_contiguous(events: &[SequencedEvent]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.position.get(),
            i as u64 + 1,
            "positions must be contiguous from 1"
        );
    }
}

fn assert_intact(store: &FileEventStore, expected_events: usize) -> TestResult {
    let report = store.verify()?;
    assert!(report.is_intact(), "hash chain broken: {report:?}");
    assert_eq!(report.events_checked, expected_events as u64, "{report:?}");
    assert_eq!(
        report.head.map(|p| p.get()),
        Some(expected_events as u64),
        "{report:?}"
    );
    Ok(())
}

/// Four processes create gap-free invoice numbers under DCB append conditions.
#[test]
fn concurrent_processes_create_gap_free_invoice_numbers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (root, sync, logs) = (
        dir.path().join("root"),
        dir.path().join("sync"),
        dir.path().join("logs"),
    );
    for folder in [&root, &sync, &logs] {
        fs::create_dir(folder)?;
    }
    // The store folder does not exist yet: the children race to create it.
    let params = child_params(&root, &sync, INVOICES_PER_CHILD);
    let mut fleet = Fleet::spawn("invoices", &params, &logs)?;
    fleet.release_together();
    fleet.wait_all_succeeded();

    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())?;
    let total = CHILDREN * INVOICES_PER_CHILD;
    let events = store.read_blocking(&Query::all(), ReadOptions::new())?;
    assert_eq!(
        events.len(),
        total,
        "every created invoice is stored, no more"
    );
    assert_contiguous(&events);

    let mut per_child = [0_usize; CHILDREN];
    for event in &events {
        let invoice = event.decode::<InvoiceCreated>()?;
        assert_eq!(
            invoice.number,
            event.position.get(),
            "invoice numbers run 1..N without gap or duplicate, in position order"
        );
        let tag = Tag::new("invoice", invoice.number.to_string())?;
        assert!(event.event.has_tag(&tag), "invoice tag matches the payload");
        per_child[invoice.child] += 1;
    }
    assert_eq!(
        per_child, [INVOICES_PER_CHILD; CHILDREN],
        "each child created its quota"
    );

    // The tag index agrees with the log: each number is found exactly once, where it belongs.
    for number in 1..=total as u64 {
        let query = Query::from_tags([Tag::new("invoice", number.to_string())?])?;
        let found = store.read_blocking(&query, ReadOptions::new())?;
        let positions: Vec<u64> = found.iter().map(|e| e.position.get()).collect();
        assert_eq!(positions, [number], "invoice {number}");
    }
    let last = store.read_last_blocking(&Query::from_event_types([InvoiceCreated::EVENT_TYPE])?)?;
    assert_eq!(last.map(|e| e.position.get()), Some(total as u64));
    assert_intact(&store, total)
}

/// Four processes append batches of 1–5 events without conditions; batches never interleave.
#[test]
fn concurrent_processes_append_atomic_batches() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (root, sync, logs) = (
        dir.path().join("root"),
        dir.path().join("sync"),
        dir.path().join("logs"),
    );
    for folder in [&root, &sync, &logs] {
        fs::create_dir(folder)?;
    }
    // This time the store exists before the children open it.
    FileEventStore::open_with(root.join(STORE_NAME), store_options())?.close()?;

    let params = child_params(&root, &sync, BATCHES_PER_CHILD);
    let mut fleet = Fleet::spawn("batches", &params, &logs)?;
    fleet.release_together();
    fleet.wait_all_succeeded();

    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())?;
    let events = store.read_blocking(&Query::all(), ReadOptions::new())?;
    let expected_total: usize = (0..CHILDREN)
        .flat_map(|child| (0..BATCHES_PER_CHILD).map(move |k| batch_len(child, k)))
        .sum();
    assert_eq!(
        events.len(),
        expected_total,
        "every appended event is stored"
    );
    assert_contiguous(&events);

    let batches = scan_batches(&events, 1).unwrap_or_else(|problem| panic!("{problem}"));
    assert_eq!(batches.len(), CHILDREN * BATCHES_PER_CHILD);
    // Each process's batches appear in the order it appended them, each with its own length.
    let mut next_k = [0_usize; CHILDREN];
    let mut previous_child = None;
    let mut switches = 0;
    for batch in &batches {
        let (child, k) = batch
            .id
            .strip_prefix('c')
            .and_then(|rest| rest.split_once("-b"))
            .and_then(|(c, k)| Some((c.parse::<usize>().ok()?, k.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("unexpected batch id {}", batch.id));
        assert_eq!(k, next_k[child], "batches of child {child} out of order");
        assert_eq!(
            batch.len,
            batch_len(child, k),
            "length of batch {}",
            batch.id
        );
        next_k[child] += 1;
        switches += usize::from(previous_child.is_some_and(|p| p != child));
        previous_child = Some(child);

        let query = Query::from_tags([Tag::new("batch", batch.id.as_str())?])?;
        let found = store.read_blocking(&query, ReadOptions::new())?;
        let positions: Vec<u64> = found.iter().map(|e| e.position.get()).collect();
        let expected: Vec<u64> = (batch.first..batch.first + batch.len as u64).collect();
        assert_eq!(positions, expected, "tag query for batch {}", batch.id);
    }
    assert_eq!(next_k, [BATCHES_PER_CHILD; CHILDREN]);
    eprintln!(
        "{} batches from {CHILDREN} processes; the writer changed {switches} times",
        batches.len()
    );
    assert_intact(&store, expected_total)
}
