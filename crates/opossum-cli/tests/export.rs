//! `opossum export`, `verify-export` and `keygen`, run as the binary: round trips (unsigned and
//! signed), filtered exports, every kind of tampering, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{TestResult, arg, edit_payload_byte, run, run_json, seeded_store};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of the event file of `position`.
fn name(position: u64) -> String {
    format!("{position:020}.json")
}

/// `opossum --json export STORE OUT extra…`.
fn export(store: &Path, out: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["export", arg(store), arg(out)];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// `opossum --json verify-export OUT extra…`.
fn verify(out: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify-export", arg(out)];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// The files a report's problems name, in order.
fn problem_files(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap().to_owned())
        .collect()
}

/// True when some problem names `file` and mentions `words`.
fn has_problem(report: &Value, file: &str, words: &str) -> bool {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["file"] == file && p["problem"].as_str().unwrap().contains(words))
}

/// A store of `count` events and an unsigned export of all of them.
fn exported(parent: &Path, count: u64) -> (PathBuf, PathBuf) {
    let store = seeded_store(parent, "store", count);
    let out = parent.join("export");
    let (code, report) = export(&store, &out, &[]);
    assert_eq!(code, 0, "{report}");
    (store, out)
}

/// A new key pair `parent/name` (and `name.pub`).
fn keygen(parent: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let key = parent.join(name);
    let (code, report) = run_json(&["keygen", arg(&key)]);
    assert_eq!(code, 0, "{report}");
    let public = parent.join(format!("{name}.pub"));
    let hex = report["public_key"].as_str().unwrap().to_owned();
    (key, public, hex)
}

/// The files in `dir`, by name.
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_export_round_trips_and_its_files_are_exact_and_readable() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 25);
    let out = folder.path().join("export");
    let (code, report) = export(&store, &out, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["count"], 25);
    assert_eq!(report["first"], 1);
    assert_eq!(report["last"], 25);
    assert_eq!(report["contiguous"], true);
    assert_eq!(report["signed"], false);
    assert_eq!(report["from_hash"], GENESIS);

    // The chain's end is the store's head hash.
    let (code, verified) = run_json(&["verify", arg(&store)]);
    assert_eq!(code, 0);
    assert_eq!(report["to_hash"], verified["head_hash"]);

    let mut expected: BTreeSet<String> = (1..=25).map(name).collect();
    expected.insert("manifest.json".to_owned());
    assert_eq!(listing(&out), expected);

    // An event file: every field, the exact line, and the readable copy in the stored order.
    let text = std::fs::read_to_string(out.join(name(12)))?;
    let file: Value = serde_json::from_str(&text)?;
    assert_eq!(file["position"], 12);
    let line = file["line"].as_str().unwrap();
    assert!(
        line.starts_with(r#"{"position":12,"type":"StudentEnrolled""#),
        "{line}"
    );
    assert_eq!(
        opossum_fs::chain_hash(file["previous_hash"].as_str().unwrap(), line).as_deref(),
        file["hash"].as_str()
    );
    let line_value: Value = serde_json::from_str(line)?;
    assert_eq!(file["event"], line_value);
    assert!(
        text.starts_with("{\n  \"position\": 12,\n  \"hash\": \""),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  \"event\": {\n    \"position\": 12,\n    \"type\": \"StudentEnrolled\",\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("\n  }\n}\n"), "{text}");
    // Links between files.
    let eleven = read_json(&out.join(name(11)));
    assert_eq!(file["previous_hash"], eleven["hash"]);

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["format"], "opossum-export");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["store"]["name"], "store");
    assert_eq!(manifest["count"], 25);
    assert_eq!(manifest["range"]["first"], 1);
    assert_eq!(manifest["range"]["last"], 25);
    assert_eq!(manifest["contiguous"], true);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 25);
    assert_eq!(manifest["files"][11]["name"], name(12));
    assert_eq!(manifest["files"][11]["position"], 12);
    assert_eq!(manifest["files"][11]["sha256"].as_str().unwrap().len(), 64);

    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["intact"], true);
    assert_eq!(check["files_checked"], 25);
    assert_eq!(check["signed"], false);
    assert_eq!(check["signature_valid"], Value::Null);
    assert_eq!(check["trusted_key_matched"], Value::Null);
    assert_eq!(check["problems"], serde_json::json!([]));
    assert_eq!(check["manifest_sha256"], report["manifest_sha256"]);

    // For people.
    let text = run(&["verify-export", arg(&out)]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8(text.stdout)?;
    assert!(text.starts_with("intact: "), "{text}");
    assert!(text.contains("not signed"), "{text}");
    Ok(())
}

