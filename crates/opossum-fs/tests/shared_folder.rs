//! Two PCs appending to one store on a network share, simulated on one machine.
//!
//! When a store folder lives on a share, each PC reaches it through its own file-system client.
//! Each client keeps its own cache of file contents and attributes (sizes, directory entries),
//! and each may keep its own table of advisory locks, so a lock one PC takes need not stop the
//! other. Processes on one PC, by contrast, share one cache and one lock table. This test builds
//! that situation on one machine: it mounts ONE real folder twice through FUSE and splits the
//! writer processes across the two mounts. The kernel keeps separate page and attribute caches
//! for the two mounts, and, unless the FUSE file system forwards locks to the folder below, a
//! lock taken through one mount is invisible through the other. The mount kinds, one `#[test]`
//! each:
//!
//! - `bindfs` with its defaults: caching on, locks not forwarded (two PCs whose clients do not
//!   share locks);
//! - `bindfs --multithreaded --enable-lock-forwarding`: caching on, locks forwarded to the real
//!   folder (a share whose locks work, seen through caching clients);
//! - `sshfs` to an `sshd` the test starts on 127.0.0.1 with throw-away keys: two SFTP sessions
//!   with sshfs's default caching. SFTP has no locks, so each mount locks only within itself.
//!
//! In each case four writer processes, two per mount, create gap-free invoice numbers with the
//! DCB decide-append-retry loop of `multiprocess.rs` (read the last invoice, append number + 1
//! guarded by a condition, retry when the condition fails). The store may refuse an append it
//! cannot make safely: the errors allowed for that are [`ALLOWED_REFUSALS`]. It must never
//! acknowledge an append and then lose it, overwrite it or let another writer take the same
//! number. Each child writes every acknowledged append (invoice number, position) and its
//! refusal, if any, as a JSON line to its own file outside the mounts, so the parent knows what
//! was acknowledged even when a child dies. Once the children are done and the mounts are gone,
//! the parent reads the store on the real folder, not through a mount, and checks the log
//! against those files.
//!
//! Children are this test binary run again, as in `multiprocess.rs`: `<test binary> --exact
//! child_process_entry --nocapture --test-threads=1` with `OPOSSUM_SHARE_ROLE` and the other
//! `OPOSSUM_SHARE_*` variables set. Without them `child_process_entry` returns at once. They meet
//! at a rendezvous (`ready-<i>` files, then the parent's `go`) before opening the store, so their
//! appends genuinely overlap.
//!
//! The test needs `/dev/fuse`, `bindfs`, `sshfs`, `sshd`, `ssh-keygen` and `fusermount3` (or
//! `fusermount`); `.ci/run` installs the Debian packages. Where one is missing, or mounting is
//! not permitted, a case prints `skipped: <why>` and passes, except under `CI=true`, where it
//! fails: CI must never pass by skipping. Everything stays on loopback and in temporary folders,
//! and every mount, and `sshd`, is removed by a `Drop` guard, also when a case panics. Timeouts
//! only turn a hang into a failure; nothing is judged by time.
#![cfg(target_os = "linux")]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a test failure, and stderr is the test log"
)]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use opossum_core::{AppendCondition, DomainEvent, NewEvent, Query, ReadOptions};
use opossum_fs::{FileEventStore, StoreOptions, VerifyReport, verify_folder};
use serde::{Deserialize, Serialize};

/// The errors (variant names of `opossum_fs::Error`) a writer may be refused with, besides a
/// failed condition: the store could not take its lock in time, or found that the file system
/// does not provide the locking the store needs. Any other error is a failure.
const ALLOWED_REFUSALS: &[&str] = &["LockTimeout", "LockNotHonoured"];

const CHILD_TEST: &str = "child_process_entry";
const ROLE: &str = "invoices";
const ROLE_VAR: &str = "OPOSSUM_SHARE_ROLE";
const ROOT_VAR: &str = "OPOSSUM_SHARE_ROOT";
const STORE_VAR: &str = "OPOSSUM_SHARE_STORE";
const INDEX_VAR: &str = "OPOSSUM_SHARE_INDEX";
const QUOTA_VAR: &str = "OPOSSUM_SHARE_QUOTA";
const SYNC_VAR: &str = "OPOSSUM_SHARE_SYNC";
const ACKS_VAR: &str = "OPOSSUM_SHARE_ACKS";

/// Two mounts ("PCs") with this many writer processes each.
const MOUNTS: usize = 2;
const CHILDREN_PER_MOUNT: usize = 2;
const CHILDREN: usize = MOUNTS * CHILDREN_PER_MOUNT;
const INVOICES_PER_CHILD: usize = 30;
const STORE_NAME: &str = "shared";

/// Hang guards only.
const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(60);
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const MOUNT_READY_TIMEOUT: Duration = Duration::from_secs(20);
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(10);
const SSHD_ATTEMPTS: usize = 5;

/// A child that fails this many conditions in a row without creating an invoice is live-locked
/// (for example because `read_last` never sees the other mount's appends).
const MAX_CONSECUTIVE_CONFLICTS: u32 = 20_000;

/// How many findings of one kind a failure message lists before it only counts the rest.
const LISTED: usize = 25;

/// The cases run one after another even when the test harness runs tests in parallel: four
/// writers, two FUSE daemons and perhaps an `sshd` per case are plenty for a small machine.
static ONE_CASE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Serialize, Deserialize)]
struct InvoiceCreated {
    number: u64,
    child: usize,
}

impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}

/// One line of a child's acknowledgement file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    /// The store acknowledged the append of invoice `number` at `position`.
    Ack { number: u64, position: u64 },
    /// The store answered with an error other than a failed condition; the child stopped.
    Refusal(Refusal),
}

#[derive(Clone, Serialize, Deserialize)]
struct Refusal {
    /// What the child was doing: `open`, `read_last` or `append`.
    stage: String,
    /// The error's variant name: the first word of its `Debug` text.
    variant: String,
    debug: String,
    display: String,
}

// ---------------------------------------------------------------------------------------------
// The child side.

