//! Records kept for years, on the file store: upcasting (versions and renames) through every
//! read path, renames widening append conditions, required metadata and the store's commit
//! time, and crypto-shredding with the folder key store (`keys/`), including a key cached by
//! another handle when the subject is forgotten.
//!
//! Every test works on a fresh temporary folder. The stored bytes are compared before and after
//! reads, and the whole store folder is searched for plaintext personal data and for the bytes
//! of destroyed keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::StreamExt;
use opossum_core::records::{
    Forgotten, KeyStore, Records, SUBJECT_TAG, SubjectForgotten, forgotten_query,
};
use opossum_core::{
    AppendCondition, DomainEvent, Error, EventStore, Metadata, NewEvent, Payload, Position, Query,
    QueryItem, ReadOptions, RequiredMetadata, SequencedEvent, Tag, Timestamp, Upcasters,
};
use opossum_fs::{FileEventStore, FileKeyStore, StoreOptions, verify_folder};
use opossum_testkit::streams::{next_event, take_events};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Event types.

/// Version 1 of `StudentRegistered`: one name field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegisteredV1 {
    id: String,
    name: String,
}
impl DomainEvent for RegisteredV1 {
    const EVENT_TYPE: &'static str = "StudentRegistered";
}

/// Version 3 of `StudentRegistered`: version 2 split the name into `first_name` and
/// `last_name`, version 3 renamed those to `given_name` and `family_name` and added `email`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegisteredV3 {
    id: String,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
}
impl DomainEvent for RegisteredV3 {
    const EVENT_TYPE: &'static str = "StudentRegistered";
    const VERSION: u32 = 3;
}

/// The step from version 1 to 2: `name` → `first_name` + `last_name`.
fn step_1_to_2(mut v: Value) -> Result<Value, String> {
    let object = v.as_object_mut().ok_or("not an object")?;
    if let Some(name) = object.remove("name") {
        let name = name.as_str().ok_or("the name is not text")?.to_owned();
        let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
        object.insert("first_name".into(), json!(first));
        object.insert("last_name".into(), json!(last));
    }
    Ok(v)
}

/// The step from version 2 to 3: `first_name` → `given_name`, `last_name` → `family_name`,
/// `email` added.
fn step_2_to_3(mut v: Value) -> Result<Value, String> {
    let object = v.as_object_mut().ok_or("not an object")?;
    if let Some(first) = object.remove("first_name") {
        object.insert("given_name".into(), first);
    }
    if let Some(last) = object.remove("last_name") {
        object.insert("family_name".into(), last);
    }
    object.entry("email").or_insert(Value::Null);
    Ok(v)
}

/// Both steps, and the early name of the event.
fn upcasters() -> Upcasters {
    Upcasters::new()
        .rename("StudentSignedUp", "StudentRegistered")
        .unwrap()
        .upcast("StudentRegistered", 1, step_1_to_2)
        .unwrap()
        .upcast("StudentRegistered", 2, step_2_to_3)
        .unwrap()
}

fn v3(id: &str, given: &str, family: &str) -> RegisteredV3 {
    RegisteredV3 {
        id: id.into(),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        email: None,
    }
}

/// An applicant's registration: `name` and `email` are personal data of the applicant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ApplicantRegistered {
    id: String,
    course: String,
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

/// The same event read by code that cannot do without the personal fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ApplicantRegisteredStrict {
    id: String,
    course: String,
    name: String,
    email: String,
}
impl DomainEvent for ApplicantRegisteredStrict {
    const EVENT_TYPE: &'static str = "ApplicantRegistered";
    const PERSONAL_FIELDS: &'static [&'static str] = &["name", "email"];
    fn data_subject(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

fn applicant(id: &str, course: &str, name: &str, email: &str) -> ApplicantRegistered {
    ApplicantRegistered {
        id: id.into(),
        course: course.into(),
        name: Some(name.into()),
        email: Some(email.into()),
    }
}

fn applicant_event(a: &ApplicantRegistered) -> NewEvent {
    NewEvent::from_typed(a)
        .tag("applicantId", a.id.as_str())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("records")
}

fn students() -> Query {
    Query::from_event_types(["StudentRegistered"]).unwrap()
}

fn applicants() -> Query {
    Query::from_event_types([ApplicantRegistered::EVENT_TYPE]).unwrap()
}

fn pos(n: u64) -> Position {
    Position::new(n).unwrap()
}

fn key_store(path: &Path) -> Arc<dyn KeyStore> {
    Arc::new(FileKeyStore::for_store(path))
}

/// Every regular file under `dir` (recursively), with its bytes.
fn folder_bytes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(folder_bytes(&path));
        } else {
            out.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
    out
}

