//! Records kept for years, through the facade: an app built with `.upcasters()`,
//! `.shred_personal_data()` and `.require_metadata()` reads every event at the version its code
//! reads — in `AppStore` reads and streams, decision models and projections — and after
//! `AppStore::forget` a rebuilt projection shows the erased fields as `None`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use opossum::opossum_core::records::{SubjectForgotten, forgotten_query};
use opossum::opossum_core::{RequiredMetadata, Upcasters};
use opossum::{
    BoxError, Decision, DecisionProjection, DomainEvent, Durability, EventStore, EventStoreError,
    Metadata, NewEvent, Opossum, OpossumBuilder, Payload, Projection, Query, QueryItem,
    ReadOptions, SequencedEvent, Tag, Timestamp, build_decision_model, decide,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Version 1 of `StudentRegistered`, as an early release stored it: one name field. The name
/// and the e-mail address are personal data of the student.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegisteredV1 {
    id: String,
    name: String,
    email: String,
}
impl DomainEvent for RegisteredV1 {
    const EVENT_TYPE: &'static str = "StudentRegistered";
    const PERSONAL_FIELDS: &'static [&'static str] = &["name", "email"];
    fn data_subject(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

/// Version 3, what the current code reads: version 2 split the name into `first_name` and
/// `last_name`, version 3 renamed them to `given_name` and `family_name`. The personal fields
/// are `Option`, so that a forgotten student's events still decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegisteredV3 {
    id: String,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}
impl DomainEvent for RegisteredV3 {
    const EVENT_TYPE: &'static str = "StudentRegistered";
    const VERSION: u32 = 3;
    const PERSONAL_FIELDS: &'static [&'static str] = &["given_name", "family_name", "email"];
    fn data_subject(&self) -> Option<String> {
        Some(self.id.clone())
    }
}

fn v3(id: &str, given: &str, family: &str, email: &str) -> RegisteredV3 {
    RegisteredV3 {
        id: id.into(),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        email: Some(email.into()),
    }
}

fn erased(id: &str) -> RegisteredV3 {
    RegisteredV3 {
        id: id.into(),
        given_name: None,
        family_name: None,
        email: None,
    }
}

/// The upcasters of the current release: both steps, and the early name of the event. The
/// steps leave out what is not there, as in a forgotten student's events.
fn upcasters() -> Upcasters {
    Upcasters::new()
        .rename("StudentSignedUp", "StudentRegistered")
        .unwrap()
        .upcast("StudentRegistered", 1, |mut v: Value| {
            let object = v.as_object_mut().ok_or("not an object")?;
            if let Some(name) = object.remove("name") {
                let name = name.as_str().ok_or("the name is not text")?.to_owned();
                let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
                object.insert("first_name".into(), json!(first));
                object.insert("last_name".into(), json!(last));
            }
            Ok(v)
        })
        .unwrap()
        .upcast("StudentRegistered", 2, |mut v: Value| {
            let object = v.as_object_mut().ok_or("not an object")?;
            if let Some(first) = object.remove("first_name") {
                object.insert("given_name".into(), first);
            }
            if let Some(last) = object.remove("last_name") {
                object.insert("family_name".into(), last);
            }
            Ok(v)
        })
        .unwrap()
}

fn students() -> Query {
    Query::from_event_types(["StudentRegistered"]).unwrap()
}

fn student(id: &str) -> Query {
    Query::from_items([QueryItem::of_types(["StudentRegistered"])
        .unwrap()
        .with_tag(Tag::new("studentId", id).unwrap())])
    .unwrap()
}

fn by(user: &str) -> Metadata {
    let mut m = Metadata::at(Timestamp::now());
    m.user_id = Some(user.into());
    m
}

/// A student as the read model keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StudentRow {
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
}

impl From<RegisteredV3> for StudentRow {
    fn from(s: RegisteredV3) -> StudentRow {
        StudentRow {
            given_name: s.given_name,
            family_name: s.family_name,
            email: s.email,
        }
    }
}