/// Entry point of the child processes; a no-op unless `OPOSSUM_SHARE_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    assert_eq!(role, ROLE, "unknown {ROLE_VAR}");
    invoice_child(&ChildParams::from_env());
}

struct ChildParams {
    /// The root folder of the store as this child sees it: one of the mounts.
    root: PathBuf,
    store: String,
    index: usize,
    quota: usize,
    /// The rendezvous folder (outside the mounts).
    sync: PathBuf,
    /// This child's acknowledgement file (outside the mounts).
    acks: PathBuf,
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
            acks: PathBuf::from(var(ACKS_VAR)),
        }
    }

    fn set_on(&self, command: &mut Command) {
        command
            .env(ROLE_VAR, ROLE)
            .env(ROOT_VAR, &self.root)
            .env(STORE_VAR, &self.store)
            .env(INDEX_VAR, self.index.to_string())
            .env(QUOTA_VAR, self.quota.to_string())
            .env(SYNC_VAR, &self.sync)
            .env(ACKS_VAR, &self.acks);
    }

    /// The mount this child writes through: "A" or "B".
    fn mount_label(&self) -> char {
        mount_label(self.index / CHILDREN_PER_MOUNT)
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
}

fn mount_label(mount: usize) -> char {
    char::from(b'A' + u8::try_from(mount).expect("few mounts"))
}

fn store_options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

/// A child's acknowledgement file.
struct AckFile(File);

impl AckFile {
    fn create(path: &Path) -> AckFile {
        AckFile(File::create(path).expect("create the acknowledgement file"))
    }

    /// Writes one line with one unbuffered `write`: once it returns, the line is in the
    /// kernel's hands and survives this process dying.
    fn record(&mut self, record: &Record) {
        let mut line = serde_json::to_string(record).expect("encodable record");
        line.push('\n');
        self.0
            .write_all(line.as_bytes())
            .expect("write the acknowledgement file");
    }

    fn refusal(&mut self, child: usize, stage: &str, error: &opossum_fs::Error) {
        let debug = format!("{error:?}");
        let display = error.to_string();
        eprintln!("child {child}: {stage} refused: {display}");
        self.record(&Record::Refusal(Refusal {
            stage: stage.to_owned(),
            variant: variant_name(&debug).to_owned(),
            debug,
            display,
        }));
    }
}

/// The variant name at the start of an error's `Debug` text (`LockTimeout { .. }`, `Io { .. }`).
fn variant_name(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    &debug[..end]
}

/// Creates `quota` gap-free invoice numbers with the DCB decide-append-retry loop, recording
/// every acknowledged append. An error other than a failed condition is recorded as a refusal
/// and ends the child (with exit status 0: judging it is the parent's job).
fn invoice_child(params: &ChildParams) {
    let mut acks = AckFile::create(&params.acks);
    params.rendezvous();
    // Opening after the rendezvous makes the children race, through both mounts, to create the
    // store folder.
    let store = match FileEventStore::open_with(params.root.join(&params.store), store_options()) {
        Ok(store) => store,
        Err(e) => {
            acks.refusal(params.index, "open", &e);
            return;
        }
    };
    let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE]).expect("query");
    let (mut created, mut conflicts, mut consecutive) = (0, 0_u64, 0_u32);
    while created < params.quota {
        let last = match store.read_last_blocking(&invoices) {
            Ok(last) => last,
            Err(e) => {
                acks.refusal(params.index, "read_last", &e.into());
                return;
            }
        };
        let next = match &last {
            Some(event) => {
                let invoice = event.decode::<InvoiceCreated>().unwrap_or_else(|e| {
                    panic!(
                        "child {}: the last invoice, at position {}, does not decode: {e}",
                        params.index,
                        event.position.get()
                    )
                });
                invoice.number + 1
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
            Ok(position) => {
                acks.record(&Record::Ack {
                    number: next,
                    position: position.get(),
                });
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
                     invoices; is read_last blind to the other mount's appends?",
                    params.index
                );
            }
            Err(e) => {
                eprintln!(
                    "child {} (mount {}): stopping after {created} invoices, {conflicts} \
                     condition failures",
                    params.index,
                    params.mount_label()
                );
                acks.refusal(params.index, "append", &e.into());
                return;
            }
        }
    }
    eprintln!(
        "child {} (mount {}): created {created} invoices, {conflicts} condition failures",
        params.index,
        params.mount_label()
    );
}

