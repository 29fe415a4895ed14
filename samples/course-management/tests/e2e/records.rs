//! Records kept for years, seen from the folder store itself: a version-1 `CourseCreated`
//! written by an old release is served through the upcaster with its stored bytes untouched,
//! and every event the app appends names the machine and the application that appended it.

use std::collections::BTreeMap;
use std::path::Path;

use course_management::STORE_NAME;
use course_management::store::{APP_NAME, host_name};
use course_management::students::email_hash;
use opossum::opossum_fs::{FileEventStore, StoreOptions};
use opossum::{EventStore, NewEvent, Payload, Query, ReadOptions, SequencedEvent};
use serde_json::json;

use crate::support::Server;

/// A student registered by an earlier release, before personal data was sealed.
const LEGACY_STUDENT: &str = "2d7e9b40-8c1f-4b6a-a3e5-7f0c1d2e3b4a";

/// Every file of the store's `events/` folder, by name.
fn segments(store: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(store.join("events"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// Every event of the store as stored (not through the app's upcasters or keys), read by a
/// read-only store of its own beside the running server.
async fn stored_events(store: &Path) -> Vec<SequencedEvent> {
    let reader = FileEventStore::open_with(store, StoreOptions::new().read_only(true)).unwrap();
    reader
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_course_is_read_through_the_upcaster_and_its_bytes_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(STORE_NAME);
    let legacy = "6f1c0c1e-5b7a-4c1e-9a52-0d9f3b2a1c01";
    {
        // What an earlier release wrote: version 1, the limit under `maxStudentCount`, and no
        // attribution (the store did not require it then).
        let old = FileEventStore::open(&store).unwrap();
        let payload = json!({
            "courseId": legacy,
            "name": "Legacy course",
            "description": "written by version 1",
            "maxStudentCount": 1,
        });
        let event = NewEvent::builder(
            "CourseCreated",
            Payload::from_json(&payload.to_string()).unwrap(),
        )
        .version(1)
        .tag("courseId", legacy)
        .build()
        .unwrap();
        // A registration of that release: personal data in plain text, the email as a tag.
        let student = json!({
            "studentId": LEGACY_STUDENT,
            "firstName": "Old",
            "lastName": "Timer",
            "email": "Old.Timer@Example.edu",
        });
        let registered = NewEvent::builder(
            "StudentRegistered",
            Payload::from_json(&student.to_string()).unwrap(),
        )
        .tag("studentId", LEGACY_STUDENT)
        .tag("studentEmail", "old.timer@example.edu")
        .build()
        .unwrap();
        old.append(vec![event, registered], None).await.unwrap();
    }
    let before = segments(&store);
    assert!(
        before
            .values()
            .any(|bytes| String::from_utf8_lossy(bytes).contains("\"maxStudentCount\":1")),
        "{before:?}"
    );

    let Some(server) = Server::start_in(dir).await else {
        return;
    };
    let course = server.get(&format!("/courses/{legacy}")).await.expect(200);
    assert_eq!(course["name"], "Legacy course");
    assert_eq!(
        course["maxStudentCount"], 1,
        "the HTTP API keeps its names: {course}"
    );
    assert!(course.get("capacity").is_none(), "{course}");
    let listed = server.get("/courses").await.expect(200);
    assert_eq!(listed["items"][0]["maxStudentCount"], 1, "{listed}");

    // The decision models read it the same way: one seat.
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    server.enroll(legacy, &ada).await.expect(201);
    let full = server.enroll(legacy, &alan).await.problem(400);
    assert!(full.contains("capacity"), "{full}");
    // The old registration's email tag still makes the address taken.
    let taken = server
        .post(
            "/students",
            json!({"firstName": "New", "lastName": "Timer", "email": "OLD.timer@example.edu"}),
        )
        .await
        .problem(400);
    assert!(taken.contains("already registered"), "{taken}");
    let old_timer = server
        .get(&format!("/students/{LEGACY_STUDENT}"))
        .await
        .expect(200);
    assert_eq!(old_timer["lastName"], "Timer");
    assert_eq!(old_timer["personalDataErased"], false);
    // A course created now is stored as version 2, and served alike.
    let current = server.course("Current course", 4).await;
    let served = server.get(&format!("/courses/{current}")).await.expect(200);
    assert_eq!(served["maxStudentCount"], 4);

    // The old line is byte for byte as it was: the new events came after it.
    let after = segments(server.data_dir().join(STORE_NAME).as_path());
    for (name, bytes) in &before {
        let now = after.get(name).unwrap();
        assert!(
            now.starts_with(bytes),
            "{name} changed: {:?}",
            String::from_utf8_lossy(now)
        );
    }
    let events = stored_events(&server.data_dir().join(STORE_NAME)).await;
    assert_eq!(events.len(), 2 + 2 + 1 + 1, "{events:?}");
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type().as_str() == "CourseCreated")
        .collect();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].event.version(), 1);
    assert!(
        created[0]
            .event
            .payload()
            .as_json()
            .contains("maxStudentCount")
    );
    assert_eq!(created[1].event.version(), 2);
    let new_payload = created[1].event.payload().as_json();
    assert!(
        new_payload.contains("\"capacity\":4") && !new_payload.contains("maxStudentCount"),
        "{new_payload}"
    );
    let report = opossum::opossum_fs::verify_folder(&server.data_dir().join(STORE_NAME)).unwrap();
    assert!(report.is_intact(), "{report:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_appended_event_names_its_host_and_application() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let course = server.course("Audit", 3).await;
    server.enroll(&course, &ada).await.expect(201);
    server
        .patch(
            &format!("/students/{ada}/subscription"),
            json!({"enrollmentTier": "Master"}),
        )
        .await
        .expect(200);
    server
        .post("/invoices", json!({"customerId": ada, "amount": 10}))
        .await
        .expect(201);
    server
        .post(
            &format!("/students/{ada}/forget"),
            json!({"reason": "erasure request 7", "requestedBy": "dpo@example.edu"}),
        )
        .await
        .expect(200);

    let events = stored_events(&server.data_dir().join(STORE_NAME)).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.event.event_type().as_str())
        .collect();
    assert_eq!(
        types,
        [
            "StudentRegistered",
            "CourseCreated",
            "StudentEnrolledToCourse",
            "StudentSubscriptionUpdated",
            "InvoiceCreated",
            "SubjectForgotten"
        ]
    );
    for event in &events {
        let fields = &event.event.metadata().fields;
        assert_eq!(
            fields.get("host").map(String::as_str),
            Some(host_name()),
            "{event:?}"
        );
        assert!(!host_name().is_empty());
        assert_eq!(
            fields.get("app").map(String::as_str),
            Some(APP_NAME),
            "{event:?}"
        );
    }
    assert!(APP_NAME.starts_with("course-management/"), "{APP_NAME}");

    // The forget says who and why.
    let forgot = events.last().unwrap();
    let metadata = forgot.event.metadata();
    assert_eq!(metadata.user_id.as_deref(), Some("dpo@example.edu"));
    assert_eq!(metadata.get("reason"), Some("erasure request 7"));
    assert_eq!(forgot.event.tag_value("dataSubject"), Some(ada.as_str()));

    // The registration is tagged with the email's hash, never the email; its personal fields
    // are sealed for the student.
    let registered = &events[0].event;
    assert_eq!(
        registered.tag_value("studentEmailHash"),
        Some(email_hash("ada.lovelace@example.edu").as_str())
    );
    assert_eq!(registered.tag_value("studentEmail"), None);
    let personal = registered.personal_data().unwrap();
    assert_eq!(personal.subject, ada);
    assert_eq!(personal.fields, ["firstName", "lastName", "email"]);
    assert!(!registered.payload().as_json().contains("Lovelace"));
    server.stop().await;
}
