//! What the CLI's integration tests share: stores with known events, and the `opossum` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    reason = "test helpers: a failed expectation is a test failure; not every test uses every helper"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use opossum_core::{Metadata, NewEvent, Payload, Timestamp};
use opossum_fs::FileEventStore;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The event types the seeded stores hold, in turn.
pub const TYPES: [&str; 3] = ["StudentRegistered", "CourseCreated", "StudentEnrolled"];

/// Event `i` (from 1) of a seeded store: type `TYPES[(i-1) % 3]`, tags `n=<i>` and
/// `group=<i % 4>`, user `user-<i % 2>`, timestamp 2026-01-01T00:00:00Z plus `i` minutes.
pub fn event(i: u64) -> NewEvent {
    let kind = TYPES[((i - 1) % 3) as usize];
    let payload = Payload::from_json(&format!(r#"{{"i": {i}, "name":"student {i}"}}"#)).unwrap();
    let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let at = at
        .checked_add(jiff::SignedDuration::from_mins(i as i64))
        .unwrap();
    let mut metadata = Metadata::at(at);
    metadata.user_id = Some(format!("user-{}", i % 2));
    NewEvent::builder(kind, payload)
        .tag("n", i.to_string())
        .tag("group", (i % 4).to_string())
        .metadata(metadata)
        .build()
        .unwrap()
}

/// A new store in `parent/name` holding events 1..=`count`, appended `batch` at a time; closed.
pub fn seeded_store(parent: &Path, name: &str, count: u64) -> PathBuf {
    let store = FileEventStore::open(parent.join(name)).unwrap();
    let mut i = 1;
    while i <= count {
        let end = (i + 9).min(count);
        store
            .append_blocking((i..=end).map(event).collect(), None)
            .unwrap();
        i = end + 1;
    }
    let dir = store.path().to_path_buf();
    store.close().unwrap();
    dir
}

/// The `opossum` binary, with logs kept quiet.
pub fn opossum() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opossum"));
    command.env_remove("RUST_LOG");
    command
}

/// Runs `opossum args…` and returns what it did.
pub fn run(args: &[&str]) -> Output {
    opossum().args(args).output().unwrap()
}

/// Runs `opossum --json args…` and parses its output as one JSON document.
pub fn run_json(args: &[&str]) -> (i32, serde_json::Value) {
    let output = opossum().arg("--json").args(args).output().unwrap();
    let code = output.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, value)
}

/// The path as a string argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Flips one byte of the line of `position` inside its payload (the byte after `"i": `,
/// a digit, replaced by another), so that the line stays valid JSON but its hash breaks.
pub fn edit_payload_byte(store: &Path, position: u64) {
    let events = store.join("events");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    for segment in segments {
        let mut bytes = std::fs::read(&segment).unwrap();
        let needle = format!("{{\"position\":{position},");
        let Some(start) = find(&bytes, needle.as_bytes()) else {
            continue;
        };
        let marker = b"\"i\": ";
        let at = start + find(&bytes[start..], marker).unwrap() + marker.len();
        bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
        std::fs::write(&segment, bytes).unwrap();
        return;
    }
    panic!("position {position} not found");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
