//! The export format, pinned by snapshots: an event file byte for byte, and the manifest's
//! fields (with the values that differ from run to run replaced).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestResult, arg, run, seeded_store};

#[test]
fn an_event_file_and_the_manifest_have_a_fixed_shape() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 3);
    let out = tmp.path().join("export");
    let output = run(&["export", arg(&dir), arg(&out), "--tag", "group=2"]);
    assert_eq!(output.status.code(), Some(0));

    // Event 2's line is fixed by the seeded store (fixed timestamps) but for the store's
    // commit time, which changes the hashes too: those are replaced, everything else is
    // pinned byte for byte.
    let event = std::fs::read_to_string(out.join("00000000000000000002.json"))?;
    let filters = vec![
        (
            r#"stored_at(\\?)":(\s?)(\\?)"[0-9TZ:.-]+(\\?)""#,
            r#"stored_at$1":$2$3"<commit time>$4""#,
        ),
        (r"[0-9a-f]{64}", "<hash>"),
    ];
    insta::with_settings!({ filters => filters.clone() }, {
        insta::assert_snapshot!("event_file", event);
    });

    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json"))?)?;
    for (field, value) in [("path", "<store path>"), ("identity", "<store identity>")] {
        manifest["store"][field] = value.into();
    }
    manifest["created_at"] = "<time of export>".into();
    insta::with_settings!({ filters => filters }, {
        insta::assert_json_snapshot!("manifest", manifest);
    });
    Ok(())
}