/// A segment file's lines, without the zeros the writer reserves past them.
fn written(segment: &[u8]) -> &[u8] {
    let end = segment.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &segment[..end]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files under `dir` that hold `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    folder_bytes(dir)
        .into_iter()
        .filter(|(_, bytes)| contains(bytes, needle))
        .map(|(path, _)| path)
        .collect()
}

fn metadata_by(user: &str) -> Metadata {
    let mut m = Metadata::at(Timestamp::now());
    m.user_id = Some(user.into());
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a key file holds: its JSON `key`, 64 hex digits, as bytes.
fn key_in_file(path: &Path, subject: &str) -> [u8; 32] {
    let text = fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(json["subject"], subject, "{text}");
    let hex_key = json["key"].as_str().expect("a live key file has a key");
    assert_eq!(hex_key.len(), 64, "{text}");
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex_key[2 * i..2 * i + 2], 16).unwrap();
    }
    assert_eq!(hex(&key), hex_key);
    key
}

/// The key file of a forgotten subject: a tombstone naming the subject, without a key.
fn assert_tombstone(path: &Path, subject: &str) {
    let text = fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(json["subject"], subject, "{text}");
    assert!(json.get("key").is_none(), "a key is left: {text}");
    assert!(json["destroyed"].is_string(), "not a tombstone: {text}");
}

fn assert_intact(path: &Path, events: u64) {
    let report = verify_folder(path).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, events, "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// Upcasting.

/// The old events: two version-1 registrations (one typed, one built with `.version(1)`), one
/// under the early name, and an unrelated event.
async fn store_old_events(store: &FileEventStore) {
    let typed = NewEvent::from_typed(&RegisteredV1 {
        id: "s-1".into(),
        name: "Ada Lovelace".into(),
    })
    .tag("studentId", "s-1")
    .build()
    .unwrap();
    assert_eq!(typed.version(), 1);
    let built = NewEvent::builder(
        "StudentRegistered",
        Payload::from_json(r#"{"id":"s-2","name":"Grace Hopper"}"#).unwrap(),
    )
    .version(1)
    .tag("studentId", "s-2")
    .build()
    .unwrap();
    let old_name = NewEvent::builder(
        "StudentSignedUp",
        Payload::from_json(r#"{"id":"s-0","name":"Old Timer"}"#).unwrap(),
    )
    .tag("studentId", "s-0")
    .build()
    .unwrap();
    let unrelated = NewEvent::builder(
        "CourseCreated",
        Payload::from_json(r#"{"id":"c-1"}"#).unwrap(),
    )
    .tag("courseId", "c-1")
    .build()
    .unwrap();
    assert_eq!(
        store.append(vec![typed, built], None).await.unwrap(),
        pos(2)
    );
    assert_eq!(store.append(vec![old_name], None).await.unwrap(), pos(3));
    assert_eq!(store.append(vec![unrelated], None).await.unwrap(), pos(4));
}

fn expected_students() -> Vec<(u64, RegisteredV3)> {
    vec![
        (1, v3("s-1", "Ada", "Lovelace")),
        (2, v3("s-2", "Grace", "Hopper")),
        (3, v3("s-0", "Old", "Timer")),
    ]
}

fn assert_current(events: &[SequencedEvent], expected: &[(u64, RegisteredV3)]) {
    let found: Vec<(u64, RegisteredV3)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event.event_type().as_str(), "StudentRegistered");
            assert_eq!(e.event.version(), 3, "at {}", e.position);
            (e.position.get(), e.decode::<RegisteredV3>().unwrap())
        })
        .collect();
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_path_sees_version_3_and_the_stored_lines_stay_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Arc::new(FileEventStore::open(&path).unwrap());
    store_old_events(&store).await;
    let raw_before = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    let bytes_before = folder_bytes(&path.join("events"));
    assert!(!bytes_before.is_empty());

    let records = Records::new(Arc::clone(&store)).with_upcasters(upcasters());

    // read: the old name is found by a query for the new one, and every event is version 3.
    let read = records.read(&students(), ReadOptions::new()).await.unwrap();
    assert_current(&read, &expected_students());
    // A narrower query by tag finds the renamed event too.
    let old_one = Query::from_items([QueryItem::of_types(["StudentRegistered"])
        .unwrap()
        .with_tag(Tag::new("studentId", "s-0").unwrap())])
    .unwrap();
    let read_old = records.read(&old_one, ReadOptions::new()).await.unwrap();
    assert_current(&read_old, &expected_students()[2..]);
    // Descending and limited reads go through the same path.
    let newest = records
        .read(&students(), ReadOptions::new().descending().limit(1))
        .await
        .unwrap();
    assert_current(&newest, &expected_students()[2..]);

    // read_last: the last match is the event stored under the old name.
    let last = records.read_last(&students()).await.unwrap().unwrap();
    assert_current(std::slice::from_ref(&last), &expected_students()[2..]);

    // read_stream.
    let streamed: Vec<SequencedEvent> = records
        .read_stream(&students(), ReadOptions::new())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(streamed, read);

    // Everything else reads as stored.
    let all = records
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], raw_before[3]);

    // subscribe: the stored events, then a version-1 event appended while it waits.
    {
        let mut live = records.subscribe(&students(), None);
        let stored = take_events(&mut live, 3, "the stored students").await;
        assert_eq!(stored, read);
        let late = NewEvent::from_typed(&RegisteredV1 {
            id: "s-3".into(),
            name: "Mary Somerville".into(),
        })
        .tag("studentId", "s-3")
        .build()
        .unwrap();
        // Appended through the plain store, as an old release would.
        let (appended, next) = tokio::join!(
            store.append(vec![late], None),
            next_event(&mut live, "the live student")
        );
        assert_eq!(appended.unwrap(), pos(5));
        assert_current(&[next], &[(5, v3("s-3", "Mary", "Somerville"))]);
    }
    {
        // A subscription from a position, after the old-name event.
        let mut live = records.subscribe(&students(), Some(pos(2)));
        let from_2 = take_events(&mut live, 2, "the students after 2").await;
        assert_current(
            &from_2,
            &[
                (3, v3("s-0", "Old", "Timer")),
                (5, v3("s-3", "Mary", "Somerville")),
            ],
        );
    }

    // A current-version event through Records is stored and read as it is.
    let current = v3("s-4", "Emmy", "Noether");
    let current_event = NewEvent::from_typed(&current)
        .tag("studentId", "s-4")
        .build()
        .unwrap();
    assert_eq!(
        records.append(vec![current_event], None).await.unwrap(),
        pos(6)
    );
    let stored_current = store.read_last(&students()).await.unwrap().unwrap();
    assert_eq!(stored_current.event.version(), 3);
    assert_eq!(
        records
            .read_last(&students())
            .await
            .unwrap()
            .unwrap()
            .decode::<RegisteredV3>()
            .unwrap(),
        current
    );

    // The stored lines of the first four events are unchanged, byte for byte, and the plain
    // store still reads them as stored: version 1, the old name, the old payload text.
    let bytes_after = folder_bytes(&path.join("events"));
    for (file, before) in &bytes_before {
        let after = &bytes_after[file];
        assert!(
            after.starts_with(written(before)),
            "{} was rewritten, not only appended to",
            file.display()
        );
    }
    let raw_after = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(raw_after[..4], raw_before[..]);
    assert_eq!(raw_after[2].event.event_type().as_str(), "StudentSignedUp");
    assert_eq!(raw_after[2].event.version(), 1);
    assert_eq!(
        raw_after[0].event.payload().as_json(),
        r#"{"id":"s-1","name":"Ada Lovelace"}"#
    );
    assert_intact(&path, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_change_no_stored_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Arc::new(FileEventStore::open(&path).unwrap());
    store_old_events(&store).await;
    let before = folder_bytes(&path.join("events"));
    let records = Records::new(Arc::clone(&store)).with_upcasters(upcasters());
    for _ in 0..2 {
        let read = records.read(&students(), ReadOptions::new()).await.unwrap();
        assert_current(&read, &expected_students());
        records.read_last(&students()).await.unwrap().unwrap();
        let streamed: Vec<_> = records
            .read_stream(&Query::all(), ReadOptions::new())
            .collect()
            .await;
        assert_eq!(streamed.len(), 4);
        let mut live = records.subscribe_all(None);
        take_events(&mut live, 4, "every event").await;
    }
    assert_eq!(folder_bytes(&path.join("events")), before);
    assert_intact(&path, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_step_is_an_event_version_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Arc::new(FileEventStore::open(&path).unwrap());
    store_old_events(&store).await;
    let only_second = Upcasters::new()
        .rename("StudentSignedUp", "StudentRegistered")
        .unwrap()
        .upcast("StudentRegistered", 2, step_2_to_3)
        .unwrap();
    let records = Records::new(Arc::clone(&store)).with_upcasters(only_second);
    let read = records.read(&students(), ReadOptions::new()).await.unwrap();
    assert_eq!(read.len(), 3);
    for event in &read {
        // The renamed one is renamed, but no event gets past version 1.
        assert_eq!(event.event.event_type().as_str(), "StudentRegistered");
        assert_eq!(event.event.version(), 1);
        match event.decode::<RegisteredV3>() {
            Err(Error::EventVersion {
                event_type,
                found: 1,
                expected: 3,
                position,
            }) => {
                assert_eq!(event_type, "StudentRegistered");
                assert_eq!(position, event.position);
            }
            other => panic!(
                "at {}: expected EventVersion 1 → 3, got {other:?}",
                event.position
            ),
        }
    }
    // Without any upcaster the stored event is refused the same way.
    let raw = store.read_last(&students()).await.unwrap().unwrap();
    assert!(matches!(
        raw.decode::<RegisteredV3>(),
        Err(Error::EventVersion {
            found: 1,
            expected: 3,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_on_the_new_name_conflicts_with_an_event_under_the_old_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Arc::new(FileEventStore::open(&path).unwrap());
    let old_name = NewEvent::builder(
        "StudentSignedUp",
        Payload::from_json(r#"{"id":"s-0","name":"Old Timer"}"#).unwrap(),
    )
    .tag("studentId", "s-0")
    .build()
    .unwrap();
    assert_eq!(store.append(vec![old_name], None).await.unwrap(), pos(1));

    let unrelated = || {
        NewEvent::builder("Noted", Payload::from_json("{}").unwrap())
            .build()
            .unwrap()
    };
    let registration = |id: &str| {
        NewEvent::from_typed(&v3(id, "New", "Student"))
            .tag("studentId", id)
            .build()
            .unwrap()
    };
    let none_registered = AppendCondition::new(students()).after(None);

    // Control: the plain store knows nothing of the rename, so the condition holds there.
    assert_eq!(
        store
            .append(vec![unrelated()], Some(none_registered.clone()))
            .await
            .unwrap(),
        pos(2)
    );

    let records = Records::new(Arc::clone(&store)).with_upcasters(upcasters());
    let failed = records
        .append(vec![registration("s-9")], Some(none_registered.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(failed, Error::ConditionFailed { after: None }),
        "{failed:?}"
    );
    assert_eq!(store.head().await.unwrap(), Some(pos(2)));

    // With a tag: the old event's student conflicts, another student does not.
    let of_student = |id: &str| {
        AppendCondition::new(
            Query::from_items([QueryItem::of_types(["StudentRegistered"])
                .unwrap()
                .with_tag(Tag::new("studentId", id).unwrap())])
            .unwrap(),
        )
    };
    let failed = records
        .append(vec![registration("s-0")], Some(of_student("s-0")))
        .await
        .unwrap_err();
    assert!(failed.is_condition_failed(), "{failed:?}");
    assert_eq!(store.head().await.unwrap(), Some(pos(2)));
    assert_eq!(
        records
            .append(vec![registration("s-9")], Some(of_student("s-9")))
            .await
            .unwrap(),
        pos(3)
    );

    // After the old event's position, the condition holds.
    let failed = records
        .append(vec![registration("s-8")], Some(none_registered))
        .await
        .unwrap_err();
    assert!(failed.is_condition_failed());
    assert_eq!(
        records
            .append(
                vec![registration("s-8")],
                Some(AppendCondition::new(students()).after(Some(pos(3))))
            )
            .await
            .unwrap(),
        pos(4)
    );
    assert_intact(&path, 4);
}

// ---------------------------------------------------------------------------------------------
// Required metadata and the commit time.

fn required_options() -> StoreOptions {
    StoreOptions::new().require_metadata(RequiredMetadata::new(["user_id", "reason"]).unwrap())
}

fn deviation() -> opossum_core::EventBuilder {
    NewEvent::builder(
        "DeviationRecorded",
        Payload::from_json(r#"{"sensor":"T-4","value":9.5}"#).unwrap(),
    )
    .tag("sensor", "T-4")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_metadata_is_enforced_and_free_fields_and_stored_at_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = FileEventStore::open_with(&path, required_options()).unwrap();
    assert_eq!(
        store.options().get_required_metadata().names(),
        ["user_id", "reason"]
    );

    // A first signed event, so that the log exists.
    let signed = deviation()
        .user_id("qa-lead")
        .field("reason", "first reading")
        .build()
        .unwrap();
    assert_eq!(store.append(vec![signed], None).await.unwrap(), pos(1));
    let events_before = folder_bytes(&path.join("events"));
    let head_before = store.head().await.unwrap();

    // No reason.
    let no_reason = deviation()
        .user_id("qa-lead")
        .field("host", "PC-7")
        .build()
        .unwrap();
    match store.append(vec![no_reason], None).await {
        Err(Error::MissingMetadata {
            index: 0,
            event_type,
            field,
        }) => {
            assert_eq!(event_type, "DeviationRecorded");
            assert_eq!(field, "reason");
        }
        other => panic!("expected MissingMetadata for reason, got {other:?}"),
    }
    // An empty reason is no reason.
    let empty_reason = deviation()
        .user_id("qa-lead")
        .field("reason", "")
        .build()
        .unwrap();
    assert!(matches!(
        store.append(vec![empty_reason], None).await,
        Err(Error::MissingMetadata { ref field, .. }) if field == "reason"
    ));
    // The second event of a batch lacks the user: nothing of the batch is written.
    let good = deviation()
        .user_id("qa-lead")
        .field("reason", "ok")
        .build()
        .unwrap();
    let anonymous = deviation().field("reason", "ok").build().unwrap();
    assert!(matches!(
        store.append(vec![good, anonymous], None).await,
        Err(Error::MissingMetadata { index: 1, ref field, .. }) if field == "user_id"
    ));
    // The blocking path refuses the same way.
    let blocking_store = Arc::new(store);
    let for_blocking = Arc::clone(&blocking_store);
    let blocked = tokio::task::spawn_blocking(move || {
        for_blocking.append_blocking(vec![deviation().user_id("u").build().unwrap()], None)
    })
    .await
    .unwrap();
    assert!(
        matches!(blocked, Err(Error::MissingMetadata { .. })),
        "{blocked:?}"
    );
    let store = blocking_store;

    assert_eq!(store.head().await.unwrap(), head_before);
    assert_eq!(folder_bytes(&path.join("events")), events_before);

    // Both: accepted, with the free fields and the commit time.
    let complete = deviation()
        .user_id("qa-lead")
        .correlation_id("req-17")
        .field("reason", "temperature above limit")
        .field("host", "PC-7")
        .build()
        .unwrap();
    let sent_fields = complete.metadata().fields.clone();
    let sent_timestamp = complete.metadata().timestamp;
    let before = Timestamp::now();
    let at = store.append(vec![complete], None).await.unwrap();
    let after = Timestamp::now();
    assert_eq!(at, pos(2));

    let expected_fields: BTreeMap<String, String> = [
        ("host".to_owned(), "PC-7".to_owned()),
        ("reason".to_owned(), "temperature above limit".to_owned()),
    ]
    .into();
    assert_eq!(sent_fields, expected_fields);
    let check = |event: &SequencedEvent| {
        assert_eq!(event.position, at);
        let m = event.event.metadata();
        assert_eq!(m.fields, expected_fields);
        assert_eq!(m.user_id.as_deref(), Some("qa-lead"));
        assert_eq!(m.correlation_id.as_deref(), Some("req-17"));
        assert_eq!(m.get("reason"), Some("temperature above limit"));
        assert_eq!(m.timestamp, sent_timestamp);
        let stored_at = event.stored_at.expect("the store records its commit time");
        assert!(
            before <= stored_at && stored_at <= after,
            "stored_at {stored_at} outside [{before}, {after}]"
        );
    };
    check(&store.read_last(&Query::all()).await.unwrap().unwrap());
    let first = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert!(first[0].stored_at.is_some());
    assert!(first[0].stored_at <= first[1].stored_at);

    // From disk, after a reopen.
    let store = Arc::into_inner(store).unwrap();
    store.close().unwrap();
    let reopened = FileEventStore::open_with(&path, required_options()).unwrap();
    check(&reopened.read_last(&Query::all()).await.unwrap().unwrap());
    reopened.close().unwrap();
    assert_intact(&path, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_on_a_store_that_requires_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = FileEventStore::open_with(&path, required_options()).unwrap();
    let records = Records::new(store).with_key_store(key_store(&path));
    let ada = applicant("s-1", "rust-101", "Ada Lovelace", "ada@example.org");
    let event = NewEvent::from_typed(&ada)
        .user_id("registrar")
        .field("reason", "application form")
        .build()
        .unwrap();
    records.append(vec![event], None).await.unwrap();

    // Without a user, forget is refused by the store, and the key stays.
    let refused = records
        .forget("s-1", "request 17", Metadata::at(Timestamp::now()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::MissingMetadata { ref field, .. } if field == "user_id"),
        "{refused:?}"
    );
    let keys = FileKeyStore::for_store(&path);
    assert!(keys.get("s-1").await.unwrap().is_some());
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    assert!(!read[0].is_erased());

    // With a user: the reason is added to the fields, so the store accepts it.
    let forgotten = records
        .forget("s-1", "request 17", metadata_by("dpo"))
        .await
        .unwrap();
    assert!(!forgotten.already);
    let event = records
        .read_last(&forgotten_query("s-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.event.metadata().get("reason"), Some("request 17"));
    assert!(keys.get("s-1").await.unwrap().is_none());
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    assert!(read[0].is_erased());
}

// ---------------------------------------------------------------------------------------------
// Crypto-shredding.

const ADA_NAME: &str = "Ada Lovelace";
const ADA_EMAIL: &str = "ada.lovelace@example.org";
const ADA_NEW_EMAIL: &str = "countess@analytical.example";
const GRACE_NAME: &str = "Grace Hopper";
const GRACE_EMAIL: &str = "grace@navy.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_sealed_and_forgetting_destroys_every_copy_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Arc::new(FileEventStore::open(&path).unwrap());
    let records = Records::new(Arc::clone(&store)).with_key_store(key_store(&path));

    let ada = applicant("s-1", "rust-101", ADA_NAME, ADA_EMAIL);
    let ada_again = applicant("s-1", "math-201", ADA_NAME, ADA_EMAIL);
    let grace = applicant("s-2", "rust-101", GRACE_NAME, GRACE_EMAIL);
    records
        .append(vec![applicant_event(&ada), applicant_event(&grace)], None)
        .await
        .unwrap();
    records
        .append(vec![applicant_event(&ada_again)], None)
        .await
        .unwrap();
    // An untyped event with one personal field.
    let moved = NewEvent::builder(
        "ApplicantEmailChanged",
        Payload::from_value(&json!({"id": "s-1", "email": ADA_NEW_EMAIL})).unwrap(),
    )
    .tag("applicantId", "s-1")
    .personal_data("s-1", ["email"])
    .build()
    .unwrap();
    assert_eq!(records.append(vec![moved], None).await.unwrap(), pos(4));

    // Reads through Records give the plaintext.
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    let decoded: Vec<ApplicantRegistered> = read
        .iter()
        .map(|e| e.decode::<ApplicantRegistered>().unwrap())
        .collect();
    assert_eq!(decoded, [ada.clone(), grace.clone(), ada_again.clone()]);
    assert!(read.iter().all(|e| !e.is_erased()));
    let changed = records
        .read_last(&Query::from_event_types(["ApplicantEmailChanged"]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        changed.event.payload().as_json(),
        json!({"id": "s-1", "email": ADA_NEW_EMAIL}).to_string()
    );

    // The store itself holds ciphertext only.
    let raw = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(raw.len(), 4);
    for event in &raw {
        let json = event.event.payload().as_json();
        for secret in [ADA_NAME, ADA_EMAIL, ADA_NEW_EMAIL, GRACE_NAME, GRACE_EMAIL] {
            assert!(
                !json.contains(secret),
                "{secret} stored in the clear: {json}"
            );
        }
        assert!(event.event.is_sealed(), "at {}", event.position);
        let personal = event.event.personal_data().unwrap();
        assert!(!personal.erased);
        let payload: Value = serde_json::from_str(json).unwrap();
        assert_eq!(payload["id"], personal.subject.as_str());
        for field in &personal.fields {
            assert!(
                payload[field].is_string(),
                "{field} is not sealed text: {json}"
            );
        }
    }
    assert_eq!(
        raw[0].event.personal_data().unwrap().fields,
        ["name", "email"]
    );
    assert_eq!(raw[3].event.personal_data().unwrap().fields, ["email"]);
    let sealed_ada: Value = serde_json::from_str(raw[0].event.payload().as_json()).unwrap();
    assert_eq!(
        sealed_ada["course"], "rust-101",
        "non-personal fields stay readable"
    );

    // No file of the store holds the plaintext (what is not personal is found, in the log).
    assert!(!files_containing(&path.join("events"), b"math-201").is_empty());
    // No file of the store holds the plaintext.
    for secret in [
        ADA_NAME,
        ADA_EMAIL,
        ADA_NEW_EMAIL,
        GRACE_NAME,
        GRACE_EMAIL,
        "Lovelace",
    ] {
        let found = files_containing(&path, secret.as_bytes());
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }

    // The key, as the key file holds it.
    let keys = FileKeyStore::for_store(&path);
    let key_file = keys.key_path("s-1");
    assert!(key_file.starts_with(path.join("keys")));
    let key = key_in_file(&key_file, "s-1");
    let key_hex = hex(&key);
    assert_eq!(
        keys.get("s-1").await.unwrap().unwrap().as_bytes(),
        &key,
        "the file's key is the store's key"
    );
    let grace_key = key_in_file(&keys.key_path("s-2"), "s-2");
    assert_ne!(key, grace_key);
    assert_eq!(
        files_containing(&path, key_hex.as_bytes()),
        std::slice::from_ref(&key_file)
    );

    // Forget.
    let before_forget = store.head().await.unwrap().unwrap();
    let forgotten = records
        .forget("s-1", "request 17", metadata_by("dpo-1"))
        .await
        .unwrap();
    assert_eq!(
        forgotten,
        Forgotten {
            position: pos(before_forget.get() + 1),
            already: false,
            key_destroyed: true,
        }
    );

    // Ada's events read erased; what is not personal is intact; Grace is untouched.
    let read = records
        .read(&applicants(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    for event in &read {
        let decoded = event.decode::<ApplicantRegistered>().unwrap();
        if decoded.id == "s-1" {
            assert!(event.is_erased(), "at {}", event.position);
            assert_eq!((decoded.name, decoded.email), (None, None));
            let payload: Value = serde_json::from_str(event.event.payload().as_json()).unwrap();
            assert!(payload.get("name").is_none() && payload.get("email").is_none());
            match event.decode::<ApplicantRegisteredStrict>() {
                Err(Error::Erased {
                    subject,
                    fields,
                    position,
                    event_type,
                    ..
                }) => {
                    assert_eq!(subject, "s-1");
                    assert_eq!(fields, ["name", "email"]);
                    assert_eq!(position, event.position);
                    assert_eq!(event_type, "ApplicantRegistered");
                }
                other => panic!("expected Erased, got {other:?}"),
            }
        } else {
            assert!(!event.is_erased());
            assert_eq!(decoded, grace);
            assert_eq!(
                event.decode::<ApplicantRegisteredStrict>().unwrap().email,
                GRACE_EMAIL
            );
        }
    }
    let courses: Vec<(String, String)> = read
        .iter()
        .map(|e| {
            let d = e.decode::<ApplicantRegistered>().unwrap();
            (d.id, d.course)
        })
        .collect();
    assert_eq!(
        courses,
        [
            ("s-1".to_owned(), "rust-101".to_owned()),
            ("s-2".to_owned(), "rust-101".to_owned()),
            ("s-1".to_owned(), "math-201".to_owned()),
        ]
    );
    let changed = records
        .read_last(&Query::from_event_types(["ApplicantEmailChanged"]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(changed.is_erased());
    assert_eq!(changed.event.payload().as_json(), r#"{"id":"s-1"}"#);

    // The record of the erasure: who, why, when.
    let records_of_forgetting = records
        .read(&forgotten_query("s-1").unwrap(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(records_of_forgetting.len(), 1);
    let record = &records_of_forgetting[0];
    assert_eq!(record.position, forgotten.position);
    assert_eq!(
        record.decode::<SubjectForgotten>().unwrap(),
        SubjectForgotten {
            subject: "s-1".into(),
            reason: "request 17".into(),
        }
    );
    assert_eq!(record.event.tag_value(SUBJECT_TAG), Some("s-1"));
    assert_eq!(record.event.metadata().user_id.as_deref(), Some("dpo-1"));
    assert_eq!(
        record
            .event
            .metadata()
            .fields
            .get("reason")
            .map(String::as_str),
        Some("request 17")
    );
    assert!(record.stored_at.is_some());
    assert!(record.event.personal_data().is_none());

    assert_intact(&path, forgotten.position.get());

    // The key is gone from every file: neither its bytes nor their hex form remain.
    assert_tombstone(&key_file, "s-1");
    assert!(files_containing(&path, &key).is_empty());
    assert!(files_containing(&path, key_hex.as_bytes()).is_empty());
    assert!(files_containing(&path, key_hex.to_uppercase().as_bytes()).is_empty());
    assert!(keys.get("s-1").await.unwrap().is_none());
    // The key store never creates the subject's key again.
    assert!(matches!(
        keys.get_or_create("s-1").await,
        Err(Error::SubjectForgotten { ref subject }) if subject == "s-1"
    ));
    assert_tombstone(&key_file, "s-1");
    // Grace's key is untouched.
    assert_eq!(key_in_file(&keys.key_path("s-2"), "s-2"), grace_key);

    // Forgetting again: the first event, nothing new.
    let head = store.head().await.unwrap();
    let again = records
        .forget("s-1", "duplicate request", metadata_by("dpo-2"))
        .await
        .unwrap();
    assert_eq!(
        again,
        Forgotten {
            position: forgotten.position,
            already: true,
            key_destroyed: false,
        }
    );
    assert_eq!(store.head().await.unwrap(), head);

    // New personal data of the forgotten subject is refused, by this Records and by a new one.
    let late = applicant("s-1", "art-301", ADA_NAME, ADA_EMAIL);
    assert!(matches!(
        records.append(vec![applicant_event(&late)], None).await,
        Err(Error::SubjectForgotten { ref subject }) if subject == "s-1"
    ));
    let fresh = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    assert!(matches!(
        fresh.append(vec![applicant_event(&late)], None).await,
        Err(Error::SubjectForgotten { ref subject }) if subject == "s-1"
    ));
    assert!(fresh.is_forgotten("s-1").await.unwrap());
    assert!(!fresh.is_forgotten("s-2").await.unwrap());
    assert_eq!(store.head().await.unwrap(), head);
    // Data about the subject without personal fields is still fine.
    let anonymous = NewEvent::builder(
        "ApplicantWithdrew",
        Payload::from_json(r#"{"id":"s-1"}"#).unwrap(),
    )
    .tag("applicantId", "s-1")
    .build()
    .unwrap();
    records.append(vec![anonymous], None).await.unwrap();

    // Grace stays readable, through both, and new subjects work.
    let fresh_read = fresh.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert_eq!(fresh_read, read);
    let hedy = applicant("s-3", "radio-101", "Hedy Lamarr", "hedy@example.org");
    fresh
        .append(vec![applicant_event(&hedy)], None)
        .await
        .unwrap();
    let last = records.read_last(&applicants()).await.unwrap().unwrap();
    assert_eq!(last.decode::<ApplicantRegistered>().unwrap(), hedy);

    // Closed (the index snapshot written): still no plaintext of Ada, and no copy of her key.
    drop(fresh);
    drop(records);
    Arc::into_inner(store).unwrap().close().unwrap();
    assert!(path.join("index").exists());
    for secret in [
        ADA_NAME.as_bytes(),
        ADA_EMAIL.as_bytes(),
        ADA_NEW_EMAIL.as_bytes(),
        &key,
        key_hex.as_bytes(),
        b"Hedy Lamarr",
    ] {
        let found = files_containing(&path, secret);
        assert!(
            found.is_empty(),
            "{:?} found in {found:?}",
            String::from_utf8_lossy(secret)
        );
    }
    assert_intact(&path, head.unwrap().get() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_store_refuses_personal_data_that_was_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = FileEventStore::open(&path).unwrap();
    let ada = applicant("s-1", "rust-101", ADA_NAME, ADA_EMAIL);
    match store.append(vec![applicant_event(&ada)], None).await {
        Err(Error::UnsealedPersonalData {
            index: 0,
            event_type,
            subject,
        }) => {
            assert_eq!(event_type, "ApplicantRegistered");
            assert_eq!(subject, "s-1");
        }
        other => panic!("expected UnsealedPersonalData, got {other:?}"),
    }
    let marked = NewEvent::builder(
        "ApplicantEmailChanged",
        Payload::from_value(&json!({"id": "s-1", "email": ADA_EMAIL})).unwrap(),
    )
    .personal_data("s-1", ["email"])
    .build()
    .unwrap();
    let plain = NewEvent::builder("Noted", Payload::from_json("{}").unwrap())
        .build()
        .unwrap();
    assert!(matches!(
        store
            .append(vec![plain.clone(), marked.clone()], None)
            .await,
        Err(Error::UnsealedPersonalData { index: 1, .. })
    ));
    // The blocking path too.
    let store = Arc::new(store);
    let for_blocking = Arc::clone(&store);
    let ada_event = applicant_event(&ada);
    let blocked =
        tokio::task::spawn_blocking(move || for_blocking.append_blocking(vec![ada_event], None))
            .await
            .unwrap();
    assert!(
        matches!(blocked, Err(Error::UnsealedPersonalData { .. })),
        "{blocked:?}"
    );
    assert_eq!(store.head().await.unwrap(), None);
    for secret in [ADA_NAME, ADA_EMAIL] {
        assert!(files_containing(&path, secret.as_bytes()).is_empty());
    }

    // Records without a key store refuses it too.
    let no_keys = Records::new(Arc::clone(&store));
    assert!(matches!(
        no_keys.append(vec![marked], None).await,
        Err(Error::InvalidPersonalData { .. })
    ));
    assert!(matches!(
        no_keys.forget("s-1", "why", metadata_by("dpo")).await,
        Err(Error::InvalidPersonalData { .. })
    ));
    assert_eq!(store.head().await.unwrap(), None);
    for secret in [ADA_NAME, ADA_EMAIL] {
        assert!(files_containing(&path, secret.as_bytes()).is_empty());
    }
    // Events without personal data are appended as usual.
    assert_eq!(store.append(vec![plain], None).await.unwrap(), pos(1));
}

// ---------------------------------------------------------------------------------------------
// A key cached by another handle.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cached_by_another_handle_is_not_used_after_the_subject_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let a = Records::new(FileEventStore::open_with(&path, StoreOptions::new()).unwrap())
        .with_key_store(key_store(&path));
    let b = Records::new(FileEventStore::open_with(&path, StoreOptions::new()).unwrap())
        .with_key_store(key_store(&path));

    let ada = applicant("s-1", "rust-101", ADA_NAME, ADA_EMAIL);
    let grace = applicant("s-2", "rust-101", GRACE_NAME, GRACE_EMAIL);
    a.append(vec![applicant_event(&ada), applicant_event(&grace)], None)
        .await
        .unwrap();
    // A has the key cached (it created it and read with it); B reads from the key file.
    let by_a = a.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert_eq!(by_a[0].decode::<ApplicantRegistered>().unwrap(), ada);
    let by_b = b.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert_eq!(by_b, by_a);

    let forgotten = b
        .forget("s-1", "request 17", metadata_by("dpo"))
        .await
        .unwrap();
    assert!(forgotten.key_destroyed);

    // A reads erased, by every read path.
    let by_a = a.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert!(by_a[0].is_erased());
    assert_eq!(by_a[0].decode::<ApplicantRegistered>().unwrap().name, None);
    assert!(!by_a[1].is_erased());
    let first_of_ada = Query::from_items([QueryItem::of_types([ApplicantRegistered::EVENT_TYPE])
        .unwrap()
        .with_tag(Tag::new("applicantId", "s-1").unwrap())])
    .unwrap();
    assert!(
        a.read_last(&first_of_ada)
            .await
            .unwrap()
            .unwrap()
            .is_erased()
    );
    let streamed: Vec<SequencedEvent> = a
        .read_stream(&applicants(), ReadOptions::new())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(streamed, by_a);

    // A cannot store new personal data of the subject. A failed condition is allowed once (the
    // forget landed between A's look at the log and its append); the retry must see it.
    let head = a.head().await.unwrap();
    let mut outcome = None;
    for attempt in 0..2 {
        match a
            .append(
                vec![applicant_event(&applicant(
                    "s-1", "art-301", ADA_NAME, ADA_EMAIL,
                ))],
                None,
            )
            .await
        {
            Err(e) if e.is_condition_failed() && attempt == 0 => {}
            other => {
                outcome = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(outcome, Some(Err(Error::SubjectForgotten { ref subject })) if subject == "s-1"),
        "{outcome:?}"
    );
    assert_eq!(a.head().await.unwrap(), head);

    // A second handle that has never looked refuses too, straight away.
    let c = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    assert!(matches!(
        c.append(
            vec![applicant_event(&applicant("s-1", "x", ADA_NAME, ADA_EMAIL))],
            None
        )
        .await,
        Err(Error::SubjectForgotten { .. })
    ));
    // Grace's cached key still works in A.
    let grace_again = applicant("s-2", "math-201", GRACE_NAME, GRACE_EMAIL);
    a.append(vec![applicant_event(&grace_again)], None)
        .await
        .unwrap();
    let last = b.read_last(&applicants()).await.unwrap().unwrap();
    assert_eq!(last.decode::<ApplicantRegistered>().unwrap(), grace_again);
    assert_intact(&path, 4);
}

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A file store that runs a hook just before its next append goes to the log: to put another
/// handle's `forget` exactly between a `Records`' look at the log and its append.
struct Interleaved {
    inner: FileEventStore,
    before_next_append: Mutex<Option<Hook>>,
}

impl Interleaved {
    fn before_next_append(&self, hook: impl Future<Output = ()> + Send + 'static) {
        *self.before_next_append.lock().unwrap() = Some(Box::pin(hook));
    }
}

#[async_trait]
impl EventStore for Interleaved {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        let hook = self.before_next_append.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        self.inner.read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.inner.read_last(query).await
    }

    async fn head(&self) -> Result<Option<Position>, Error> {
        self.inner.head().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_between_the_look_and_the_append_fails_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let a = Records::new(Interleaved {
        inner: FileEventStore::open(&path).unwrap(),
        before_next_append: Mutex::new(None),
    })
    .with_key_store(key_store(&path));
    let b = Arc::new(
        Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path)),
    );
    let raw = FileEventStore::open(&path).unwrap();

    let ada = applicant("s-1", "rust-101", ADA_NAME, ADA_EMAIL);
    let grace = applicant("s-2", "rust-101", GRACE_NAME, GRACE_EMAIL);
    a.append(vec![applicant_event(&ada), applicant_event(&grace)], None)
        .await
        .unwrap();
    a.read(&applicants(), ReadOptions::new()).await.unwrap();

    for (subject, own_condition) in [("s-1", false), ("s-2", true)] {
        let forget_by_b = Arc::clone(&b);
        let s = subject.to_owned();
        a.inner().before_next_append(async move {
            forget_by_b
                .forget(&s, "request 17", metadata_by("dpo"))
                .await
                .unwrap();
        });
        let head_before = raw.head().await.unwrap().unwrap();
        let event = || applicant_event(&applicant(subject, "late-101", "Late Name", "late@x"));
        let condition = own_condition.then(|| {
            AppendCondition::new(Query::from_event_types(["SomethingElse"]).unwrap())
                .after(Some(head_before))
        });
        // The first attempt sealed with the cached key, but the forget landed before it
        // reached the log: the guard fails it.
        let first = a
            .append(vec![event()], condition.clone())
            .await
            .unwrap_err();
        assert!(first.is_condition_failed(), "{subject}: {first:?}");
        // B's forget was appended, and nothing after it.
        let head = raw.head().await.unwrap().unwrap();
        assert_eq!(head.get(), head_before.get() + 1);
        let last = raw.read_last(&Query::all()).await.unwrap().unwrap();
        assert!(last.is::<SubjectForgotten>());
        // The retry sees the forget.
        assert!(
            matches!(
                a.append(vec![event()], condition).await,
                Err(Error::SubjectForgotten { subject: ref s }) if s == subject
            ),
            "{subject}"
        );
        assert_eq!(raw.head().await.unwrap(), Some(head));
    }
    // No line holds personal data sealed after its subject was forgotten.
    let all = raw.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        all[2..].iter().all(|e| e.is::<SubjectForgotten>()),
        "{all:?}"
    );
    let read = a.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert!(read.iter().all(SequencedEvent::is_erased));
    assert_intact(&path, 4);
}

// ---------------------------------------------------------------------------------------------
// Concurrency, and what is sealed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_sealing_a_new_subject_at_once_share_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let a = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    let b = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    // Each subject's key is created by both at once: whoever publishes first, both seal with
    // that key, so everything opens, in both and in a third handle.
    for i in 0..20 {
        let subject = format!("n-{i}");
        let by_a = applicant(&subject, "from-a", "Name A", "a@example.org");
        let by_b = applicant(&subject, "from-b", "Name B", "b@example.org");
        let (ra, rb) = tokio::join!(
            a.append(vec![applicant_event(&by_a)], None),
            b.append(vec![applicant_event(&by_b)], None)
        );
        ra.unwrap();
        rb.unwrap();
    }
    let c = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    for reader in [&a, &b, &c] {
        let read = reader
            .read(&applicants(), ReadOptions::new())
            .await
            .unwrap();
        assert_eq!(read.len(), 40);
        for event in &read {
            let decoded = event.decode::<ApplicantRegistered>().unwrap();
            let expected = if decoded.course == "from-a" {
                applicant(&decoded.id, "from-a", "Name A", "a@example.org")
            } else {
                applicant(&decoded.id, "from-b", "Name B", "b@example.org")
            };
            assert_eq!(decoded, expected);
        }
    }
    let keys = fs::read_dir(path.join("keys"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".key")
        })
        .count();
    assert_eq!(keys, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_forgetting_one_subject_at_once_append_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let a = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    let b = Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    for i in 0..10 {
        let subject = format!("f-{i}");
        a.append(
            vec![applicant_event(&applicant(
                &subject, "c", ADA_NAME, ADA_EMAIL,
            ))],
            None,
        )
        .await
        .unwrap();
        let (fa, fb) = tokio::join!(
            a.forget(&subject, "by a", metadata_by("dpo-a")),
            b.forget(&subject, "by b", metadata_by("dpo-b"))
        );
        let (fa, fb) = (fa.unwrap(), fb.unwrap());
        assert_eq!(fa.position, fb.position, "{subject}");
        assert!(fa.already != fb.already, "{subject}: {fa:?} {fb:?}");
        let events = a
            .read(&forgotten_query(&subject).unwrap(), ReadOptions::new())
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{subject}");
        assert_tombstone(&FileKeyStore::for_store(&path).key_path(&subject), &subject);
    }
    let read = b.read(&applicants(), ReadOptions::new()).await.unwrap();
    assert!(read.iter().all(SequencedEvent::is_erased));
    assert_intact(&path, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_values_of_every_json_kind_open_to_the_same_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let records =
        Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    let payload = json!({
        "id": "s-1",
        "name": "Zoë \"Z\" O'Neil\\\n\t☃",
        "email": {"home": "z@home.example", "work": ["z@work.example", 1.5e300, null, true]},
        "phone": -12345678901234567_i64,
        "kept": "not personal"
    });
    let event = NewEvent::builder("Profiled", Payload::from_value(&payload).unwrap())
        .personal_data("s-1", ["name", "email", "phone"])
        .build()
        .unwrap();
    let sent = event.payload().as_json().to_owned();
    records.append(vec![event], None).await.unwrap();
    let read = records
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(read[0].event.payload().as_json(), sent);
    let raw = records
        .inner()
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    let stored = raw[0].event.payload().as_json();
    for secret in [
        "Zo",
        "home.example",
        "work.example",
        "1.5e300",
        "12345678901234567",
    ] {
        assert!(!stored.contains(secret), "{secret} in {stored}");
    }
    assert!(stored.contains("not personal"));
    // Erased: only the personal fields go.
    records
        .forget("s-1", "request", metadata_by("dpo"))
        .await
        .unwrap();
    let read = records
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(
        read[0].event.payload().as_json(),
        r#"{"id":"s-1","kept":"not personal"}"#
    );
}

/// A payload given as JSON text may name a member twice. Every occurrence of a personal field
/// must be sealed (or the event refused): none may reach the log in plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personal_field_named_twice_in_the_payload_is_not_stored_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let records =
        Records::new(FileEventStore::open(&path).unwrap()).with_key_store(key_store(&path));
    let event = NewEvent::builder(
        "ApplicantEmailChanged",
        Payload::from_json(
            r#"{"id":"s-1","email":"first@example.org","email":"second@example.org"}"#,
        )
        .unwrap(),
    )
    .personal_data("s-1", ["email"])
    .build()
    .unwrap();
    // Refusing the event is fine; storing it is fine only when both values are sealed.
    if records.append(vec![event], None).await.is_ok() {
        let raw = records
            .inner()
            .read(&Query::all(), ReadOptions::new())
            .await
            .unwrap();
        let stored = raw[0].event.payload().as_json();
        for secret in ["first@example.org", "second@example.org"] {
            assert!(
                !stored.contains(secret),
                "{secret} stored in plain text: {stored}"
            );
            let found = files_containing(&path, secret.as_bytes());
            assert!(found.is_empty(), "{secret} found in {found:?}");
        }
    }
}
