//! Real processes against the packed projection files while generations are replaced:
//!
//! - rebuilds killed with SIGKILL at random moments, each resumed by the next process, end
//!   identical to a rebuild that was never interrupted;
//! - a follower process that reads, and pages through, a projection while the maintainer
//!   applies batches, compacts and rebuilds never sees a mix of two commits or two generations,
//!   and its pages return every instance exactly once.
//!
//! The parent re-executes this test binary as the child (`OPOSSUM_SWAP_ROLE` names the role).
//! `OPOSSUM_KILL_CASES` sets how many kills the first test makes (default 6); the kill moments
//! come from a seed printed by the test (`OPOSSUM_KILL_SEED` replays one).
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "test helpers: a failed expectation is a test failure; the child reports on stdout"
)]

mod support;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opossum_core::{Durability, EventStore, NewEvent, Payload, SequencedEvent};
use opossum_fs::{FileEventStore, StoreOptions};
use opossum_projections::{BoxError, Page, Projection, ProjectionManager, ProjectionOptions, Role};
use support::{Opts, TestResult, child_command};

const CHILD_TEST: &str = "swap_child_entry";
const ROLE_VAR: &str = "OPOSSUM_SWAP_ROLE";
const ROOT_VAR: &str = "OPOSSUM_SWAP_ROOT";
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Slots of the `Rounds` projection: every round appends one event per slot, in one append.
const SLOTS: usize = 20;
/// Events in the store of the kill test.
const KILL_EVENTS: usize = 2_000;
/// Each event costs the rebuilding child this long, so that a rebuild lasts about a second.
const SLOW_APPLY: Duration = Duration::from_micros(400);

fn open_store(root: &Path) -> Result<FileEventStore, opossum_fs::Error> {
    FileEventStore::open_with(
        root.join("store"),
        StoreOptions::new().durability(Durability::Eventual),
    )
}

/// Options whose batches, rebuild batches and flush points all end on round boundaries, and
/// that compact as soon as dead records outweigh live ones (a generation swap every few
/// batches).
fn round_options(root: &Path) -> Opts {
    Opts::new(
        root.join("store").join("projections"),
        ProjectionOptions::new()
            .durability(Durability::Eventual)
            .batch_size(SLOTS * 5)
            .rebuild_batch_size(SLOTS * 10)
            .rebuild_flush_interval(SLOTS as u64 * 10)
            .compaction_min_garbage(0)
            .polling_interval(Duration::from_millis(100)),
    )
}

/// Counts the events of each slot; tagged with the parity of the count, so that the tag index
/// changes with every round.
struct Rounds {
    slow: Option<Duration>,
}

impl Projection for Rounds {
    type State = u64;
    fn name(&self) -> &str {
        "Rounds"
    }
    fn event_types(&self) -> Vec<&str> {
        vec!["Ticked"]
    }
    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("slot").map(str::to_owned)
    }
    fn apply(
        &self,
        state: Option<u64>,
        _event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<u64>, BoxError> {
        if let Some(slow) = self.slow {
            std::thread::sleep(slow);
        }
        Ok(Some(state.unwrap_or(0) + 1))
    }
    fn tags(&self, count: &u64) -> Vec<opossum_core::Tag> {
        let parity = if count % 2 == 0 { "Even" } else { "Odd" };
        vec![opossum_core::Tag::new("parity", parity).unwrap()]
    }
}

fn round() -> Vec<NewEvent> {
    (0..SLOTS)
        .map(|slot| {
            NewEvent::builder("Ticked", Payload::from_json("{}").unwrap())
                .tag("slot", format!("slot-{slot:02}"))
                .build()
                .unwrap()
        })
        .collect()
}

