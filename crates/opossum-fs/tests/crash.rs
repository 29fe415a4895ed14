//! A writer process killed with SIGKILL again and again; every acknowledged append survives.
//!
//! The parent re-executes this test binary as the writer
//! (`<test binary> --exact child_process_entry --nocapture --test-threads=1` with
//! `OPOSSUM_CHILD_ROLE=crash-writer`). The writer appends batches in a loop and, after each
//! append returns `Ok`, prints `ACK <last position> <batch len> <batch id>` and flushes. The
//! parent kills it at a random moment, reopens the store and checks that every acknowledged
//! batch is there in full, that no batch is partly visible, that positions run 1..N and that
//! the hash chain verifies. The store accumulates across cycles.
//!
//! What this does and does not test: `kill -9` ends the process, not the machine, so data the
//! writer handed to the kernel stays in the page cache and reaches the file. It therefore tests
//! torn writes (a kill between or inside the write calls of one append), the head anchor and
//! index falling behind the log, and crash recovery at the next open — including a kill during
//! that recovery, since a young writer may die while it is still opening. It does not test power
//! loss, where unsynced data vanishes; that needs a fault-injecting file layer.
//!
//! `OPOSSUM_CRASH_CYCLES` sets the number of cycles (default 30); `OPOSSUM_CRASH_SEED` replays
//! a run (the seed is printed, and shown when the test fails).
#![cfg(unix)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opossum_core::{AppendCondition, NewEvent, Payload, Query, ReadOptions, SequencedEvent, Tag};
use opossum_fs::{FileEventStore, Repair, StoreOptions};
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_CHILD_ROLE";
const ROOT_VAR: &str = "OPOSSUM_CHILD_ROOT";
const CYCLE_VAR: &str = "OPOSSUM_CHILD_CYCLE";
const SEED_VAR: &str = "OPOSSUM_CHILD_SEED";
const STORE_NAME: &str = "crashy";
const DEFAULT_CYCLES: u32 = 30;

/// A writer that outlives its parent stops by itself after this long.
const WRITER_LIFETIME: Duration = Duration::from_secs(20);

/// The payload of every event the writer appends.
#[derive(Serialize, Deserialize)]
struct BatchItem {
    batch: String,
    i: usize,
    n: usize,
    #[serde(default)]
    pad: String,
}

/// xorshift64*: small, seedable, and good enough to pick sizes and delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams and 0 is fine.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn store_options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

// ---------------------------------------------------------------------------------------------
// The writer (child process).

/// Entry point of the writer process; a no-op unless `OPOSSUM_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    assert_eq!(role, "crash-writer", "unknown {ROLE_VAR}");
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("writer without {name}"));
    let root = PathBuf::from(var(ROOT_VAR));
    let cycle: u64 = var(CYCLE_VAR).parse().expect("cycle number");
    let seed: u64 = var(SEED_VAR).parse().expect("seed");
    crash_writer(&root, cycle, seed);
}

fn crash_writer(root: &Path, cycle: u64, seed: u64) {
    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())
        .expect("writer opens the store");
    let mut head = store
        .read_last_blocking(&Query::all())
        .expect("read head")
        .map(|e| e.position);
    let mut rng = Rng::new(seed ^ cycle.wrapping_mul(0x1000_0000_01B3));
    let mut stdout = std::io::stdout().lock();
    let started = Instant::now();
    for k in 0_u64.. {
        if started.elapsed() > WRITER_LIFETIME {
            return;
        }
        let id = format!("{cycle}-{k}");
        let len = if rng.between(0, 1) == 0 {
            1
        } else {
            rng.between(2, 8) as usize
        };
        // Mostly small events; now and then large ones, so that one append spans many pages
        // and a kill can land inside its write.
        let pad_len = if rng.between(0, 7) == 0 {
            rng.between(4_000, 32_000)
        } else {
            rng.between(0, 300)
        } as usize;
        let events = (0..len)
            .map(|i| writer_event(&id, i, len, pad_len))
            .collect();
        let condition = match k % 3 {
            0 => None,
            // Nothing at all after what this writer knows is the head: holds for a lone writer
            // only if the store's own idea of the head agrees with its reads after recovery.
            1 => Some(AppendCondition::new(Query::all()).after(head)),
            // No event of this (new) batch id exists, anywhere.
            _ => Some(AppendCondition::new(
                Query::from_tags([Tag::new("batch", id.as_str()).expect("tag")]).expect("query"),
            )),
        };
        let last = store
            .append_blocking(events, condition)
            .unwrap_or_else(|e| panic!("append of batch {id} failed: {e}"));
        let expected = head.map_or(0, |p| p.get()) + len as u64;
        assert_eq!(
            last.get(),
            expected,
            "batch {id} landed at an unexpected position"
        );
        head = Some(last);
        // One write of a whole line (shorter than PIPE_BUF), so the parent never sees half an
        // acknowledgement unless it is the unterminated last line, which it ignores.
        let line = format!("ACK {} {len} {id}\n", last.get());
        stdout.write_all(line.as_bytes()).expect("write ACK");
        stdout.flush().expect("flush ACK");
    }
}