#[test]
fn a_signed_export_verifies_against_the_signers_public_key() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 7);
    let (key, public, hex) = keygen(folder.path(), "auditor");
    let out = folder.path().join("export");
    let (code, report) = export(&store, &out, &["--sign", arg(&key)]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["signed"], true);
    assert_eq!(report["public_key"], hex.as_str());
    assert!(out.join("manifest.sig").is_file());
    let sig = read_json(&out.join("manifest.sig"));
    assert_eq!(sig["algorithm"], "ed25519");
    assert_eq!(sig["public_key"], hex.as_str());
    assert_eq!(sig["signature"].as_str().unwrap().len(), 128);

    let (code, check) = verify(&out, &["--public-key", arg(&public)]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["intact"], true);
    assert_eq!(check["signed"], true);
    assert_eq!(check["signature_valid"], true);
    assert_eq!(check["signer_public_key"], hex.as_str());
    assert_eq!(check["trusted_key_matched"], true);
    assert_eq!(check["note"], Value::Null);

    // Without a trusted key: intact, but the report says the signer was not checked.
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["signature_valid"], true);
    assert_eq!(check["trusted_key_matched"], Value::Null);
    assert!(
        check["note"].as_str().unwrap().contains("not checked"),
        "{check}"
    );

    // The secret key given for the public one is refused, not taken as a stranger's key.
    let (code, error) = verify(&out, &["--public-key", arg(&key)]);
    assert_eq!(code, 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SECRET"),
        "{error}"
    );
    Ok(())
}

#[test]
fn a_filtered_export_holds_just_the_selected_positions_and_is_not_contiguous() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 25);
    let out = folder.path().join("export");
    // CourseCreated or StudentEnrolled (i % 3 is 2 or 0) with group=0 (i % 4 == 0).
    let (code, report) = export(
        &store,
        &out,
        &[
            "--type",
            "CourseCreated",
            "--type",
            "StudentEnrolled",
            "--tag",
            "group=0",
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["count"], 4);
    assert_eq!(report["contiguous"], false);
    let mut expected: BTreeSet<String> = [8, 12, 20, 24].into_iter().map(name).collect();
    expected.insert("manifest.json".to_owned());
    assert_eq!(listing(&out), expected);

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["contiguous"], false);
    assert_eq!(manifest["range"]["first"], 8);
    assert_eq!(manifest["range"]["last"], 24);
    assert_eq!(
        manifest["filters"]["types"],
        serde_json::json!(["CourseCreated", "StudentEnrolled"])
    );
    assert_eq!(manifest["filters"]["tags"], serde_json::json!(["group=0"]));
    // The chain hash the export starts from is that of position 7.
    let seven = run_json(&["query", arg(&store), "--after", "6", "--limit", "1"]).1;
    let seven_hash = seven["events"][0]["hash"].clone();
    assert_eq!(manifest["from_hash"], seven_hash);

    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["files_checked"], 4);

    // Positions and times: a contiguous slice.
    let out = folder.path().join("slice");
    let (code, report) = export(
        &store,
        &out,
        &[
            "--after",
            "3",
            "--since",
            "2026-01-01T00:05:00Z",
            "--until",
            "2026-01-01T00:09:00Z",
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["count"], 4);
    assert_eq!(report["first"], 5);
    assert_eq!(report["last"], 8);
    assert_eq!(report["contiguous"], true);
    assert_eq!(verify(&out, &[]).0, 0);
    Ok(())
}

#[test]
fn an_empty_selection_still_writes_a_manifest() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 3);
    let out = folder.path().join("export");
    let (code, report) = export(&store, &out, &["--type", "NothingLikeThis"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["count"], 0);
    assert_eq!(listing(&out), BTreeSet::from(["manifest.json".to_owned()]));
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["count"], 0);
    assert_eq!(manifest["files"], serde_json::json!([]));
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["files_checked"], 0);
    Ok(())
}

#[test]
fn large_exports_are_read_in_pages_and_limited() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 1030);
    let out = folder.path().join("export");
    let (code, report) = export(&store, &out, &["--after", "1", "--limit", "1027"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["count"], 1027);
    assert_eq!(report["first"], 2);
    assert_eq!(report["last"], 1028);
    assert_eq!(report["contiguous"], true);
    assert_eq!(listing(&out).len(), 1028);
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["files_checked"], 1027);
    Ok(())
}

#[test]
fn an_edit_of_the_readable_event_is_found() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 10);
    let path = out.join(name(5));
    let text = std::fs::read_to_string(&path)?;
    let at = text.find("\"event\":").unwrap();
    let (head, tail) = text.split_at(at);
    std::fs::write(
        &path,
        format!("{head}{}", tail.replacen("student 5", "student 6", 1)),
    )?;

    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["intact"], false);
    assert!(has_problem(&check, &name(5), "SHA-256"), "{check}");
    assert!(
        has_problem(&check, &name(5), "does not say the same"),
        "{check}"
    );
    assert!(
        problem_files(&check).iter().all(|f| *f == name(5)),
        "{check}"
    );

    let text = run(&["verify-export", arg(&out)]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8(text.stdout)?;
    assert!(text.starts_with("TAMPERED: 2 problems"), "{text}");
    assert!(text.contains(&name(5)), "{text}");
    Ok(())
}