fn rounds_manager(
    store: Arc<dyn EventStore>,
    options: Opts,
    slow: Option<Duration>,
) -> ProjectionManager {
    options
        .builder(store)
        .register(Rounds { slow })
        .open_or_follow()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Entry point of the child processes; a no-op unless `OPOSSUM_SWAP_ROLE` is set.
#[test]
fn swap_child_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let root = PathBuf::from(std::env::var(ROOT_VAR).expect("child without a root"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "rebuilder" => runtime.block_on(rebuilder(&root)),
        "reader" => reader(&root),
        other => panic!("unknown {ROLE_VAR} {other}"),
    }
}

/// Resumes the interrupted rebuild of `Rounds` if there is one, or starts one; slowly.
async fn rebuilder(root: &Path) {
    let store: Arc<dyn EventStore> = Arc::new(open_store(root).unwrap());
    let manager = rounds_manager(store, round_options(root), Some(SLOW_APPLY));
    assert_eq!(manager.role(), Role::Maintainer);
    let report = manager.rebuilder().resume_interrupted().await;
    assert!(report.is_success(), "{report:?}");
    if report.rebuilt.is_empty() {
        manager.rebuilder().rebuild("Rounds").await.unwrap();
    }
    println!("FINISHED");
}

/// Follows the parent's projections: reads the whole projection and pages through it until
/// the parent creates `stop`, checking every read. Reports its counts on stdout and, as it
/// goes, in `progress`.
fn reader(root: &Path) {
    let store: Arc<dyn EventStore> = Arc::new(open_store(root).unwrap());
    let manager = rounds_manager(store, round_options(root), None);
    assert_eq!(manager.role(), Role::Follower);
    let rounds = manager.store::<Rounds>().unwrap();
    let pointer = root.join("store/projections/Rounds/current.json");
    let (mut reads, mut mixes, mut pagings) = (0_u64, 0_u64, 0_u64);
    let mut generations = BTreeSet::new();
    let mut problems: Vec<String> = Vec::new();
    while !root.join("stop").exists() {
        if let Ok(bytes) = std::fs::read(&pointer) {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if let Some(g) = value["generation"].as_u64() {
                    generations.insert(g);
                }
            }
        }
        // One read is one commit of one generation: every slot has the same count.
        let all = rounds.list(&Page::all()).unwrap();
        reads += 1;
        let counts: BTreeSet<u64> = all.items.iter().map(|(_, c)| *c).collect();
        if counts.len() > 1 || (!all.items.is_empty() && all.items.len() != SLOTS) {
            mixes += 1;
            if problems.len() < 5 {
                problems.push(format!("{counts:?} over {} slots", all.items.len()));
            }
        }
        // The tag index agrees with the states of the same read.
        let odd = rounds
            .query_by_tag(
                &opossum_core::Tag::new("parity", "odd").unwrap(),
                &Page::all(),
            )
            .unwrap();
        if odd.items.iter().any(|(_, c)| c % 2 == 0) {
            mixes += 1;
            problems.push("an even count under the odd tag".to_owned());
        }
        // Pages of 7, each consistent, together every slot exactly once.
        if !all.items.is_empty() {
            let mut page = Page::first(7);
            let mut keys = Vec::new();
            loop {
                let paged = rounds.list(&page).unwrap();
                let counts: BTreeSet<u64> = paged.items.iter().map(|(_, c)| *c).collect();
                if counts.len() > 1 {
                    mixes += 1;
                    problems.push(format!("a page mixes {counts:?}"));
                }
                keys.extend(paged.items.into_iter().map(|(k, _)| k));
                let Some(next) = paged.next else { break };
                page = page.after(next);
            }
            let expected: Vec<String> = (0..SLOTS).map(|s| format!("slot-{s:02}")).collect();
            if keys != expected {
                mixes += 1;
                problems.push(format!("paging returned {keys:?}"));
            }
            pagings += 1;
        }
        let _ = std::fs::write(
            root.join("progress"),
            format!("{reads} {}", generations.len()),
        );
    }
    println!(
        "READS {reads} PAGINGS {pagings} GENERATIONS {} MIXES {mixes} {problems:?}",
        generations.len()
    );
}

fn child(root: &Path, role: &str) -> Command {
    child_command(CHILD_TEST, (ROLE_VAR, role), (ROOT_VAR, root))
}

/// A small deterministic generator for the kill moments (xorshift).
struct Moments(u64);