fn writer_event(id: &str, i: usize, n: usize, pad_len: usize) -> NewEvent {
    let pad: String = (0..pad_len)
        .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
        .collect();
    let item = BatchItem {
        batch: id.to_owned(),
        i,
        n,
        pad,
    };
    NewEvent::builder("CrashItem", Payload::from_value(&item).expect("payload"))
        .tag("batch", id)
        .build()
        .expect("valid event")
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// An acknowledged batch: the writer saw its append return `Ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ack {
    last: u64,
    len: usize,
}

/// The complete `ACK` lines in the writer's output. A line cut short by the kill has no newline
/// and is ignored: the writer had not finished acknowledging it.
fn parse_acks(output: &str) -> Vec<(String, Ack)> {
    let complete = match output.rfind('\n') {
        Some(end) => &output[..end],
        None => "",
    };
    complete
        .lines()
        // libtest may print "test child_process_entry ... " in front of the first line.
        .filter_map(|line| line.split_once("ACK ").map(|(_, rest)| rest))
        .map(|rest| {
            let parts: Vec<&str> = rest.split(' ').collect();
            assert_eq!(parts.len(), 3, "malformed ACK line {rest:?}");
            let ack = Ack {
                last: parts[0].parse().expect("ACK position"),
                len: parts[1].parse().expect("ACK length"),
            };
            (parts[2].to_owned(), ack)
        })
        .collect()
}

/// Checks the whole store against the acknowledged batches; returns the number of events.
fn check_store(store: &FileEventStore, acked: &BTreeMap<String, Ack>) -> Result<u64, String> {
    let events = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .map_err(|e| format!("read of the whole store failed: {e}"))?;
    let found = scan_batches(&events)?;
    for (id, ack) in acked {
        match found.get(id) {
            Some(batch) if batch == ack => {}
            Some(batch) => {
                return Err(format!(
                    "acknowledged batch {id} was {ack:?} but the store holds {batch:?}"
                ));
            }
            None => return Err(format!("acknowledged batch {id} ({ack:?}) is missing")),
        }
    }
    let total = events.len() as u64;
    let report = store.verify().map_err(|e| format!("verify failed: {e}"))?;
    if !report.is_intact()
        || report.events_checked != total
        || report.head.map(|p| p.get()) != (total > 0).then_some(total)
        // Open has cut any torn tail, and no writer is running.
        || report.uncommitted_bytes != 0
    {
        return Err(format!("verify of {total} events: {report:?}"));
    }
    let stats = store.stats().map_err(|e| format!("stats failed: {e}"))?;
    if stats.event_count != total {
        return Err(format!(
            "stats count {} events, reads {total}",
            stats.event_count
        ));
    }
    check_segment_files(store.path(), total)?;
    Ok(total)
}