#[test]
fn an_edit_of_the_exact_line_breaks_the_chain() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 10);
    let path = out.join(name(5));
    let text = std::fs::read_to_string(&path)?;
    // The line comes before the readable copy: the first occurrence is in the line.
    assert!(text.find("student 5").unwrap() < text.find("\"event\":").unwrap());
    std::fs::write(&path, text.replacen("student 5", "student 6", 1))?;

    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, &name(5), "SHA-256"), "{check}");
    assert!(
        has_problem(&check, &name(5), "chain link is broken"),
        "{check}"
    );
    assert!(
        has_problem(&check, &name(5), "does not say the same"),
        "{check}"
    );
    assert!(
        problem_files(&check).iter().all(|f| *f == name(5)),
        "{check}"
    );
    Ok(())
}

#[test]
fn a_deleted_file_is_found() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 10);
    std::fs::remove_file(out.join(name(7)))?;
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, &name(7), "missing"), "{check}");
    assert_eq!(check["files_checked"], 9);
    Ok(())
}

#[test]
fn an_added_file_is_found() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 10);
    std::fs::copy(out.join(name(3)), out.join(name(11)))?;
    std::fs::write(out.join("notes.json"), "{}")?;
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, &name(11), "not listed"), "{check}");
    assert!(has_problem(&check, "notes.json", "not listed"), "{check}");
    assert_eq!(check["problems"].as_array().unwrap().len(), 2, "{check}");
    Ok(())
}

#[test]
fn edits_of_the_manifest_are_found() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 10);
    let path = out.join("manifest.json");
    let original = read_json(&path);

    let mut manifest = original.clone();
    manifest["count"] = 9.into();
    write_json(&path, &manifest);
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, "manifest.json", "count"), "{check}");

    let mut manifest = original.clone();
    manifest["files"][2]["sha256"] = "0".repeat(64).into();
    write_json(&path, &manifest);
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, &name(3), "SHA-256"), "{check}");
    assert_eq!(problem_files(&check), vec![name(3)]);

    // A file dropped from a contiguous export together with its listing: the gap is found.
    let mut manifest = original.clone();
    manifest["files"].as_array_mut().unwrap().remove(4);
    manifest["count"] = 9.into();
    write_json(&path, &manifest);
    std::fs::remove_file(out.join(name(5)))?;
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, "manifest.json", "missing"), "{check}");

    // A manifest that is not one.
    std::fs::write(&path, "{\"format\":\"something else\"}")?;
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(has_problem(&check, "manifest.json", "format"), "{check}");
    Ok(())
}

#[test]
fn a_changed_signature_or_a_signed_manifest_changed_is_found() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 5);
    let (key, public, _) = keygen(folder.path(), "key");
    let out = folder.path().join("export");
    assert_eq!(export(&store, &out, &["--sign", arg(&key)]).0, 0);

    let sig_path = out.join("manifest.sig");
    let original = read_json(&sig_path);
    let mut sig = original.clone();
    let text = sig["signature"].as_str().unwrap();
    let flipped = if text.starts_with('0') { "1" } else { "0" };
    sig["signature"] = format!("{flipped}{}", &text[1..]).into();
    write_json(&sig_path, &sig);
    let (code, check) = verify(&out, &["--public-key", arg(&public)]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["signature_valid"], false);
    assert_eq!(check["trusted_key_matched"], true);
    assert_eq!(problem_files(&check), vec!["manifest.sig".to_owned()]);
    write_json(&sig_path, &original);
    assert_eq!(verify(&out, &["--public-key", arg(&public)]).0, 0);

    // A manifest changed after signing, even where no other check looks.
    let manifest_path = out.join("manifest.json");
    let mut manifest = read_json(&manifest_path);
    manifest["created_at"] = "2020-01-01T00:00:00Z".into();
    write_json(&manifest_path, &manifest);
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["signature_valid"], false);
    assert_eq!(problem_files(&check), vec!["manifest.sig".to_owned()]);
    Ok(())
}

#[test]
fn a_signature_by_another_key_is_not_trusted() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 5);
    let (_, trusted, trusted_hex) = keygen(folder.path(), "trusted");
    let (other, _, other_hex) = keygen(folder.path(), "other");
    let out = folder.path().join("export");
    assert_eq!(export(&store, &out, &["--sign", arg(&other)]).0, 0);

    let (code, check) = verify(&out, &["--public-key", arg(&trusted)]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["signature_valid"], true);
    assert_eq!(check["trusted_key_matched"], false);
    assert_eq!(check["signer_public_key"], other_hex.as_str());
    assert!(has_problem(&check, "manifest.sig", &trusted_hex), "{check}");
    Ok(())
}