/// Every student by id, decoded as version 3: an event the upcasters did not bring to
/// version 3 stops the projection.
struct Students;
impl Projection for Students {
    type State = StudentRow;
    fn name(&self) -> &str {
        "Students"
    }
    fn event_types(&self) -> Vec<&str> {
        vec![RegisteredV3::EVENT_TYPE]
    }
    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("studentId").map(str::to_owned)
    }
    fn apply(
        &self,
        _: Option<StudentRow>,
        event: &SequencedEvent,
        _: &[SequencedEvent],
    ) -> Result<Option<StudentRow>, BoxError> {
        Ok(Some(event.decode::<RegisteredV3>()?.into()))
    }
}

/// Every student's id and given name, in position order, decoded as version 3.
fn given_names() -> DecisionProjection<Vec<(String, Option<String>)>> {
    DecisionProjection::try_new(Vec::new(), students(), |mut names, event| {
        let s = event.decode::<RegisteredV3>()?;
        names.push((s.id, s.given_name));
        Ok(names)
    })
}

/// Whether the student is registered (under either name of the event).
fn is_registered(id: &str) -> DecisionProjection<bool> {
    DecisionProjection::try_new(false, student(id), |_, event| {
        event.decode::<RegisteredV3>()?;
        Ok(true)
    })
}

fn store_folder(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("school")
}

fn builder(folder: &Path) -> OpossumBuilder {
    Opossum::builder()
        .store_path(folder)
        .durability(Durability::Eventual)
}

/// What an early release stored: two typed version-1 registrations and one under the early
/// name, all with their personal data sealed.
async fn early_release(folder: &Path) {
    let app = builder(folder).shred_personal_data().build().await.unwrap();
    let ada = RegisteredV1 {
        id: "s-1".into(),
        name: "Ada Lovelace".into(),
        email: "ada@example.org".into(),
    };
    let grace = RegisteredV1 {
        id: "s-2".into(),
        name: "Grace Hopper".into(),
        email: "grace@example.org".into(),
    };
    let typed = |s: &RegisteredV1| {
        NewEvent::from_typed(s)
            .tag("studentId", s.id.as_str())
            .build()
            .unwrap()
    };
    let signed_up = NewEvent::builder(
        "StudentSignedUp",
        Payload::from_value(&json!({"id": "s-0", "name": "Old Timer", "email": "old@example.org"}))
            .unwrap(),
    )
    .tag("studentId", "s-0")
    .personal_data("s-0", ["name", "email"])
    .build()
    .unwrap();
    app.store()
        .append(vec![typed(&ada), typed(&grace)], None)
        .await
        .unwrap();
    app.store().append(vec![signed_up], None).await.unwrap();
    // Stored as written: version 1, sealed.
    let raw = app.store().file_store().unwrap();
    let stored = raw.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .all(|e| e.event.version() == 1 && e.event.is_sealed())
    );
    assert!(
        stored
            .iter()
            .all(|e| !e.event.payload().as_json().contains("Lovelace"))
    );
    app.shutdown().await.unwrap();
}

fn expected_students() -> Vec<(u64, RegisteredV3)> {
    vec![
        (1, v3("s-1", "Ada", "Lovelace", "ada@example.org")),
        (2, v3("s-2", "Grace", "Hopper", "grace@example.org")),
        (3, v3("s-0", "Old", "Timer", "old@example.org")),
    ]
}