/// What open reports having repaired is consistent with the store it left.
fn check_repairs(store: &FileEventStore, total: u64) -> Result<(), String> {
    for repair in &store.recovery().repairs {
        match repair {
            Repair::TornTailCut {
                saved_to, bytes, ..
            } => {
                let saved = fs::metadata(saved_to).map_err(|e| format!("{repair:?}: {e}"))?;
                if saved.len() != *bytes || !saved_to.starts_with(store.path().join("recovered")) {
                    return Err(format!("{repair:?}: saved copy has {} bytes", saved.len()));
                }
            }
            Repair::CommitsAdopted { from, to } if from > to || to.get() > total => {
                return Err(format!("{repair:?} in a store of {total} events"));
            }
            // A dead writer holds no lock and the folder is writable: nothing is left undone.
            Repair::Deferred { .. } => return Err(format!("open deferred a repair: {repair:?}")),
            _ => {}
        }
    }
    Ok(())
}

/// Every event is one line of one batch: positions 1..N, each batch whole and adjacent, each id
/// used once. Returns the batches by id.
fn scan_batches(events: &[SequencedEvent]) -> Result<BTreeMap<String, Ack>, String> {
    let mut batches = BTreeMap::new();
    let mut open: Option<(String, usize, usize)> = None; // (id, next index, len)
    for (offset, event) in events.iter().enumerate() {
        let position = event.position.get();
        if position != offset as u64 + 1 {
            return Err(format!(
                "positions not contiguous: expected {}, found {position}",
                offset + 1
            ));
        }
        let item: BatchItem = event
            .event
            .payload()
            .decode()
            .map_err(|e| format!("position {position}: payload does not decode: {e}"))?;
        if !event
            .event
            .tags()
            .iter()
            .any(|t| t.key() == "batch" && t.value() == item.batch)
        {
            return Err(format!(
                "position {position}: batch tag does not match the payload"
            ));
        }
        let expected = open
            .take()
            .unwrap_or_else(|| (item.batch.clone(), 0, item.n));
        if (item.batch.as_str(), item.i, item.n) != (expected.0.as_str(), expected.1, expected.2) {
            return Err(format!(
                "position {position}: expected event {} of {} of batch {}, found event {} of {} \
                 of batch {} (a partial or interleaved batch)",
                expected.1, expected.2, expected.0, item.i, item.n, item.batch
            ));
        }
        if item.i + 1 < item.n {
            open = Some((item.batch, item.i + 1, item.n));
        } else {
            let ack = Ack {
                last: position,
                len: item.n,
            };
            if batches.insert(item.batch.clone(), ack).is_some() {
                return Err(format!("batch id {} appears twice", item.batch));
            }
        }
    }
    match open {
        Some((id, next, len)) => Err(format!(
            "batch {id} is partly visible: {next} of its {len} events"
        )),
        None => Ok(batches),
    }
}

/// After open has repaired the store, the segment files hold exactly the committed events:
/// whole lines, each ending in a newline, one per event.
fn check_segment_files(store_dir: &Path, total: u64) -> Result<(), String> {
    let dir = store_dir.join("events");
    let mut lines = 0_u64;
    let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            return Err(format!("{} ends inside a line after open", path.display()));
        }
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line)
                .map_err(|e| format!("{}: a line is not JSON after open: {e}", path.display()))?;
            lines += 1;
        }
    }
    if lines != total {
        return Err(format!(
            "segment files hold {lines} lines but the store reads {total} events"
        ));
    }
    Ok(())
}