#[test]
fn a_missing_signature_fails_when_a_trusted_key_is_given() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (_, out) = exported(folder.path(), 5);
    let (_, public, _) = keygen(folder.path(), "key");
    let (code, check) = verify(&out, &["--public-key", arg(&public)]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["signed"], false);
    assert_eq!(check["trusted_key_matched"], false);
    assert!(has_problem(&check, "manifest.sig", "missing"), "{check}");
    Ok(())
}

#[test]
fn damage_in_the_store_is_carried_into_the_export_and_found_there() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 10);
    edit_payload_byte(&store, 4);
    let out = folder.path().join("export");
    let (code, report) = export(&store, &out, &[]);
    assert_eq!(code, 0, "{report}");
    let (code, check) = verify(&out, &[]);
    assert_eq!(code, 1, "{check}");
    assert!(
        has_problem(&check, &name(4), "chain link is broken"),
        "{check}"
    );
    // Only the edited event: the hashes it and its successor record still link.
    assert_eq!(problem_files(&check), vec![name(4)]);
    Ok(())
}

#[test]
fn keygen_writes_a_key_pair_and_never_overwrites_one() -> TestResult {
    let folder = tempfile::tempdir()?;
    let (key, public, hex) = keygen(folder.path(), "key");
    let secret = std::fs::read_to_string(&key)?;
    assert_eq!(secret.len(), 65);
    assert!(secret.ends_with('\n'));
    assert!(secret.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(std::fs::read_to_string(&public)?, format!("{hex}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)?.permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    let (code, error) = run_json(&["keygen", arg(&key)]);
    assert_eq!(code, 2, "{error}");
    assert_eq!(std::fs::read_to_string(&key)?, secret);

    // Nor a public key on its own.
    let lone = folder.path().join("lone");
    std::fs::write(folder.path().join("lone.pub"), "keep me\n")?;
    let (code, _) = run_json(&["keygen", arg(&lone)]);
    assert_eq!(code, 2);
    assert!(!lone.exists());
    assert_eq!(
        std::fs::read_to_string(folder.path().join("lone.pub"))?,
        "keep me\n"
    );
    Ok(())
}

#[test]
fn exports_refuse_a_folder_that_is_not_empty_or_inside_the_store() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 3);
    let full = folder.path().join("full");
    std::fs::create_dir(&full)?;
    std::fs::write(full.join("something"), "x")?;
    let (code, error) = export(&store, &full, &[]);
    assert_eq!(code, 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not empty"),
        "{error}"
    );
    assert_eq!(listing(&full), BTreeSet::from(["something".to_owned()]));

    let inside = store.join("exports").join("today");
    let (code, error) = export(&store, &inside, &[]);
    assert_eq!(code, 2, "{error}");
    assert!(!store.join("exports").exists());
    let sneaky = folder
        .path()
        .join("elsewhere")
        .join("..")
        .join("store")
        .join("x");
    let (code, _) = export(&store, &sneaky, &[]);
    assert_eq!(code, 2);
    assert!(!store.join("x").exists());

    // An empty folder that exists is fine.
    let empty = folder.path().join("empty");
    std::fs::create_dir(&empty)?;
    assert_eq!(export(&store, &empty, &[]).0, 0);
    Ok(())
}

#[test]
fn what_cannot_be_checked_or_used_is_an_error() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "store", 3);

    // verify-export without an export.
    assert_eq!(verify(&folder.path().join("nowhere"), &[]).0, 2);
    let bare = folder.path().join("bare");
    std::fs::create_dir(&bare)?;
    let (code, error) = verify(&bare, &[]);
    assert_eq!(code, 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manifest.json")
    );

    // Keys that are not keys.
    let junk = folder.path().join("junk");
    std::fs::write(&junk, "not a key\n")?;
    let out = folder.path().join("export");
    let (code, error) = export(&store, &out, &["--sign", arg(&junk)]);
    assert_eq!(code, 2, "{error}");
    assert!(!out.exists(), "nothing is written with a bad key");
    let (code, _) = export(
        &store,
        &out,
        &["--sign", arg(&folder.path().join("missing"))],
    );
    assert_eq!(code, 2);
    let (_, public, _) = keygen(folder.path(), "key");
    let (code, error) = export(&store, &out, &["--sign", arg(&public)]);
    assert_eq!(code, 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("public key")
    );

    assert_eq!(export(&store, &out, &[]).0, 0);
    let (code, error) = verify(&out, &["--public-key", arg(&junk)]);
    assert_eq!(code, 2, "{error}");
    Ok(())
}
