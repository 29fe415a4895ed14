//! Every read, check and copy command of `opossum`, run as the real binary against real stores:
//! an intact one, one with an edited byte, and one another process writes meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use opossum_fs::FileEventStore;
use support::{TestResult, arg, edit_payload_byte, event, opossum, run, run_json, seeded_store};

/// Set in a child process: append to the store in this folder until killed.
const WRITER_VAR: &str = "OPOSSUM_CLI_TEST_WRITER";

/// Not a test of its own: the body of the child process that appends while the commands run.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(WRITER_VAR) else {
        return;
    };
    let store = FileEventStore::open(&dir).unwrap();
    let mut i = store
        .read_last_blocking(&opossum_core::Query::all())
        .unwrap()
        .map_or(1, |e| e.position.get() + 1);
    let mut ready = false;
    loop {
        store
            .append_blocking(vec![event(i), event(i + 1)], None)
            .unwrap();
        i += 2;
        if !ready {
            // Only once something was appended: the parent counts on it.
            println!("ready");
            ready = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child process appending to `dir` until dropped; `start` returns once it appended its first
/// events.
struct Writer(Child);

impl Writer {
    fn start(dir: &Path) -> Writer {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(WRITER_VAR, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.contains("ready"))),
            "the writer did not start"
        );
        Writer(child)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every file under `dir` with its bytes, to prove a command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn stats_reports_counts_types_sizes_and_times() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 30);
    let (code, stats) = run_json(&["stats", arg(&dir)]);
    assert_eq!(code, 0);
    assert_eq!(stats["events"], 30);
    assert_eq!(stats["head"], 30);
    assert_eq!(stats["segments"], 1);
    assert_eq!(stats["first_timestamp"], "2026-01-01T00:01:00Z");
    assert_eq!(stats["last_timestamp"], "2026-01-01T00:30:00Z");
    let types = stats["event_types"].as_array().unwrap();
    assert_eq!(types.len(), 3);
    assert!(types.iter().all(|t| t["events"] == 10));
    let sizes = &stats["size_on_disk"];
    assert!(sizes["events"].as_u64().unwrap() > 30 * 200);
    assert!(sizes["index"].as_u64().unwrap() > 0);
    assert_eq!(
        sizes["total"].as_u64(),
        Some(
            ["events", "index", "projections", "other"]
                .iter()
                .map(|k| sizes[k].as_u64().unwrap())
                .sum()
        )
    );
    assert_eq!(stats["identity"].as_str().map(str::len), Some(32));

    let text = run(&["stats", arg(&dir)]);
    let text = String::from_utf8(text.stdout)?;
    assert!(text.contains("events       30"), "{text}");
    assert!(text.contains("StudentRegistered"), "{text}");
    Ok(())
}

#[test]
fn verify_is_intact_then_names_the_edited_position() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 100);
    let (code, report) = run_json(&["verify", arg(&dir)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true);
    assert_eq!(report["events_checked"], 100);
    assert_eq!(report["head_hash"].as_str().map(str::len), Some(64));

    edit_payload_byte(&dir, 57);
    let before = snapshot(&dir);
    let (code, report) = run_json(&["verify", arg(&dir)]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["intact"], false);
    assert_eq!(report["events_checked"], 56);
    let problem = &report["problem"];
    assert_eq!(problem["position"], 57);
    assert_eq!(problem["kind"], "edited");
    assert!(
        problem["file"]
            .as_str()
            .unwrap()
            .ends_with("00000000000000000001.jsonl")
    );
    assert!(problem["offset"].as_u64().unwrap() > 0);
    assert_eq!(snapshot(&dir), before, "verify changed the folder");

    let text = String::from_utf8(run(&["verify", arg(&dir)]).stdout)?;
    assert!(text.contains("BROKEN at position 57: edited"), "{text}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn read_commands_work_on_a_read_only_copy_and_change_nothing() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 40);
    let before = snapshot(&dir);
    let mut folders = vec![dir.clone()];
    folders.extend(["events", "index"].map(|f| dir.join(f)));
    for folder in &folders {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o555))?;
    }
    let writable_anyway = std::fs::File::create(dir.join("probe")).is_ok();
    for args in [
        vec!["verify"],
        vec!["stats"],
        vec!["query", "--limit", "5"],
        vec!["tail"],
        vec!["projections"],
    ] {
        let mut args = args.clone();
        args.insert(1, arg(&dir));
        if args[0] == "projections" {
            args.push("status");
        }
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for folder in &folders {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755))?;
    }
    if writable_anyway {
        // Running as root: permissions do not stop writes, so only the comparison below proves
        // nothing was written.
        std::fs::remove_file(dir.join("probe"))?;
    }
    assert_eq!(snapshot(&dir), before, "a read command changed the folder");
    Ok(())
}

#[test]
fn commands_that_find_no_store_exit_2_and_create_nothing() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let missing = tmp.path().join("nothing-here");
    for command in ["stats", "verify", "query", "tail", "restore-check"] {
        let output = run(&[command, arg(&missing)]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no store"), "{command}: {stderr}");
        assert!(!missing.exists(), "{command} created the folder");
    }
    let (code, doc) = run_json(&["stats", arg(&missing)]);
    assert_eq!(code, 2);
    assert_eq!(doc["error"]["kind"], "not found");
    Ok(())
}