impl Moments {
    fn next_below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % bound.max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilds_killed_at_random_moments_end_identical_to_an_uninterrupted_one() -> TestResult {
    let cases: u32 = std::env::var("OPOSSUM_KILL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("OPOSSUM_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("kill moments from OPOSSUM_KILL_SEED={seed}");
    let mut moments = Moments(seed);
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let store: Arc<dyn EventStore> = Arc::new(open_store(root)?);
    for _ in 0..KILL_EVENTS / SLOTS {
        store.append(round(), None).await?;
    }
    // What an uninterrupted rebuild gives, in a folder of its own.
    let clean = rounds_manager(
        Arc::clone(&store),
        Opts::new(root.join("clean"), round_options(root).options),
        None,
    );
    clean.rebuilder().rebuild("Rounds").await?;
    let mut expected = Vec::new();
    clean.export("Rounds", &mut expected)?;
    let expected_states = clean.store::<Rounds>()?.entries()?;
    drop(clean);

    let folder = root.join("store/projections/Rounds");
    let mut kills = 0;
    for _ in 0..cases {
        let mut rebuilding = child(root, "rebuilder").spawn()?;
        // About a second per whole rebuild: kill anywhere in its first 1.2 s.
        let wait = Duration::from_micros(moments.next_below(1_200_000));
        tokio::time::sleep(wait).await;
        rebuilding.kill()?; // SIGKILL, or nothing if it finished
        let status = rebuilding.wait()?;
        if status.signal() == Some(9) {
            kills += 1;
        } else {
            assert!(status.success(), "the rebuilder failed: {status}");
        }
    }
    // A last process resumes (or finds nothing to resume) and finishes.
    let output = tokio::task::spawn_blocking({
        let root = root.to_path_buf();
        move || child(&root, "rebuilder").output()
    })
    .await??;
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8(output.stdout)?.contains("FINISHED"));
    println!("{kills} of {cases} rebuilders were killed before they finished");

    let manager = rounds_manager(Arc::clone(&store), round_options(root), None);
    let states = manager.store::<Rounds>()?.entries()?;
    assert_eq!(states, expected_states, "seed {seed}");
    assert!(
        states
            .iter()
            .all(|(_, c)| *c == (KILL_EVENTS / SLOTS) as u64)
    );
    let mut exported = Vec::new();
    manager.export("Rounds", &mut exported)?;
    let instances = |bytes: &[u8]| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["instances"].clone()
    };
    assert_eq!(instances(&exported), instances(&expected), "seed {seed}");
    assert!(!folder.join("rebuild.json").exists());
    let files = std::fs::read_dir(&folder)?.count();
    assert!(files <= 2, "{files} files left in {}", folder.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_process_never_sees_a_mix_while_generations_are_replaced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let store: Arc<dyn EventStore> = Arc::new(open_store(root)?);
    let manager = rounds_manager(Arc::clone(&store), round_options(root), None);
    assert_eq!(manager.role(), Role::Maintainer);
    let daemon = manager.start_daemon();
    let first = store.append(round(), None).await?;
    daemon.notify_appended();
    tokio::time::timeout(HANG_GUARD, manager.wait_for("Rounds", first)).await??;

    let mut reading = child(root, "reader").spawn()?;
    let progress = |root: &Path| -> (u64, u64) {
        std::fs::read_to_string(root.join("progress"))
            .ok()
            .and_then(|t| {
                let (r, g) = t.split_once(' ')?;
                Some((r.parse().ok()?, g.trim().parse().ok()?))
            })
            .unwrap_or((0, 0))
    };
    let started = Instant::now();
    let mut rounds = 1_u64;
    // Write until the reader has read many times across several generations.
    loop {
        let (reads, generations) = progress(root);
        if reads >= 200 && generations >= 4 && rounds >= 100 {
            break;
        }
        if let Some(status) = reading.try_wait()? {
            return Err(format!("the reader ended by itself: {status}").into());
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "hang guard: {reads} reads over {generations} generations"
        );
        let at = store.append(round(), None).await?;
        rounds += 1;
        daemon.notify_appended();
        if rounds % 40 == 0 {
            manager.rebuilder().rebuild("Rounds").await?;
        } else {
            tokio::time::timeout(HANG_GUARD, manager.wait_for("Rounds", at)).await??;
        }
    }
    std::fs::write(root.join("stop"), b"")?;
    let output = tokio::task::spawn_blocking(move || reading.wait_with_output()).await??;
    assert!(output.status.success(), "{output:?}");
    let report = String::from_utf8(output.stdout)?;
    // The report follows libtest's line for the child test.
    let line = report
        .lines()
        .find_map(|l| {
            l.split_once("READS ")
                .map(|(_, rest)| format!("READS {rest}"))
        })
        .ok_or_else(|| format!("no report from the reader: {report:?}"))?;
    println!("reader: {line} after {rounds} rounds");
    assert!(line.contains(" MIXES 0 []"), "{line}");
    let counts = manager.store::<Rounds>()?.entries()?;
    assert!(counts.iter().all(|(_, c)| *c == rounds), "{counts:?}");
    daemon.shutdown().await?;
    Ok(())
}