/// A pause of 0–1 ms between appends, as a real client deciding its next step would make, so
/// the processes interleave instead of one re-taking the lock straight away.
fn think(child: usize, step: usize) {
    let micros = splitmix64(((child as u64) << 40) ^ step as u64) % 1_000;
    thread::sleep(Duration::from_micros(micros));
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// The cases.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `bindfs SRC MNT`: caching on, locks not forwarded.
    Bindfs,
    /// `bindfs --multithreaded --enable-lock-forwarding SRC MNT`: caching on, locks forwarded.
    BindfsLockForwarding,
    /// `sshfs` to a loopback `sshd`: default caching, no locks across mounts.
    Sshfs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bindfs => "bindfs",
            Kind::BindfsLockForwarding => "bindfs-lock-forwarding",
            Kind::Sshfs => "sshfs",
        }
    }

    /// The programs this kind needs besides `fusermount3`/`fusermount`.
    fn programs(self) -> &'static [&'static str] {
        match self {
            Kind::Bindfs | Kind::BindfsLockForwarding => &["bindfs"],
            Kind::Sshfs => &["sshfs", "ssh", "sshd", "ssh-keygen"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Two bindfs mounts of one folder, locks not forwarded: each mount's writers lock only among
/// themselves, and each mount caches.
#[test]
fn bindfs_without_lock_forwarding() {
    run_case(Kind::Bindfs);
}

/// Two bindfs mounts of one folder, locks forwarded to the folder, caching on.
#[test]
fn bindfs_with_lock_forwarding() {
    run_case(Kind::BindfsLockForwarding);
}

/// Two sshfs mounts of one folder through an sshd on 127.0.0.1.
#[test]
fn sshfs_over_loopback() {
    run_case(Kind::Sshfs);
}

fn run_case(kind: Kind) {
    let _one_at_a_time = ONE_CASE_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let started = Instant::now();
    let Some(tools) = proceed_or_skip(kind, Tools::find(kind)) else {
        return;
    };
    // Drop order (the reverse of this order) matters: children first, then the mounts, then
    // sshd, then the temporary folder.
    let dir = tempfile::tempdir().expect("temporary folder");
    let paths = CasePaths::create(dir.path());
    let sshd = match kind {
        Kind::Sshfs => {
            let Some(sshd) = proceed_or_skip(kind, Sshd::start(&tools, &paths.ssh)) else {
                return;
            };
            Some(sshd)
        }
        Kind::Bindfs | Kind::BindfsLockForwarding => None,
    };
    let mut mounts = Vec::new();
    for (m, point) in paths.mounts.iter().enumerate() {
        let log = paths.logs.join(format!("mount-{}.log", mount_label(m)));
        let mounted = Mount::new(kind, &tools, sshd.as_ref(), &paths.src, point, log);
        let Some(mount) = proceed_or_skip(kind, mounted) else {
            return;
        };
        mounts.push(mount);
    }

    let params: Vec<ChildParams> = (0..CHILDREN)
        .map(|index| ChildParams {
            root: paths.mounts[index / CHILDREN_PER_MOUNT].clone(),
            store: STORE_NAME.to_owned(),
            index,
            quota: INVOICES_PER_CHILD,
            sync: paths.sync.clone(),
            acks: paths.acks.join(format!("child-{index}.jsonl")),
        })
        .collect();
    let run_started = Instant::now();
    let mut fleet = Fleet::spawn(&params, &paths.logs).expect("spawn the writer processes");
    fleet.release_together();
    let exits = fleet.wait_all();
    let run_took = run_started.elapsed();

    // Unmounting hands anything a FUSE daemon still holds to the folder below, before the
    // parent reads it directly.
    for mount in &mut mounts {
        if let Err(e) = mount.unmount() {
            eprintln!("shared-folder {kind}: warning: {e}");
        }
    }
    let children: Vec<ChildOutcome> = params
        .iter()
        .zip(exits)
        .zip(&fleet.logs)
        .map(|((p, exit), log)| ChildOutcome::read(p, exit, log))
        .collect();
    let outcome = inspect(&paths.src, &children);

    let refusals: Vec<&Refusal> = children.iter().filter_map(|c| c.refusal.as_ref()).collect();
    let acknowledged: usize = children.iter().map(|c| c.acks.len()).sum();
    eprintln!(
        "shared-folder {kind}: acknowledged={acknowledged} present={} refusals={} ({})",
        outcome.present,
        refusals.len(),
        variant_counts(&refusals)
    );
    eprintln!(
        "shared-folder {kind}: duplicates={} overwritten={} lost={} unacknowledged={} \
         verify={} writers took {:.1} s, the case {:.1} s",
        outcome.counts.duplicates,
        outcome.counts.overwritten,
        outcome.counts.lost,
        outcome.counts.unacknowledged,
        outcome.verify_summary,
        run_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if !outcome.problems.is_empty() {
        let mut message = format!(
            "shared-folder {kind}: {} problem(s) with {CHILDREN} writers ({CHILDREN_PER_MOUNT} \
             per mount, {INVOICES_PER_CHILD} invoices each):\n",
            outcome.problems.len()
        );
        for problem in &outcome.problems {
            let _ = writeln!(message, "  - {problem}");
        }
        message.push_str("\nwhat each child recorded:\n");
        for child in &children {
            let _ = writeln!(message, "{}", child.summary());
        }
        message.push_str(&outcome.evidence);
        message.push_str("\nchild logs (last lines):\n");
        for child in &children {
            let _ = writeln!(
                message,
                "--- child {} (mount {}) ---\n{}",
                child.index,
                child.mount,
                tail(&child.log, 12)
            );
        }
        for (m, _) in paths.mounts.iter().enumerate() {
            let log = paths.logs.join(format!("mount-{}.log", mount_label(m)));
            let text = fs::read_to_string(&log).unwrap_or_default();
            if !text.trim().is_empty() {
                let _ = writeln!(
                    message,
                    "--- mount {} ---\n{}",
                    mount_label(m),
                    tail(&text, 12)
                );
            }
        }
        panic!("{message}");
    }
}

/// The folders of one case, all inside its temporary folder.
struct CasePaths {
    /// The real folder both mounts show; the store is `src/shared`.
    src: PathBuf,
    /// The mount points, one per "PC".
    mounts: Vec<PathBuf>,
    /// The rendezvous folder, outside the mounts.
    sync: PathBuf,
    /// The children's acknowledgement files, outside the mounts.
    acks: PathBuf,
    /// Child and command output.
    logs: PathBuf,
    /// `sshd`'s configuration, keys and log.
    ssh: PathBuf,
}

impl CasePaths {
    fn create(dir: &Path) -> CasePaths {
        let paths = CasePaths {
            src: dir.join("src"),
            mounts: (0..MOUNTS)
                .map(|m| dir.join(format!("mnt-{}", mount_label(m))))
                .collect(),
            sync: dir.join("sync"),
            acks: dir.join("acks"),
            logs: dir.join("logs"),
            ssh: dir.join("ssh"),
        };
        let folders = [
            &paths.src,
            &paths.sync,
            &paths.acks,
            &paths.logs,
            &paths.ssh,
        ];
        for folder in folders.into_iter().chain(&paths.mounts) {
            fs::create_dir(folder).expect("create a folder of the case");
        }
        paths
    }
}

// ---------------------------------------------------------------------------------------------
// Components: finding them, skipping without them.

/// Why a case cannot run.
enum SetupError {
    /// A component is missing or mounting is not permitted here: skip (except under CI).
    Skip(String),
    /// Something that should have worked did not: fail.
    Fail(String),
}

/// The one rule for missing components: print `skipped: <why>` and pass, except under
/// `CI=true`, where a skip is a failure, so CI never passes by skipping.
fn skip(kind: Kind, why: &str) {
    let why = format!("shared-folder {kind}: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; CI=true, where a skipped case is a failure");
    }
    eprintln!("skipped: {why}");
}

/// The value of a setup step; `None` (after [`skip`]) when the case cannot run here.
fn proceed_or_skip<T>(kind: Kind, step: Result<T, SetupError>) -> Option<T> {
    match step {
        Ok(value) => Some(value),
        Err(SetupError::Skip(why)) => {
            skip(kind, &why);
            None
        }
        Err(SetupError::Fail(why)) => panic!("shared-folder {kind}: {why}"),
    }
}

/// The programs a case runs.
struct Tools {
    fusermount: PathBuf,
    programs: BTreeMap<&'static str, PathBuf>,
}

impl Tools {
    fn find(kind: Kind) -> Result<Tools, SetupError> {
        if !Path::new("/dev/fuse").exists() {
            return Err(SetupError::Skip(
                "/dev/fuse does not exist (no FUSE in this kernel or container)".to_owned(),
            ));
        }
        let fusermount = find_program("fusermount3")
            .or_else(|| find_program("fusermount"))
            .ok_or_else(|| {
                SetupError::Skip("neither fusermount3 nor fusermount is installed".to_owned())
            })?;
        let mut programs = BTreeMap::new();
        let mut missing = Vec::new();
        for &name in kind.programs() {
            match find_program(name) {
                Some(path) => {
                    programs.insert(name, path);
                }
                None => missing.push(name),
            }
        }
        if !missing.is_empty() {
            return Err(SetupError::Skip(format!(
                "{} not installed (Debian: bindfs sshfs openssh-server fuse3)",
                missing.join(", ")
            )));
        }
        Ok(Tools {
            fusermount,
            programs,
        })
    }

    fn get(&self, name: &str) -> &Path {
        &self.programs[name]
    }
}

/// `name` on `PATH`, or in the system folders (`sshd` is in `/usr/sbin`, often not on `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|folder| folder.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A command that failed, with what it printed.
struct CommandFailed {
    what: String,
    output: String,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if !self.output.trim().is_empty() {
            write!(f, ": {}", self.output.trim())?;
        }
        Ok(())
    }
}

/// Runs `command` to completion (killing it after [`COMMAND_TIMEOUT`]), its output going to
/// `log`. Output goes to a file, not a pipe: a FUSE daemon (or the `ssh` under `sshfs`) keeps
/// its inherited output open long after the command itself returned.
fn run_command(command: &mut Command, log: &Path) -> Result<(), CommandFailed> {
    let what = format!("{command:?}");
    let failed = |what: String| CommandFailed {
        output: fs::read_to_string(log).unwrap_or_default(),
        what,
    };
    let file = File::create(log).map_err(|e| failed(format!("{what}: cannot create log: {e}")))?;
    let file_too = file
        .try_clone()
        .map_err(|e| failed(format!("{what}: {e}")))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file_too)
        .stderr(file)
        .spawn()
        .map_err(|e| failed(format!("{what} did not start: {e}")))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "{what} did not finish within {COMMAND_TIMEOUT:?}; killed it"
                )));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(failed(format!("{what}: cannot wait for it: {e}"))),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!("{what} exited with {status}")))
    }
}