#[test]
fn query_filters_by_type_tag_position_and_time() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 60);
    let positions = |doc: &serde_json::Value| -> Vec<u64> {
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect()
    };
    let (code, doc) = run_json(&[
        "query",
        arg(&dir),
        "--type",
        "CourseCreated",
        "--tag",
        "group=1",
    ]);
    assert_eq!(code, 0);
    // CourseCreated: i % 3 == 2; group 1: i % 4 == 1.
    let expected: Vec<u64> = (1..=60).filter(|i| i % 3 == 2 && i % 4 == 1).collect();
    assert_eq!(positions(&doc), expected);
    assert_eq!(doc["count"], expected.len());

    let (_, doc) = run_json(&[
        "query",
        arg(&dir),
        "--type",
        "CourseCreated",
        "--type",
        "StudentEnrolled",
        "--after",
        "10",
        "--before",
        "20",
    ]);
    let expected: Vec<u64> = (11..20).filter(|i| i % 3 != 1).collect();
    assert_eq!(positions(&doc), expected);

    let (_, doc) = run_json(&["query", arg(&dir), "--desc", "--limit", "3"]);
    assert_eq!(positions(&doc), vec![60, 59, 58]);

    let (_, doc) = run_json(&[
        "query",
        arg(&dir),
        "--since",
        "2026-01-01T00:10:00Z",
        "--until",
        "2026-01-01T00:13:00Z",
    ]);
    assert_eq!(positions(&doc), vec![10, 11, 12]);

    let (_, doc) = run_json(&["query", arg(&dir), "--tag", "n=7"]);
    let event = &doc["events"][0];
    assert_eq!(event["type"], "StudentRegistered");
    assert_eq!(event["payload"]["name"], "student 7");
    assert_eq!(event["metadata"]["user_id"], "user-1");
    assert_eq!(event["hash"].as_str().map(str::len), Some(64));

    for bad in [
        vec!["--tag", "novalue"],
        vec!["--after", "5", "--before", "6"],
        vec!["--since", "yesterday"],
        vec!["--type", ""],
    ] {
        let mut args = vec!["query", arg(&dir)];
        args.extend(bad.iter().copied());
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("invalid"),
            "{bad:?}"
        );
    }
    let text = String::from_utf8(run(&["query", arg(&dir), "--tag", "n=7"]).stdout)?;
    assert!(text.contains("n=7 group=3"), "{text}");
    assert!(text.contains("1 events"), "{text}");
    Ok(())
}

#[test]
fn tail_shows_the_last_events_and_follows_another_process() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 25);
    let output = run(&["--json", "tail", arg(&dir), "-n", "3"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)?
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let positions: Vec<u64> = lines
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, vec![23, 24, 25]);

    let mut follow = opossum()
        .args(["--json", "tail", arg(&dir), "-n", "1", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(30))?)?;
    assert_eq!(first["position"], 25);
    let writer = Writer::start(&dir);
    let mut expected = 26;
    let deadline = Instant::now() + Duration::from_secs(60);
    while expected <= 60 {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
        let event: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(
            event["position"], expected,
            "follow skipped or repeated an event"
        );
        expected += 1;
    }
    drop(writer);
    let _ = follow.kill();
    let _ = follow.wait();
    Ok(())
}

#[test]
fn backup_while_another_process_writes_then_restore_check() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 50);
    let writer = Writer::start(&dir);
    let dest = tmp.path().join("copy");
    let (code, report) = run_json(&["backup", arg(&dir), arg(&dest)]);
    assert_eq!(code, 0, "{report}");
    let events = report["events"].as_u64().unwrap();
    assert!(events >= 52, "{report}");
    // The source is verified while it is being written.
    let (code, live) = run_json(&["verify", arg(&dir)]);
    assert_eq!(code, 0, "{live}");
    assert!(live["events_checked"].as_u64().unwrap() >= events);
    drop(writer);

    let (code, check) = run_json(&["restore-check", arg(&dest)]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["restorable"], true);
    assert_eq!(check["events"], events);
    assert_eq!(check["verify"]["head_hash"], report["head_hash"]);
    assert_ne!(check["identity"], serde_json::Value::Null);

    // A damaged copy is not restorable.
    edit_payload_byte(&dest, 10);
    let (code, check) = run_json(&["restore-check", arg(&dest)]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["restorable"], false);
    assert_eq!(check["verify"]["problem"]["position"], 10);

    // A backup never goes into a folder that holds something.
    let output = run(&["backup", arg(&dir), arg(&dest)]);
    assert_eq!(output.status.code(), Some(2));
    Ok(())
}

#[test]
fn doctor_checks_the_folder_and_explains_several_pcs() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 5);
    let (code, report) = run_json(&["doctor", arg(&dir)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["suitable"], true);
    assert_eq!(report["holds_store"], true);
    let probes = report["probes"].as_array().unwrap();
    assert!(
        probes
            .iter()
            .any(|p| p["name"] == "advisory lock" && p["outcome"] == "passed")
    );
    assert!(report["several_pcs"].as_str().unwrap().contains("PC"));
    let output = run(&["doctor", arg(&tmp.path().join("missing"))]);
    assert_eq!(output.status.code(), Some(2));
    // The check leaves nothing behind in the folder.
    let names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".opossum-check")),
        "{names:?}"
    );
    Ok(())
}

#[test]
fn help_and_usage_errors() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    insta::assert_snapshot!("help", help);
    for command in [
        "stats",
        "verify",
        "query",
        "tail",
        "export",
        "verify-export",
        "keygen",
        "backup",
        "restore-check",
        "doctor",
        "projections",
        "browse",
        "migrate",
    ] {
        let output = run(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0), "{command}");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        insta::assert_snapshot!(format!("help-{command}"), help);
    }
    let output = run(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["query"]);
    assert_eq!(output.status.code(), Some(2));
}
