//! Forgetting data subjects while the process is killed at random moments: no forgotten
//! subject's key survives, no kept subject's key is lost, and no key file is damaged.
//!
//! The parent re-executes this test binary as the child
//! (`<test binary> --exact child_process_entry --nocapture --test-threads=1` with
//! `OPOSSUM_FORGET_CHILD_ROLE=forgetter`; without it `child_process_entry` is a trivial pass).
//! The child opens the store with `Records` and the folder key store, finishes any forget a
//! previous kill interrupted (`recover`), and loops: it registers a new subject with personal
//! data (which creates the subject's key), prints `REG <subject>`, and then forgets it and
//! prints `FGT <subject>` — except every fourth subject, which it keeps (`KEEP <subject>`). The
//! parent kills it with SIGKILL after a random delay, then opens the store, builds `Records`,
//! calls `recover()` and checks, for every subject the log or the key folder knows:
//!
//! - it has a `SubjectForgotten` event ⇔ its key file is a tombstone (the key store has no key
//!   for it, and the file holds no `key`);
//! - every key file parses as JSON holding either a `key` or `destroyed`, for the subject its
//!   name is made of, and no leftover temporary file holds a forgotten subject's key;
//! - every printed `REG` has its event and every printed `FGT` its `SubjectForgotten`;
//! - `verify_folder` finds the log intact;
//! - every subject not forgotten reads with its personal data, every forgotten one erased.
//!
//! `OPOSSUM_KILL_CASES` sets the number of kills (default 6); `OPOSSUM_KILL_SEED` replays a run
//! (the seed is printed, and shown when the test fails). What a SIGKILL does and does not test
//! is said in `crash.rs`: it ends the process, not the machine.
//!
//! Two deterministic tests put the crash exactly between the `SubjectForgotten` event and the
//! key's destruction, by appending the event through the inner store.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the child reports on stdout, the parent logs the seed on stderr"
)]
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opossum_core::records::{KeyStore, Records, SUBJECT_TAG, SubjectForgotten};
use opossum_core::{
    DomainEvent, Error, EventStore, Metadata, NewEvent, Query, ReadOptions, Timestamp,
};
use opossum_fs::{FileEventStore, FileKeyStore, StoreOptions, verify_folder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CHILD_TEST: &str = "child_process_entry";
const ROLE_VAR: &str = "OPOSSUM_FORGET_CHILD_ROLE";
const STORE_VAR: &str = "OPOSSUM_FORGET_CHILD_STORE";
const CYCLE_VAR: &str = "OPOSSUM_FORGET_CHILD_CYCLE";
const DEFAULT_KILLS: u32 = 6;

/// A child that outlives its parent stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
/// A child that has not opened the store after this long is reported as hung.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ApplicantRegistered {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}
impl DomainEvent for ApplicantRegistered {
    const EVENT_TYPE: &'static str = "ApplicantRegistered";
    const PERSONAL_FIELDS: &'static [&'static str] = &["name", "email"];
    fn data_subject(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

fn applicant(subject: &str) -> ApplicantRegistered {
    ApplicantRegistered {
        id: subject.into(),
        name: Some(format!("Name of {subject}")),
        email: Some(format!("{subject}@example.org")),
    }
}

fn applicant_event(subject: &str) -> NewEvent {
    NewEvent::from_typed(&applicant(subject))
        .tag("applicantId", subject)
        .build()
        .unwrap()
}

fn applicants() -> Query {
    Query::from_event_types([ApplicantRegistered::EVENT_TYPE]).unwrap()
}

fn forgotten_events() -> Query {
    Query::from_event_types([SubjectForgotten::EVENT_TYPE]).unwrap()
}

fn by(user: &str) -> Metadata {
    let mut m = Metadata::at(Timestamp::now());
    m.user_id = Some(user.into());
    m
}

fn options() -> StoreOptions {
    StoreOptions::new().lock_timeout(Duration::from_secs(30))
}

fn records_on(path: &Path) -> Records<FileEventStore> {
    Records::new(FileEventStore::open_with(path, options()).unwrap())
        .with_key_store(Arc::new(FileKeyStore::for_store(path)))
}

/// xorshift64* seeded through splitmix64, as in `crash.rs`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
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

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Entry point of the child process; a no-op unless `OPOSSUM_FORGET_CHILD_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    assert_eq!(role, "forgetter", "unknown {ROLE_VAR}");
    let path = PathBuf::from(std::env::var(STORE_VAR).expect("the store folder"));
    let cycle: u64 = std::env::var(CYCLE_VAR)
        .expect("the cycle")
        .parse()
        .unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(forgetter(&path, cycle));
}

fn say(line: &str) {
    // One write of a whole short line, so the parent never sees half of one unless it is the
    // unterminated last line, which it ignores.
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

async fn forgetter(path: &Path, cycle: u64) {
    let records = records_on(path);
    let finished = records.recover().await.unwrap();
    say(&format!("OPEN {finished}"));
    let started = Instant::now();
    for k in 0_u64.. {
        if started.elapsed() > CHILD_LIFETIME {
            return;
        }
        let subject = format!("c{cycle}-{k}");
        records
            .append(vec![applicant_event(&subject)], None)
            .await
            .unwrap();
        say(&format!("REG {subject}"));
        if k % 4 == 3 {
            say(&format!("KEEP {subject}"));
            continue;
        }
        let forgotten = records
            .forget(&subject, "crash test", by("dpo"))
            .await
            .unwrap();
        assert!(
            !forgotten.already && forgotten.key_destroyed,
            "{forgotten:?}"
        );
        say(&format!("FGT {subject}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// What the children printed, over every cycle.
#[derive(Default)]
struct Printed {
    registered: BTreeSet<String>,
    forgotten: BTreeSet<String>,
    kept: BTreeSet<String>,
}

/// What one key file holds.
#[derive(Debug, PartialEq)]
enum KeyFileState {
    Live,
    Tombstone,
}

/// Reads one key file (or temporary file): its subject and whether it holds a key; an error
/// text when it is damaged.
fn key_file(path: &Path) -> Result<(String, KeyFileState), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value = serde_json::from_str(text.trim_end())
        .map_err(|e| format!("{} is not JSON ({e}): {text:?}", path.display()))?;
    let subject = json["subject"]
        .as_str()
        .ok_or_else(|| format!("{} names no subject: {text:?}", path.display()))?
        .to_owned();
    match (json.get("key"), json.get("destroyed")) {
        (Some(Value::String(key)), None)
            if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok((subject, KeyFileState::Live))
        }
        (None, Some(Value::String(_))) => Ok((subject, KeyFileState::Tombstone)),
        _ => Err(format!(
            "{} holds neither a key nor a tombstone: {text:?}",
            path.display()
        )),
    }
}

/// Statistics of one check.
#[derive(Default, Debug)]
struct Checked {
    events: u64,
    subjects: usize,
    forgotten: usize,
    /// Forgets the kill cut between the event and the key's destruction, finished by
    /// `recover`.
    interrupted: usize,
    /// Keys created (and published) for a subject whose registration the kill prevented.
    orphan_keys: usize,
    /// Temporary key files a kill left in the key folder.
    temp_files: usize,
}

async fn check_store(path: &Path, printed: &Printed) -> Result<Checked, String> {
    let keys = FileKeyStore::for_store(path);
    let store = FileEventStore::open_with(path, options()).map_err(|e| format!("open: {e}"))?;
    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .map_err(|e| format!("read: {e}"))?;
    let mut checked = Checked {
        events: all.len() as u64,
        ..Checked::default()
    };

    // The subjects the log knows, and the forgotten ones (each forgotten once).
    let mut registered = BTreeSet::new();
    let mut forgotten = BTreeSet::new();
    for event in &all {
        if event.is::<SubjectForgotten>() {
            let s = event
                .decode::<SubjectForgotten>()
                .map_err(|e| e.to_string())?
                .subject;
            if event.event.tag_value(SUBJECT_TAG) != Some(s.as_str()) {
                return Err(format!("the SubjectForgotten of {s} is not tagged with it"));
            }
            if !forgotten.insert(s.clone()) {
                return Err(format!("{s} was forgotten twice"));
            }
        } else {
            let personal = event
                .event
                .personal_data()
                .ok_or_else(|| format!("event {} has no personal data", event.position))?;
            if !event.event.is_sealed() {
                return Err(format!("event {} is not sealed", event.position));
            }
            registered.insert(personal.subject.clone());
        }
    }
    if let Some(s) = forgotten.iter().find(|s| !registered.contains(*s)) {
        return Err(format!("{s} was forgotten but never registered"));
    }
    if let Some(s) = printed.registered.difference(&registered).next() {
        return Err(format!("REG {s} was printed but its event is missing"));
    }
    if let Some(s) = printed.forgotten.difference(&forgotten).next() {
        return Err(format!(
            "FGT {s} was printed but it has no SubjectForgotten"
        ));
    }
    if let Some(s) = printed.kept.intersection(&forgotten).next() {
        return Err(format!("{s} was kept but is forgotten"));
    }

    // Every file of the key folder, before recover.
    let mut files: BTreeMap<String, KeyFileState> = BTreeMap::new();
    let mut temps = Vec::new();
    if let Ok(entries) = fs::read_dir(keys.dir()) {
        for entry in entries {
            let file = entry.map_err(|e| e.to_string())?.path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                temps.push(file);
                continue;
            }
            let (subject, state) = key_file(&file)?;
            if keys.key_path(&subject) != file {
                return Err(format!("{} holds the key of {subject}", file.display()));
            }
            files.insert(subject, state);
        }
    }
    checked.temp_files = temps.len();
    for s in &forgotten {
        match files.get(s) {
            Some(KeyFileState::Live) => checked.interrupted += 1,
            Some(KeyFileState::Tombstone) => {}
            None => return Err(format!("forgotten {s} has no key file at all")),
        }
    }

    // Recover finishes the interrupted forgets.
    let records = Records::new(store).with_key_store(Arc::new(keys.clone()));
    let found = records
        .recover()
        .await
        .map_err(|e| format!("recover: {e}"))?;
    if found != forgotten.len() {
        return Err(format!(
            "recover found {found} forgotten subjects, the log has {}",
            forgotten.len()
        ));
    }

    // Forgotten ⇔ tombstone, for every subject the log or the key folder knows.
    let mut subjects: BTreeSet<String> = registered.clone();
    subjects.extend(files.keys().cloned());
    checked.subjects = subjects.len();
    checked.forgotten = forgotten.len();
    for s in &subjects {
        let key = keys.get(s).await.map_err(|e| format!("key of {s}: {e}"))?;
        let file = keys.key_path(s);
        let state = if file.exists() {
            Some(key_file(&file)?.1)
        } else {
            None
        };
        let is_forgotten = forgotten.contains(s);
        match (is_forgotten, key.is_some(), state) {
            (true, false, Some(KeyFileState::Tombstone)) => {}
            (false, true, Some(KeyFileState::Live)) => {
                if !registered.contains(s) {
                    checked.orphan_keys += 1;
                }
            }
            (f, k, st) => {
                return Err(format!(
                    "{s}: forgotten {f}, key store has a key {k}, key file {st:?}"
                ));
            }
        }
        if is_forgotten != records.is_forgotten(s).await.map_err(|e| e.to_string())? {
            return Err(format!("Records disagrees on whether {s} is forgotten"));
        }
    }
    // A kill between a temporary key file's write and its removal leaves it; it must never be
    // a live copy of a forgotten subject's key.
    for temp in &temps {
        match key_file(temp) {
            Ok((s, KeyFileState::Live)) if forgotten.contains(&s) => {
                return Err(format!("{} keeps a key of forgotten {s}", temp.display()));
            }
            Ok(_) => {}
            // A temporary file cut by the kill before it was synced and published.
            Err(_) => {}
        }
    }

    // The log is intact, and reads open or erase as they should.
    let report = verify_folder(path).map_err(|e| format!("verify: {e}"))?;
    if !report.is_intact() || report.events_checked != checked.events {
        return Err(format!("verify of {} events: {report:?}", checked.events));
    }
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .map_err(|e| format!("read through Records: {e}"))?;
    for event in &read {
        let a = event
            .decode::<ApplicantRegistered>()
            .map_err(|e| format!("decode at {}: {e}", event.position))?;
        let expected = if forgotten.contains(&a.id) {
            ApplicantRegistered {
                id: a.id.clone(),
                name: None,
                email: None,
            }
        } else {
            applicant(&a.id)
        };
        if a != expected || event.is_erased() != forgotten.contains(&a.id) {
            return Err(format!(
                "at {}: read {a:?} (erased {}), expected {expected:?}",
                event.position,
                event.is_erased()
            ));
        }
    }
    Ok(checked)
}

fn seed() -> u64 {
    if let Some(seed) = std::env::var("OPOSSUM_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kills() -> u32 {
    std::env::var("OPOSSUM_KILL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_survives_sigkill_at_random_moments() {
    let seed = seed();
    let kills = kills();
    eprintln!("forget crash test: seed {seed}, {kills} kills (OPOSSUM_KILL_SEED={seed} replays)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgetful");
    let stderr_log = dir.path().join("child-stderr.log");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(seed);
    let mut printed = Printed::default();
    let mut totals = Checked::default();

    for cycle in 0..kills {
        let fail = |what: &str| -> ! {
            let stderr = fs::read_to_string(&stderr_log).unwrap_or_default();
            panic!("seed {seed}, cycle {cycle}: {what}\nchild stderr:\n{stderr}");
        };
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .unwrap();
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, "forgetter")
            .env(STORE_VAR, &path)
            .env(CYCLE_VAR, cycle.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Lines as they come, so the parent can wait for the child to open the store; a line
        // the kill cut short has no newline and is dropped.
        let (lines, received) = mpsc::channel::<String>();
        let reader = thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    let _ = lines.send(line.trim_end().to_owned());
                }
                line.clear();
            }
        });

        // Most kills land in the loop; some while the child opens and recovers.
        let early = rng.between(0, 3) == 0;
        let mut seen = Vec::new();
        if early {
            thread::sleep(Duration::from_millis(rng.between(1, 40)));
        } else {
            let deadline = Instant::now() + HANG_GUARD;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match received.recv_timeout(left) {
                    Ok(line) => {
                        let open = line.contains("OPEN ");
                        seen.push(line);
                        if open {
                            break;
                        }
                    }
                    Err(_) => fail("the child did not open the store"),
                }
            }
            thread::sleep(Duration::from_millis(rng.between(0, 120)));
        }
        if let Some(status) = child.try_wait().unwrap() {
            fail(&format!("the child ended by itself: {status}"));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        if status.signal() != Some(9) {
            fail(&format!("the child ended with {status}, not SIGKILL"));
        }
        seen.extend(received.try_iter());
        for line in &seen {
            // libtest may print "test child_process_entry ... " in front of the first line.
            for (prefix, set) in [
                ("REG ", &mut printed.registered),
                ("FGT ", &mut printed.forgotten),
                ("KEEP ", &mut printed.kept),
            ] {
                if let Some((_, subject)) = line.split_once(prefix) {
                    set.insert(subject.to_owned());
                }
            }
        }

        let checked = check_store(&path, &printed)
            .await
            .unwrap_or_else(|what| fail(&what));
        eprintln!("cycle {cycle} (early kill: {early}): {checked:?}");
        totals.interrupted += checked.interrupted;
        totals.orphan_keys = checked.orphan_keys;
        totals.temp_files = checked.temp_files;
        totals.events = checked.events;
        totals.subjects = checked.subjects;
        totals.forgotten = checked.forgotten;
    }
    eprintln!(
        "forget crash test: {kills} kills, {} events, {} subjects ({} forgotten, {} printed \
         forgotten), {} forgets finished by recover, {} keys without a registration, {} \
         temporary files left",
        totals.events,
        totals.subjects,
        totals.forgotten,
        printed.forgotten.len(),
        totals.interrupted,
        totals.orphan_keys,
        totals.temp_files
    );
    assert!(
        !printed.registered.is_empty(),
        "seed {seed}: no child registered anyone; the kills came too early to test anything"
    );
}

// ---------------------------------------------------------------------------------------------
// A crash exactly between the event and the key's destruction.

/// Registers `s-1` and `s-2` and then appends `s-1`'s `SubjectForgotten` through the inner
/// store only, as a `forget` killed right after its append leaves it. Returns the key that
/// survived in `s-1`'s key file.
async fn interrupted_forget(path: &Path) -> Vec<u8> {
    let records = records_on(path);
    records
        .append(vec![applicant_event("s-1"), applicant_event("s-2")], None)
        .await
        .unwrap();
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    assert!(read.iter().all(|e| !e.is_erased()));

    let event = NewEvent::from_typed(&SubjectForgotten {
        subject: "s-1".into(),
        reason: "request 17".into(),
    })
    .tag(SUBJECT_TAG, "s-1")
    .metadata(by("dpo"))
    .build()
    .unwrap();
    records.inner().append(vec![event], None).await.unwrap();

    // The key is still there, as the crash left it.
    let keys = FileKeyStore::for_store(path);
    let key = keys
        .get("s-1")
        .await
        .unwrap()
        .expect("the key survived the crash");
    let file = keys.key_path("s-1");
    assert_eq!(key_file(&file).unwrap(), ("s-1".into(), KeyFileState::Live));
    let text = fs::read_to_string(&file).unwrap();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&hex));
    // The process dies: its Records and its handle are gone.
    drop(records);
    hex.into_bytes()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            out.push(path);
        }
    }
    out
}

/// After the interrupted forget is finished: `s-1` reads erased and its key is gone from every
/// file, `s-2` is untouched. Reads come first, so that a `Records` that has not looked at the
/// log since the event finishes the forget with its first read.
async fn assert_finished(path: &Path, records: &Records<FileEventStore>, key_hex: &[u8]) {
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[0].is_erased());
    assert_eq!(
        read[0].decode::<ApplicantRegistered>().unwrap(),
        ApplicantRegistered {
            id: "s-1".into(),
            name: None,
            email: None
        }
    );
    assert!(!read[1].is_erased());
    assert_eq!(
        read[1].decode::<ApplicantRegistered>().unwrap(),
        applicant("s-2")
    );

    let keys = FileKeyStore::for_store(path);
    assert!(keys.get("s-1").await.unwrap().is_none());
    assert_eq!(
        key_file(&keys.key_path("s-1")).unwrap(),
        ("s-1".into(), KeyFileState::Tombstone)
    );
    assert!(files_containing(path, key_hex).is_empty());
    assert!(keys.get("s-2").await.unwrap().is_some());

    assert!(matches!(
        records.append(vec![applicant_event("s-1")], None).await,
        Err(Error::SubjectForgotten { ref subject }) if subject == "s-1"
    ));
    // Forgetting again finds the first event, and no key is left to destroy.
    let again = records.forget("s-1", "again", by("dpo")).await.unwrap();
    assert!(again.already);
    assert!(!again.key_destroyed);
    assert_eq!(
        records.inner().head().await.unwrap().map(|p| p.get()),
        Some(3)
    );
    let report = verify_folder(path).unwrap();
    assert!(
        report.is_intact() && report.events_checked == 3,
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_finishes_a_forget_interrupted_after_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupted");
    let key_hex = interrupted_forget(&path).await;

    let records = records_on(&path);
    assert_eq!(records.recover().await.unwrap(), 1);
    assert_eq!(
        records
            .inner()
            .read(&forgotten_events(), ReadOptions::new())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_finished(&path, &records, &key_hex).await;
    // Nothing more to recover.
    assert_eq!(records.recover().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_read_finishes_a_forget_interrupted_after_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupted");
    let key_hex = interrupted_forget(&path).await;

    // No explicit recover: the first read of sealed data sees the event first.
    let records = records_on(&path);
    let first = records.read_last(&applicants()).await.unwrap().unwrap();
    assert!(!first.is_erased(), "s-2 is kept");
    assert_finished(&path, &records, &key_hex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_that_cached_the_key_stops_using_it_when_it_sees_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupted");
    // This process cached s-1's key, then another process's forget was cut after its event.
    let cached = records_on(&path);
    cached
        .append(vec![applicant_event("s-1"), applicant_event("s-2")], None)
        .await
        .unwrap();
    cached
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    let other = records_on(&path);
    let event = NewEvent::from_typed(&SubjectForgotten {
        subject: "s-1".into(),
        reason: "request 17".into(),
    })
    .tag(SUBJECT_TAG, "s-1")
    .metadata(by("dpo"))
    .build()
    .unwrap();
    other.inner().append(vec![event], None).await.unwrap();
    drop(other);
    let keys = FileKeyStore::for_store(&path);
    let key = keys.get("s-1").await.unwrap().unwrap();
    let key_hex: Vec<u8> = key
        .as_bytes()
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();

    // Its next read sees the event, erases, and destroys the key left behind.
    assert_finished(&path, &cached, &key_hex).await;
}