/// True when a mount failed because FUSE is not permitted here (rather than for a reason worth
/// a failure, such as an ssh login that did not work).
fn lacks_fuse_permission(output: &str) -> bool {
    output.lines().any(|line| {
        let line = line.to_lowercase();
        line.contains("fuse")
            && (line.contains("permission denied") || line.contains("operation not permitted"))
    })
}

// ---------------------------------------------------------------------------------------------
// Mounts.

/// A FUSE mount of the case's source folder; unmounted when dropped.
struct Mount {
    point: PathBuf,
    fusermount: PathBuf,
    log: PathBuf,
    mounted: bool,
}

impl Mount {
    fn new(
        kind: Kind,
        tools: &Tools,
        sshd: Option<&Sshd>,
        src: &Path,
        point: &Path,
        log: PathBuf,
    ) -> Result<Mount, SetupError> {
        let mut command = match (kind, sshd) {
            (Kind::Bindfs, _) => {
                let mut c = Command::new(tools.get("bindfs"));
                c.arg(src).arg(point);
                c
            }
            (Kind::BindfsLockForwarding, _) => {
                let mut c = Command::new(tools.get("bindfs"));
                c.args(["--multithreaded", "--enable-lock-forwarding"])
                    .arg(src)
                    .arg(point);
                c
            }
            (Kind::Sshfs, Some(sshd)) => {
                let mut c = Command::new(tools.get("sshfs"));
                c.arg("-p")
                    .arg(sshd.port.to_string())
                    .arg("-o")
                    .arg(format!(
                        "IdentityFile={},StrictHostKeyChecking=no,\
                         UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR",
                        sshd.client_key.display()
                    ))
                    .arg(format!("{}@127.0.0.1:{}", sshd.user, src.display()))
                    .arg(point);
                c
            }
            (Kind::Sshfs, None) => {
                return Err(SetupError::Fail("sshfs without an sshd".to_owned()));
            }
        };
        match run_command(&mut command, &log) {
            Ok(()) => {}
            Err(failed) if lacks_fuse_permission(&failed.output) => {
                return Err(SetupError::Skip(format!(
                    "mounting through FUSE is not permitted here: {failed}"
                )));
            }
            Err(failed) => {
                return Err(SetupError::Fail(format!(
                    "mounting {} failed: {failed}",
                    point.display()
                )));
            }
        }
        // From here on, dropping `mount` unmounts it.
        let mount = Mount {
            point: point.to_path_buf(),
            fusermount: tools.fusermount.clone(),
            log,
            mounted: true,
        };
        mount.wait_until_answers(src).map_err(SetupError::Fail)?;
        Ok(mount)
    }