fn crash_seed() -> u64 {
    if let Some(seed) = std::env::var("OPOSSUM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn crash_cycles() -> u32 {
    std::env::var("OPOSSUM_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CYCLES)
}

#[test]
fn acknowledged_appends_survive_repeated_sigkill() -> TestResult {
    let seed = crash_seed();
    let cycles = crash_cycles();
    // Captured output is shown when the test fails, which is when the seed matters.
    eprintln!("crash test: seed {seed}, {cycles} cycles (OPOSSUM_CRASH_SEED={seed} replays)");
    let fail = |cycle: u32, what: String| -> Box<dyn std::error::Error> {
        format!("seed {seed}, cycle {cycle}: {what}").into()
    };

    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    fs::create_dir(&root)?;
    let stderr_log = dir.path().join("writer-stderr.log");
    let exe = std::env::current_exe()?;
    let mut rng = Rng::new(seed);
    let mut acked: BTreeMap<String, Ack> = BTreeMap::new();
    let (mut acks_total, mut opens_with_repairs, mut repairs_total) = (0_usize, 0_usize, 0_usize);
    let mut torn_cuts = 0_usize;
    let mut events = 0;

    for cycle in 0..cycles {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)?;
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, "crash-writer")
            .env(ROOT_VAR, &root)
            .env(CYCLE_VAR, cycle.to_string())
            .env(SEED_VAR, seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
        // Drain the pipe while the writer runs, so it never blocks on a full pipe.
        let reader = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        });

        thread::sleep(Duration::from_millis(rng.between(5, 150)));
        if let Some(status) = child.try_wait()? {
            let stderr = fs::read_to_string(&stderr_log).unwrap_or_default();
            return Err(fail(
                cycle,
                format!("writer died by itself ({status}):\n{stderr}"),
            ));
        }
        child.kill()?; // SIGKILL
        let status = child.wait()?;
        let output = reader
            .join()
            .map_err(|_| fail(cycle, "reader thread panicked".into()))?;
        if status.signal() != Some(9) {
            let stderr = fs::read_to_string(&stderr_log).unwrap_or_default();
            return Err(fail(
                cycle,
                format!("writer ended with {status}, not SIGKILL:\n{stderr}"),
            ));
        }

        let acks = parse_acks(&output);
        acks_total += acks.len();
        let mut previous = acked.values().map(|a| a.last).max().unwrap_or(0);
        for (id, ack) in acks {
            if ack.last <= previous {
                return Err(fail(
                    cycle,
                    format!("ACK of {id} at {} after {previous}", ack.last),
                ));
            }
            previous = ack.last;
            acked.insert(id, ack);
        }

        let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())
            .map_err(|e| fail(cycle, format!("open after the kill failed: {e}")))?;
        let repairs = &store.recovery().repairs;
        if !repairs.is_empty() {
            opens_with_repairs += 1;
            repairs_total += repairs.len();
            torn_cuts += repairs
                .iter()
                .filter(|r| matches!(r, Repair::TornTailCut { .. }))
                .count();
            eprintln!("cycle {cycle}: open repaired {repairs:?}");
        }
        events = check_store(&store, &acked).map_err(|what| fail(cycle, what))?;
        check_repairs(&store, events).map_err(|what| fail(cycle, what))?;
        store.close()?;

        // Recovery is done once: an immediate second open has nothing left to repair and sees
        // the same store.
        let again = FileEventStore::open_with(root.join(STORE_NAME), store_options())?;
        if !again.recovery().repairs.is_empty() {
            return Err(fail(
                cycle,
                format!("second open repaired again: {:?}", again.recovery().repairs),
            ));
        }
        let events_again = check_store(&again, &acked).map_err(|what| fail(cycle, what))?;
        if events_again != events {
            return Err(fail(cycle, format!("{events} events, then {events_again}")));
        }
        again.close()?;
    }

    eprintln!(
        "crash test: {cycles} cycles, {acks_total} acknowledged batches, {events} events, \
         {opens_with_repairs} opens repaired something ({repairs_total} repairs, {torn_cuts} of \
         them torn tails cut)"
    );
    assert!(
        acks_total > 0,
        "seed {seed}: the writer never acknowledged an append, so nothing was tested"
    );

    // The store is still a working store: append, reopen, verify.
    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())?;
    let last = store.append_blocking(vec![writer_event("final", 0, 1, 10)], None)?;
    assert_eq!(last.get(), events + 1);
    store.close()?;
    let store = FileEventStore::open_with(root.join(STORE_NAME), store_options())?;
    acked.insert(
        "final".to_owned(),
        Ack {
            last: events + 1,
            len: 1,
        },
    );
    let final_events = check_store(&store, &acked).map_err(|what| fail(cycles, what))?;
    assert_eq!(final_events, events + 1);
    Ok(())
}

#[test]
fn ack_parsing_ignores_libtest_noise_and_a_cut_last_line() {
    let output =
        "\nrunning 1 test\ntest child_process_entry ... ACK 3 3 0-0\nACK 4 1 0-1\nACK 9 5 0-";
    let acks = parse_acks(output);
    assert_eq!(
        acks,
        [
            ("0-0".to_owned(), Ack { last: 3, len: 3 }),
            ("0-1".to_owned(), Ack { last: 4, len: 1 }),
        ]
    );
}
