//! An export of a store that keeps sealed personal data: each such event file says whose fields
//! are sealed and whether the subject was forgotten, the ciphertext stays in the line, and the
//! export verifies before and after the erasure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use opossum_core::records::Records;
use opossum_core::{EventStore, Metadata, NewEvent, Payload, Timestamp};
use opossum_fs::{FileEventStore, FileKeyStore};
use support::{arg, run};

fn personal_event(student: &str, email: &str) -> NewEvent {
    NewEvent::builder(
        "StudentRegistered",
        Payload::from_json(&format!(r#"{{"id":"{student}","email":"{email}"}}"#)).unwrap(),
    )
    .tag("studentId", student)
    .personal_data(student, ["email"])
    .build()
    .unwrap()
}

fn note(export: &std::path::Path, position: u64) -> serde_json::Value {
    let text = std::fs::read_to_string(export.join(format!("{position:020}.json"))).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["personal"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_mark_sealed_and_erased_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let store = FileEventStore::open(&dir).unwrap();
        let records = Records::new(store).with_key_store(Arc::new(FileKeyStore::for_store(&dir)));
        records
            .append(vec![personal_event("s-1", "ada@example.org")], None)
            .await
            .unwrap();
        records
            .append(vec![personal_event("s-2", "bo@example.org")], None)
            .await
            .unwrap();
        let before = tmp.path().join("before");
        let output = run(&["export", arg(&dir), arg(&before)]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(note(&before, 1)["state"], "sealed");
        assert_eq!(note(&before, 1)["subject"], "s-1");
        assert_eq!(note(&before, 1)["fields"][0], "email");
        let mut by = Metadata::at(Timestamp::now());
        by.user_id = Some("dpo".into());
        records
            .forget("s-1", "erasure request 17", by)
            .await
            .unwrap();
        records.into_inner().close().unwrap();
    }
    let after = tmp.path().join("after");
    let output = run(&["export", arg(&dir), arg(&after)]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(note(&after, 1)["state"], "erased");
    assert_eq!(note(&after, 2)["state"], "sealed");
    // The forget event itself holds no personal data.
    assert!(note(&after, 3).is_null());
    for position in 1..=3u64 {
        let text = std::fs::read_to_string(after.join(format!("{position:020}.json"))).unwrap();
        assert!(
            !text.contains("example.org"),
            "plain text in event {position}"
        );
    }
    let verified = run(&["verify-export", arg(&after)]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    let intact = run(&["verify", arg(&dir)]);
    assert_eq!(intact.status.code(), Some(0), "{intact:?}");
}