    /// Waits until the mount is in place and a file written through it lands in `src`.
    fn wait_until_answers(&self, src: &Path) -> Result<(), String> {
        let name = format!(
            ".probe-{}",
            self.point.file_name().unwrap_or_default().to_string_lossy()
        );
        let deadline = Instant::now() + MOUNT_READY_TIMEOUT;
        loop {
            let last = match self.probe(src, &name) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer within {MOUNT_READY_TIMEOUT:?}: {last}",
                    self.point.display()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn probe(&self, src: &Path, name: &str) -> Result<(), String> {
        if !is_mount_point(&self.point) {
            return Err("not a mount point (yet)".to_owned());
        }
        let through_mount = self.point.join(name);
        fs::write(&through_mount, b"probe").map_err(|e| format!("cannot write a file: {e}"))?;
        let arrived = src.join(name).exists();
        fs::remove_file(&through_mount).map_err(|e| format!("cannot remove a file: {e}"))?;
        if arrived {
            Ok(())
        } else {
            Err("a file written through the mount did not appear in the source folder".to_owned())
        }
    }

    /// `fusermount -u`, retried while the mount is busy; `fusermount -uz` (lazy) as the last
    /// resort, which is reported as an error although the mount is gone afterwards.
    fn unmount(&mut self) -> Result<(), String> {
        if !self.mounted {
            return Ok(());
        }
        let log = self.log.with_extension("unmount.log");
        let mut last = String::new();
        for _ in 0..5 {
            match run_command(
                Command::new(&self.fusermount).arg("-u").arg(&self.point),
                &log,
            ) {
                Ok(()) => {
                    self.mounted = false;
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
            thread::sleep(Duration::from_millis(200));
        }
        let lazy = run_command(
            Command::new(&self.fusermount).arg("-uz").arg(&self.point),
            &log,
        );
        self.mounted = false;
        match lazy {
            Ok(()) => Err(format!(
                "{} needed a lazy unmount: {last}",
                self.point.display()
            )),
            Err(e) => Err(format!(
                "could not unmount {}: {last}; lazy unmount: {e}",
                self.point.display()
            )),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("warning: {e}");
        }
    }
}

/// True when `path` is on another device than its parent folder.
fn is_mount_point(path: &Path) -> bool {
    let (Ok(this), Some(Ok(parent))) = (fs::metadata(path), path.parent().map(fs::metadata)) else {
        return false;
    };
    this.dev() != parent.dev()
}

// ---------------------------------------------------------------------------------------------
// The loopback sshd.

/// An `sshd` on 127.0.0.1 with throw-away keys, accepting only the case's client key; killed
/// when dropped.
struct Sshd {
    child: Child,
    port: u16,
    user: String,
    client_key: PathBuf,
    log: PathBuf,
}

impl Sshd {
    fn start(tools: &Tools, dir: &Path) -> Result<Sshd, SetupError> {
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("client_ed25519");
        for key in [&host_key, &client_key] {
            run_command(
                Command::new(tools.get("ssh-keygen"))
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(key),
                &dir.join("ssh-keygen.log"),
            )
            .map_err(|e| SetupError::Fail(format!("ssh-keygen failed: {e}")))?;
        }
        let authorized_keys = dir.join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized_keys)
            .map_err(|e| SetupError::Fail(format!("cannot write authorized_keys: {e}")))?;
        // sshd started as root insists on its privilege-separation folder; for anyone else
        // the folder does not matter (and cannot be created).
        let _ = fs::create_dir_all("/run/sshd");
        let user = current_user();
        let mut last = String::new();
        for attempt in 1..=SSHD_ATTEMPTS {
            let port = free_loopback_port()
                .map_err(|e| SetupError::Fail(format!("no free loopback port: {e}")))?;
            let config = dir.join("sshd_config");
            let quoted = |path: &Path| format!("\"{}\"", path.display());
            let text = format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {}\n\
                 AuthorizedKeysFile {}\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PidFile {}\n\
                 Subsystem sftp internal-sftp\n",
                quoted(&host_key),
                quoted(&authorized_keys),
                quoted(&dir.join("sshd.pid")),
            );
            fs::write(&config, text)
                .map_err(|e| SetupError::Fail(format!("cannot write sshd_config: {e}")))?;
            let log = dir.join(format!("sshd-{attempt}.log"));
            let stderr = File::create(dir.join(format!("sshd-{attempt}.stderr")))
                .map_err(|e| SetupError::Fail(format!("cannot create sshd's stderr: {e}")))?;
            let child = Command::new(tools.get("sshd"))
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .map_err(|e| SetupError::Fail(format!("sshd did not start: {e}")))?;
            // From here on, dropping `sshd` kills it.
            let mut sshd = Sshd {
                child,
                port,
                user: user.clone(),
                client_key: client_key.clone(),
                log,
            };
            match sshd.wait_until_listening() {
                Ok(()) => return Ok(sshd),
                Err(e) => last = format!("attempt {attempt} (port {port}): {e}"),
            }
        }
        Err(SetupError::Fail(format!(
            "sshd did not start in {SSHD_ATTEMPTS} attempts; last: {last}"
        )))
    }

    /// Waits until the port answers with an SSH banner while our sshd is still running.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + SSHD_READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "sshd exited with {status}: {}",
                    fs::read_to_string(&self.log).unwrap_or_default().trim()
                ));
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0_u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no SSH banner on port {} within {SSHD_READY_TIMEOUT:?}",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now (it may be taken before sshd binds it; then
/// sshd fails and [`Sshd::start`] tries another).
fn free_loopback_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The user this test runs as: sshd (started by that user) can only log in that user.
fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The writer processes.

/// The writer processes of one case; any still running when this is dropped are killed.
struct Fleet {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
    sync: PathBuf,
}

impl Fleet {
    fn spawn(params: &[ChildParams], log_dir: &Path) -> Result<Fleet, std::io::Error> {
        let exe = std::env::current_exe()?;
        let mut fleet = Fleet {
            children: Vec::new(),
            logs: Vec::new(),
            sync: params[0].sync.clone(),
        };
        for p in params {
            let log_path = log_dir.join(format!("child-{}.log", p.index));
            let log = File::create(&log_path)?;
            let mut command = Command::new(&exe);
            command
                .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            p.set_on(&mut command);
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

    /// Waits for every child to exit; after [`RUN_TIMEOUT`] kills the rest. `None` stands for a
    /// child that had to be killed.
    fn wait_all(&mut self) -> Vec<Option<ExitStatus>> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) && Instant::now() < deadline {
            for (i, child) in self.children.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    statuses[i] = child.try_wait().expect("poll child");
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.kill_all();
        statuses
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

// ---------------------------------------------------------------------------------------------
// What the children recorded.

struct Ack {
    number: u64,
    position: u64,
}

struct ChildOutcome {
    index: usize,
    mount: char,
    /// `None`: still running after [`RUN_TIMEOUT`], killed.
    exit: Option<ExitStatus>,
    acks: Vec<Ack>,
    refusal: Option<Refusal>,
    /// Problems with the acknowledgement file itself.
    file_problems: Vec<String>,
    log: String,
}

impl ChildOutcome {
    fn read(params: &ChildParams, exit: Option<ExitStatus>, log: &Path) -> ChildOutcome {
        let mut outcome = ChildOutcome {
            index: params.index,
            mount: params.mount_label(),
            exit,
            acks: Vec::new(),
            refusal: None,
            file_problems: Vec::new(),
            log: fs::read_to_string(log).unwrap_or_else(|e| format!("<{e}>")),
        };
        let text = match fs::read_to_string(&params.acks) {
            Ok(text) => text,
            Err(e) => {
                outcome
                    .file_problems
                    .push(format!("no acknowledgement file: {e}"));
                return outcome;
            }
        };
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Ack { number, position }) => {
                    if outcome.refusal.is_some() {
                        outcome.file_problems.push(format!(
                            "line {}: an acknowledgement after the refusal",
                            n + 1
                        ));
                    }
                    outcome.acks.push(Ack { number, position });
                }
                Ok(Record::Refusal(refusal)) => {
                    if outcome.refusal.is_some() {
                        outcome
                            .file_problems
                            .push(format!("line {}: a second refusal", n + 1));
                    }
                    outcome.refusal = Some(refusal);
                }
                Err(e) => outcome
                    .file_problems
                    .push(format!("line {} does not parse ({e}): {line:?}", n + 1)),
            }
        }
        outcome
    }