fn decoded(events: &[SequencedEvent]) -> Vec<(u64, RegisteredV3)> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e.event.event_type().as_str(), "StudentRegistered");
            assert_eq!(e.event.version(), 3, "at {}", e.position);
            (e.position.get(), e.decode::<RegisteredV3>().unwrap())
        })
        .collect()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if fs::read(&path)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
        {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_read_path_sees_the_current_version_and_a_rebuild_sees_the_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store_folder(&dir);
    early_release(&folder).await;

    let app = builder(&folder)
        .upcasters(upcasters())
        .shred_personal_data()
        .projection(Students)
        .build()
        .await
        .unwrap();
    let store = app.store();

    // AppStore reads and streams.
    let read = store.read(&students(), ReadOptions::new()).await.unwrap();
    assert_eq!(decoded(&read), expected_students());
    let last = store.read_last(&students()).await.unwrap().unwrap();
    assert_eq!(decoded(&[last]), expected_students()[2..]);
    let streamed: Vec<SequencedEvent> = store
        .read_stream(&students(), ReadOptions::new())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(streamed, read);
    let subscribed: Vec<SequencedEvent> = store
        .subscribe(&students(), None)
        .take(3)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(subscribed, read);

    // A decision model.
    let model = build_decision_model(store.as_ref(), given_names())
        .await
        .unwrap();
    assert_eq!(
        model.state,
        [
            ("s-1".to_owned(), Some("Ada".to_owned())),
            ("s-2".to_owned(), Some("Grace".to_owned())),
            ("s-0".to_owned(), Some("Old".to_owned())),
        ]
    );
    // A decision on a student stored under the early name sees it: nothing to register.
    for (id, expected) in [("s-0", false), ("s-3", true)] {
        let decided = decide(store.as_ref(), is_registered(id), |registered| {
            Ok::<_, opossum::DecisionError>(if registered {
                Decision::nothing().returning(false)
            } else {
                let event = NewEvent::from_typed(&v3(id, "Emmy", "Noether", "emmy@example.org"))
                    .tag("studentId", id)
                    .build()?;
                Decision::append(vec![event]).returning(true)
            })
        })
        .await
        .unwrap();
        assert_eq!(decided.outcome, expected, "{id}");
    }
    let emmy = store.read_last(&student("s-3")).await.unwrap().unwrap();
    assert_eq!(emmy.position.get(), 4);
    assert_eq!(
        emmy.decode::<RegisteredV3>().unwrap(),
        v3("s-3", "Emmy", "Noether", "emmy@example.org")
    );
    // The model's condition, appended through the store, also covers the early name.
    let (_, condition) = build_decision_model(store.as_ref(), is_registered("s-0"))
        .await
        .unwrap()
        .into_parts();
    let stale = opossum::AppendCondition::new(condition.fail_if_events_match.clone()).after(None);
    let refused = store
        .append(
            vec![
                NewEvent::from_typed(&v3("s-0", "Again", "Twice", "again@example.org"))
                    .tag("studentId", "s-0")
                    .build()
                    .unwrap(),
            ],
            Some(stale),
        )
        .await
        .unwrap_err();
    assert!(refused.is_condition_failed(), "{refused:?}");

    // A projection kept by the daemon.
    app.wait_for_projections(Duration::from_secs(60))
        .await
        .unwrap();
    let rows = app.read_model::<Students>().unwrap();
    let row = |id: &'static str| {
        let rows = &rows;
        async move { rows.read(move |s| s.get(id)).await.unwrap() }
    };
    assert_eq!(
        row("s-1").await,
        Some(v3("s-1", "Ada", "Lovelace", "ada@example.org").into())
    );
    assert_eq!(
        row("s-0").await,
        Some(v3("s-0", "Old", "Timer", "old@example.org").into())
    );
    assert_eq!(
        row("s-3").await,
        Some(v3("s-3", "Emmy", "Noether", "emmy@example.org").into())
    );
    assert!(
        app.projections()
            .status()
            .iter()
            .all(|s| s.failure.is_none())
    );

    // Forget Ada.
    let forgotten = store.forget("s-1", "request 17", by("dpo")).await.unwrap();
    assert!(!forgotten.already && forgotten.key_destroyed);
    assert_eq!(forgotten.position.get(), 5);
    assert_eq!(store.last_appended(), Some(forgotten.position));
    let record = store
        .read_last(&forgotten_query("s-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.decode::<SubjectForgotten>().unwrap().reason,
        "request 17"
    );
    assert_eq!(record.event.metadata().user_id.as_deref(), Some("dpo"));

    // Reads and decision models see the erasure at once.
    let read = store.read(&students(), ReadOptions::new()).await.unwrap();
    let mut expected = expected_students();
    expected[0].1 = erased("s-1");
    expected.push((4, v3("s-3", "Emmy", "Noether", "emmy@example.org")));
    assert_eq!(decoded(&read), expected);
    assert!(read[0].is_erased() && !read[1].is_erased());
    let model = build_decision_model(store.as_ref(), given_names())
        .await
        .unwrap();
    assert_eq!(model.state[0], ("s-1".to_owned(), None));
    assert_eq!(model.state[1], ("s-2".to_owned(), Some("Grace".to_owned())));

    // A rebuilt projection shows the erased fields as None, and the others as they were.
    let rebuilt = app
        .projections()
        .rebuilder()
        .rebuild("Students")
        .await
        .unwrap();
    assert_eq!(rebuilt.events_applied, 4);
    assert_eq!(row("s-1").await, Some(erased("s-1").into()));
    assert_eq!(
        row("s-2").await,
        Some(v3("s-2", "Grace", "Hopper", "grace@example.org").into())
    );
    assert_eq!(
        row("s-0").await,
        Some(v3("s-0", "Old", "Timer", "old@example.org").into())
    );

    // The stored lines are as the early release wrote them, and intact.
    let raw = store.file_store().unwrap();
    let stored = raw.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(stored[2].event.event_type().as_str(), "StudentSignedUp");
    assert!(stored[..3].iter().all(|e| e.event.version() == 1));
    let report = raw.verify().unwrap();
    assert!(
        report.is_intact() && report.events_checked == 5,
        "{report:?}"
    );
    app.shutdown().await.unwrap();

    // Once the rebuild replaced the old generation, no file of the store folder — log, keys,
    // projections — holds Ada's name or address.
    for secret in ["Lovelace", "ada@example.org"] {
        let found = files_containing(&folder, secret.as_bytes());
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }
    // Grace's is in her projection row, in the clear (read models are not sealed).
    assert!(!files_containing(&folder.join("projections"), b"Hopper").is_empty());

    // A new app on the folder finds the subject forgotten (recover at build) and reads the
    // same.
    let again = builder(&folder)
        .upcasters(upcasters())
        .shred_personal_data()
        .projection(Students)
        .build()
        .await
        .unwrap();
    let read_again = again
        .store()
        .read(&students(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(decoded(&read_again), expected);
    let late = NewEvent::from_typed(&v3("s-1", "Ada", "Lovelace", "ada@example.org"))
        .tag("studentId", "s-1")
        .build()
        .unwrap();
    assert!(matches!(
        again.store().append(vec![late], None).await,
        Err(EventStoreError::SubjectForgotten { ref subject }) if subject == "s-1"
    ));
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upcasters_alone_bring_plain_events_to_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store_folder(&dir);
    // Old events without personal data, written by a plain store.
    let raw_folder = folder.clone();
    tokio::task::spawn_blocking(move || {
        let raw = opossum::FileEventStore::open(&raw_folder).unwrap();
        let events = vec![
            NewEvent::builder(
                "StudentRegistered",
                Payload::from_json(r#"{"id":"s-5","name":"Plain Person"}"#).unwrap(),
            )
            .tag("studentId", "s-5")
            .build()
            .unwrap(),
            NewEvent::builder(
                "StudentSignedUp",
                Payload::from_json(r#"{"id":"s-6","name":"Early Bird"}"#).unwrap(),
            )
            .tag("studentId", "s-6")
            .build()
            .unwrap(),
        ];
        raw.append_blocking(events, None).unwrap();
        raw.close().unwrap();
    })
    .await
    .unwrap();

    let app = builder(&folder)
        .upcasters(upcasters())
        .projection(Students)
        .build()
        .await
        .unwrap();
    let read = app
        .store()
        .read(&students(), ReadOptions::new())
        .await
        .unwrap();
    let plain = |id: &str, given: &str, family: &str| RegisteredV3 {
        email: None,
        ..v3(id, given, family, "")
    };
    assert_eq!(
        decoded(&read),
        [
            (1, plain("s-5", "Plain", "Person")),
            (2, plain("s-6", "Early", "Bird"))
        ]
    );
    let rows = app.read_model::<Students>().unwrap();
    assert_eq!(
        rows.read(|s| s.get("s-6")).await.unwrap(),
        Some(plain("s-6", "Early", "Bird").into())
    );
    // Without a key store, personal data is refused, and so is forget.
    let personal = NewEvent::from_typed(&v3("s-7", "No", "Keys", "no@example.org"))
        .build()
        .unwrap();
    assert!(matches!(
        app.store().append(vec![personal], None).await,
        Err(EventStoreError::InvalidPersonalData { .. })
    ));
    assert!(matches!(
        app.store().forget("s-5", "why", by("dpo")).await,
        Err(EventStoreError::InvalidPersonalData { .. })
    ));
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_metadata_is_enforced_through_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store_folder(&dir);
    let app = builder(&folder)
        .require_metadata(RequiredMetadata::new(["user_id", "reason"]).unwrap())
        .upcasters(upcasters())
        .shred_personal_data()
        .build()
        .await
        .unwrap();
    let store = app.store();
    assert_eq!(
        store
            .file_store()
            .unwrap()
            .options()
            .get_required_metadata()
            .names(),
        ["user_id", "reason"]
    );
    let ada = || {
        NewEvent::from_typed(&v3("s-1", "Ada", "Lovelace", "ada@example.org"))
            .tag("studentId", "s-1")
    };

    // No reason: refused, nothing written.
    let unsigned = ada().user_id("registrar").build().unwrap();
    assert!(matches!(
        store.append(vec![unsigned], None).await,
        Err(EventStoreError::MissingMetadata { index: 0, ref field, .. }) if field == "reason"
    ));
    assert_eq!(store.head().await.unwrap(), None);
    assert_eq!(store.last_appended(), None);

    // Both: accepted, with the free fields and the store's commit time.
    let signed = ada()
        .user_id("registrar")
        .field("reason", "application form")
        .field("host", "PC-7")
        .build()
        .unwrap();
    let before = Timestamp::now();
    let at = store.append(vec![signed], None).await.unwrap();
    let after = Timestamp::now();
    let read = store.read_last(&students()).await.unwrap().unwrap();
    assert_eq!(read.position, at);
    assert_eq!(read.event.metadata().get("host"), Some("PC-7"));
    assert_eq!(
        read.event.metadata().get("reason"),
        Some("application form")
    );
    let stored_at = read.stored_at.unwrap();
    assert!(before <= stored_at && stored_at <= after);
    assert_eq!(
        read.decode::<RegisteredV3>().unwrap(),
        v3("s-1", "Ada", "Lovelace", "ada@example.org")
    );

    // forget adds the reason; the user is still required.
    assert!(matches!(
        store.forget("s-1", "request 17", Metadata::at(Timestamp::now())).await,
        Err(EventStoreError::MissingMetadata { ref field, .. }) if field == "user_id"
    ));
    assert!(
        !store
            .read_last(&students())
            .await
            .unwrap()
            .unwrap()
            .is_erased()
    );
    let forgotten = store.forget("s-1", "request 17", by("dpo")).await.unwrap();
    assert!(!forgotten.already);
    let record = store
        .read_last(&forgotten_query("s-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.event.metadata().get("reason"), Some("request 17"));
    assert!(
        store
            .read_last(&students())
            .await
            .unwrap()
            .unwrap()
            .is_erased()
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_through_the_app_rebuilds_the_read_models_without_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store_folder(&dir);
    early_release(&folder).await;
    let app = builder(&folder)
        .upcasters(upcasters())
        .shred_personal_data()
        .projection(Students)
        .build()
        .await
        .unwrap();
    app.wait_for_projections(Duration::from_secs(60))
        .await
        .unwrap();
    let rows = app.read_model::<Students>().unwrap();
    let ada = rows.read(|s| s.get("s-1")).await.unwrap();
    assert_eq!(
        ada,
        Some(v3("s-1", "Ada", "Lovelace", "ada@example.org").into())
    );
    assert!(!files_containing(&folder.join("projections"), b"Lovelace").is_empty());

    let report = app
        .context()
        .forget("s-1", "request 18", by("dpo"))
        .await
        .unwrap();
    assert!(report.forgotten.key_destroyed && !report.forgotten.already);
    assert!(report.rebuilt.is_success(), "{:?}", report.rebuilt);
    assert_eq!(report.rebuilt.rebuilt.len(), 1);
    // At once, with no rebuild by hand: the read model shows the erasure, and no file of the
    // folder holds the name or the address.
    let ada = rows.read(|s| s.get("s-1")).await.unwrap();
    assert_eq!(ada, Some(erased("s-1").into()));
    for secret in ["Lovelace", "ada@example.org"] {
        let found = files_containing(&folder, secret.as_bytes());
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }
    assert!(!files_containing(&folder.join("projections"), b"Hopper").is_empty());
    app.shutdown().await.unwrap();
}