    fn exit_text(&self) -> String {
        match self.exit {
            Some(status) => status.to_string(),
            None => format!("killed after {RUN_TIMEOUT:?}"),
        }
    }

    fn summary(&self) -> String {
        let acks: Vec<String> = self
            .acks
            .iter()
            .map(|a| format!("{}@{}", a.number, a.position))
            .collect();
        let refusal = self.refusal.as_ref().map_or_else(
            || "none".to_owned(),
            |r| format!("{} at {}: {}", r.variant, r.stage, r.display),
        );
        format!(
            "  child {} (mount {}): {}; {} acknowledged (invoice@position): {}; refusal: {refusal}",
            self.index,
            self.mount,
            self.exit_text(),
            self.acks.len(),
            if acks.is_empty() {
                "-".to_owned()
            } else {
                acks.join(" ")
            },
        )
    }
}

/// `LockTimeout x2, LockNotHonoured x1`, or `none`.
fn variant_counts(refusals: &[&Refusal]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in refusals {
        *counts.entry(r.variant.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(variant, n)| format!("{variant} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Checking the store against the acknowledgements.

/// An invoice event as found in the log.
struct Found {
    position: u64,
    number: Option<u64>,
    child: Option<usize>,
}

impl Found {
    fn describe(&self) -> String {
        let number = self.number.map_or("?".to_owned(), |n| n.to_string());
        let child = self.child.map_or("?".to_owned(), |c| c.to_string());
        format!("invoice {number} of child {child}")
    }
}

/// The verdict on one case.
struct Outcome {
    /// Invoice events the store returns on the source folder (or, when it does not open, the
    /// raw scan finds).
    present: usize,
    counts: LogCounts,
    verify_summary: String,
    problems: Vec<String>,
    /// Verify reports, the recovery report and the raw scan, for a failure message.
    evidence: String,
}

/// Findings of one kind: the first [`LISTED`] in full, the rest counted.
struct Findings {
    what: &'static str,
    listed: Vec<String>,
    count: usize,
}

impl Findings {
    fn new(what: &'static str) -> Findings {
        Findings {
            what,
            listed: Vec::new(),
            count: 0,
        }
    }

    fn push(&mut self, finding: String) {
        self.count += 1;
        if self.listed.len() < LISTED {
            self.listed.push(finding);
        }
    }

    fn into_problems(self, problems: &mut Vec<String>) {
        if self.count == 0 {
            return;
        }
        let mut text = format!("{} {}:", self.count, self.what);
        for finding in &self.listed {
            let _ = write!(text, "\n      {finding}");
        }
        if self.count > self.listed.len() {
            let _ = write!(
                text,
                "\n      … and {} more",
                self.count - self.listed.len()
            );
        }
        problems.push(text);
    }
}

fn inspect(src: &Path, children: &[ChildOutcome]) -> Outcome {
    let mut problems = Vec::new();
    let mut evidence = String::new();
    check_children(children, &mut problems);

    let store_dir = src.join(STORE_NAME);
    let mut verify_summary = String::from("no store");
    let mut view: Option<Vec<Found>> = None;
    if store_dir.exists() {
        // First the folder exactly as the writers left it: opening the store may repair it.
        let raw = RawScan::of(&store_dir);
        let _ = writeln!(
            evidence,
            "\nraw scan of the segment files: {}",
            raw.summary()
        );
        match verify_folder(&store_dir) {
            Ok(report) => {
                let _ = writeln!(evidence, "verify before opening: {report:?}");
                if let Some(problem) = &report.problem {
                    problems.push(format!(
                        "verify of the folder as the writers left it: {:?} at position {} \
                         ({}, byte {}): {}",
                        problem.kind,
                        problem.position,
                        problem.file.display(),
                        problem.offset,
                        problem.detail
                    ));
                }
            }
            Err(e) => problems.push(format!("verify of the folder as left failed: {e}")),
        }
        match read_store(src, &mut evidence) {
            Ok((events, report)) => {
                verify_summary = check_verify(&report, events.len(), &mut problems);
                view = Some(events);
            }
            Err(e) => {
                problems.push(format!(
                    "the store on the source folder cannot be read: {e}; the checks below use \
                     the raw scan of its segment files"
                ));
                verify_summary = "store unreadable (present: by raw scan)".to_owned();
                view = Some(raw.found);
            }
        }
    }
    let view = view.unwrap_or_default();
    let counts = check_log(&view, children, &mut problems);
    Outcome {
        present: view.len(),
        counts,
        verify_summary,
        problems,
        evidence,
    }
}

/// Exit statuses, refusals and quotas.
fn check_children(children: &[ChildOutcome], problems: &mut Vec<String>) {
    for child in children {
        let who = format!("child {} (mount {})", child.index, child.mount);
        match child.exit {
            None => problems.push(format!(
                "{who} was still running after {RUN_TIMEOUT:?} (a hang) and was killed"
            )),
            Some(status) if !status.success() => {
                problems.push(format!("{who} exited with {status}"));
            }
            Some(_) => {}
        }
        for problem in &child.file_problems {
            problems.push(format!("{who}'s acknowledgement file: {problem}"));
        }
        match &child.refusal {
            Some(r) if !ALLOWED_REFUSALS.contains(&r.variant.as_str()) => problems.push(format!(
                "{who} was refused at {} with {}, which is not one of {ALLOWED_REFUSALS:?}: {} \
                 ({})",
                r.stage, r.variant, r.display, r.debug
            )),
            Some(_) => {}
            None if child.acks.len() != INVOICES_PER_CHILD && child.exit.is_some() => {
                problems.push(format!(
                    "{who} recorded {} of its {INVOICES_PER_CHILD} invoices and no refusal",
                    child.acks.len()
                ));
            }
            None => {}
        }
    }
}

/// Opens the store on the source folder (not through a mount) and reads every event.
fn read_store(src: &Path, evidence: &mut String) -> Result<(Vec<Found>, VerifyReport), String> {
    let store = FileEventStore::open_with(src.join(STORE_NAME), store_options())
        .map_err(|e| format!("open: {e} ({e:?})"))?;
    if !store.recovery().is_clean() {
        let _ = writeln!(
            evidence,
            "the parent's open repaired: {:?}",
            store.recovery()
        );
    }
    let events = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .map_err(|e| format!("read: {e} ({e:?})"))?;
    let found = events
        .iter()
        .map(|event| {
            let invoice = event.decode::<InvoiceCreated>().ok();
            Found {
                position: event.position.get(),
                number: invoice.as_ref().map(|i| i.number),
                child: invoice.as_ref().map(|i| i.child),
            }
        })
        .collect();
    let report = store.verify().map_err(|e| format!("verify: {e} ({e:?})"))?;
    let _ = writeln!(evidence, "verify after opening: {report:?}");
    Ok((found, report))
}

/// `store.verify()` must report an intact chain over exactly the events read.
fn check_verify(report: &VerifyReport, present: usize, problems: &mut Vec<String>) -> String {
    let head = report.head.map_or(0, |p| p.get());
    if let Some(problem) = &report.problem {
        problems.push(format!(
            "store.verify(): {:?} at position {} ({}, byte {}): {}",
            problem.kind,
            problem.position,
            problem.file.display(),
            problem.offset,
            problem.detail
        ));
        return format!("{:?}@{}", problem.kind, problem.position);
    }
    if report.events_checked != present as u64 || head != present as u64 {
        problems.push(format!(
            "store.verify() checked {} events up to position {head}, but the store returns \
             {present}",
            report.events_checked
        ));
        return "mismatch".to_owned();
    }
    "intact".to_owned()
}

/// How many invoice numbers are in the log more than once, and how many appends were
/// overwritten, lost, or are in the log without an acknowledgement.
struct LogCounts {
    duplicates: usize,
    overwritten: usize,
    lost: usize,
    unacknowledged: usize,
}

/// Checks the log (`view`, in log order) against what the children recorded.
fn check_log(view: &[Found], children: &[ChildOutcome], problems: &mut Vec<String>) -> LogCounts {
    let mut at: BTreeMap<u64, Vec<&Found>> = BTreeMap::new();
    let mut by_number: BTreeMap<u64, Vec<&Found>> = BTreeMap::new();
    for found in view {
        at.entry(found.position).or_default().push(found);
        if let Some(number) = found.number {
            by_number.entry(number).or_default().push(found);
        }
    }

    let mut contiguity = Findings::new("breaks in the positions (they must run 1..=N)");
    let mut undecodable = Findings::new("events that are not invoices of this test");
    let mut numbering = Findings::new("positions whose invoice number is not the position");
    let mut previous = 0;
    for found in view {
        if found.position != previous + 1 {
            contiguity.push(if previous == 0 {
                format!("the log starts at position {}", found.position)
            } else {
                format!("position {} follows position {previous}", found.position)
            });
        }
        previous = found.position;
        match found.number {
            None => undecodable.push(format!("position {}", found.position)),
            Some(number) if number != found.position => numbering.push(format!(
                "position {} holds {}",
                found.position,
                found.describe()
            )),
            Some(_) => {}
        }
    }

    let mut duplicates = Findings::new("duplicated invoice numbers");
    for (number, entries) in &by_number {
        if entries.len() > 1 {
            let places: Vec<String> = entries
                .iter()
                .map(|f| format!("position {} ({})", f.position, f.describe()))
                .collect();
            duplicates.push(format!(
                "invoice {number} is in the log {} times: {}",
                entries.len(),
                places.join(", ")
            ));
        }
    }
    let mut shared_positions = Findings::new("positions held by more than one event");
    for (position, entries) in &at {
        if entries.len() > 1 {
            let held: Vec<String> = entries.iter().map(|f| f.describe()).collect();
            shared_positions.push(format!("position {position}: {}", held.join(", ")));
        }
    }

    let last = view.iter().map(|f| f.position).max().unwrap_or(0);
    let mut lost = Findings::new("acknowledged appends missing from the log (lost)");
    let mut overwritten = Findings::new("acknowledged appends whose position holds another event");
    let mut acked_at: BTreeMap<u64, Vec<(usize, u64)>> = BTreeMap::new();
    let mut acked_number: BTreeMap<u64, Vec<(usize, u64)>> = BTreeMap::new();
    for child in children {
        for ack in &child.acks {
            acked_at
                .entry(ack.position)
                .or_default()
                .push((child.index, ack.number));
            acked_number
                .entry(ack.number)
                .or_default()
                .push((child.index, ack.position));
            let what = format!(
                "invoice {} acknowledged to child {} (mount {}) at position {}",
                ack.number, child.index, child.mount, ack.position
            );
            let elsewhere = || {
                let places: Vec<String> = by_number
                    .get(&ack.number)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.position != ack.position)
                    .map(|f| format!("{} at {}", f.describe(), f.position))
                    .collect();
                if places.is_empty() {
                    String::new()
                } else {
                    format!("; elsewhere the log has {}", places.join(", "))
                }
            };
            match at.get(&ack.position) {
                None => lost.push(format!(
                    "{what}: no such position (the log ends at {last}){}",
                    elsewhere()
                )),
                Some(entries)
                    if entries
                        .iter()
                        .any(|f| f.number == Some(ack.number) && f.child == Some(child.index)) => {}
                Some(entries) => {
                    let held: Vec<String> = entries.iter().map(|f| f.describe()).collect();
                    overwritten.push(format!(
                        "{what}: the position holds {}{}",
                        held.join(", "),
                        elsewhere()
                    ));
                }
            }
        }
    }
    let mut double_acks = Findings::new("positions or numbers acknowledged more than once");
    for (position, acks) in &acked_at {
        if acks.len() > 1 {
            let to: Vec<String> = acks
                .iter()
                .map(|(c, n)| format!("child {c} (invoice {n})"))
                .collect();
            double_acks.push(format!("position {position} to {}", to.join(", ")));
        }
    }
    for (number, acks) in &acked_number {
        if acks.len() > 1 {
            let to: Vec<String> = acks
                .iter()
                .map(|(c, p)| format!("child {c} (position {p})"))
                .collect();
            double_acks.push(format!("invoice {number} to {}", to.join(", ")));
        }
    }
    let mut unacknowledged =
        Findings::new("events in the log that no child recorded as acknowledged");
    for found in view {
        let acknowledged = acked_at.get(&found.position).is_some_and(|acks| {
            acks.iter()
                .any(|&(c, n)| Some(c) == found.child && Some(n) == found.number)
        });
        if !acknowledged {
            unacknowledged.push(format!("position {}: {}", found.position, found.describe()));
        }
    }

    let counts = LogCounts {
        duplicates: duplicates.count,
        overwritten: overwritten.count,
        lost: lost.count,
        unacknowledged: unacknowledged.count,
    };
    for findings in [
        double_acks,
        duplicates,
        overwritten,
        lost,
        shared_positions,
        contiguity,
        numbering,
        undecodable,
        unacknowledged,
    ] {
        findings.into_problems(problems);
    }
    counts
}

/// The segment files read line by line, without the store: what is physically there, before
/// the parent's open may repair anything. Each whole line is a JSON object with `position` and
/// `tags` (the documented line format); the invoice number and child come from the tags.
struct RawScan {
    found: Vec<Found>,
    lines: usize,
    unreadable: Vec<String>,
}

impl RawScan {
    fn of(store_dir: &Path) -> RawScan {
        let mut scan = RawScan {
            found: Vec::new(),
            lines: 0,
            unreadable: Vec::new(),
        };
        let mut segments: Vec<PathBuf> = match fs::read_dir(store_dir.join("events")) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect(),
            Err(e) => {
                scan.unreadable.push(format!("events folder: {e}"));
                return scan;
            }
        };
        segments.sort();
        for segment in segments {
            let name = segment.file_name().unwrap_or_default().to_string_lossy();
            let bytes = match fs::read(&segment) {
                Ok(bytes) => bytes,
                Err(e) => {
                    scan.unreadable.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let mut offset = 0;
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                scan.lines += 1;
                match raw_invoice(line) {
                    Some(found) => scan.found.push(found),
                    None => {
                        let shown: String =
                            String::from_utf8_lossy(line).chars().take(90).collect();
                        scan.unreadable
                            .push(format!("{name} byte {offset}: {shown:?}"));
                    }
                }
                offset += line.len();
            }
        }
        scan
    }

    fn summary(&self) -> String {
        let mut positions: BTreeMap<u64, usize> = BTreeMap::new();
        for found in &self.found {
            *positions.entry(found.position).or_default() += 1;
        }
        let doubled: Vec<String> = positions
            .iter()
            .filter(|&(_, &n)| n > 1)
            .map(|(p, n)| format!("{p} (x{n})"))
            .take(LISTED)
            .collect();
        let mut text = format!(
            "{} lines, {} whole events, highest position {}, {} positions held more than once{}, \
             {} unreadable line(s)",
            self.lines,
            self.found.len(),
            positions.keys().next_back().copied().unwrap_or(0),
            positions.values().filter(|&&n| n > 1).count(),
            if doubled.is_empty() {
                String::new()
            } else {
                format!(" ({})", doubled.join(", "))
            },
            self.unreadable.len()
        );
        for line in self.unreadable.iter().take(LISTED) {
            let _ = write!(text, "\n    {line}");
        }
        text
    }
}

/// The invoice on one raw segment line, if the line is a whole event line.
fn raw_invoice(line: &[u8]) -> Option<Found> {
    let value: serde_json::Value = serde_json::from_slice(line.strip_suffix(b"\n")?).ok()?;
    let position = value.get("position")?.as_u64()?;
    let tag = |key: &str| -> Option<u64> {
        value
            .get("tags")?
            .as_array()?
            .iter()
            .find(|t| t.get("key").and_then(|k| k.as_str()) == Some(key))?
            .get("value")?
            .as_str()?
            .parse()
            .ok()
    };
    Some(Found {
        position,
        number: tag("invoice"),
        child: tag("child").and_then(|c| usize::try_from(c).ok()),
    })
}
