//! Forgetting a student (GDPR erasure by crypto-shredding): the names and the email are sealed
//! in the store from the start, and after `POST /students/{id}/forget` no file of the data
//! directory holds them — neither the events nor the read models — while the store's chain
//! stays intact and the email stays taken.

use std::path::{Path, PathBuf};
use std::time::Duration;

use course_management::STORE_NAME;
use serde_json::json;

use crate::course_books::book;
use crate::support::{Server, items, text};

const FIRST: &str = "Zenobia";
const LAST: &str = "Quillfeather";
/// What [`Server::student`] registers for [`FIRST`] and [`LAST`].
const EMAIL: &str = "zenobia.quillfeather@example.edu";

/// Every file under `dir` (recursively) whose bytes contain one of `needles`, with the needle.
/// Files that vanish during the walk (replaced projection generations on their way out) are
/// skipped.
fn files_containing(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for needle in needles {
                if bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
                {
                    found.push((path.clone(), (*needle).to_owned()));
                }
            }
        }
    }
    found
}

/// [`files_containing`], polled until it finds nothing: a replaced projection generation is
/// deleted by the last reader that lets go of it, on a thread of its own. The bound only
/// guards against a hang.
async fn no_file_contains(dir: &Path, needles: &[&str]) {
    let mut found = Vec::new();
    for _ in 0..200 {
        found = files_containing(dir, needles);
        if found.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("personal data left after the forget: {found:?}");
}

fn forget_body(reason: &str, requested_by: &str) -> serde_json::Value {
    json!({"reason": reason, "requestedBy": requested_by})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_student_leaves_no_personal_data_in_any_file() {
    let Some(server) = Server::start().await else {
        return;
    };
    let needles = [FIRST, LAST, EMAIL];
    let id = server.student(FIRST, LAST).await;
    // Course read models copy the student's names too.
    let course = server.course("Erasure", 5).await;
    server.enroll(&course, &id).await.expect(201);
    let dcb = book(&server, &course, "Dynamic Consistency Boundaries", 30.0).await;
    server
        .post(
            &format!("/course-books/{dcb}/purchases"),
            json!({"studentId": id, "displayedPrice": 30.0}),
        )
        .await
        .expect(201);

    let student = server.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(student["firstName"], FIRST);
    assert_eq!(student["email"], EMAIL);
    assert_eq!(student["personalDataErased"], false);
    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    assert_eq!(details["enrolledStudents"][0]["lastName"], LAST);
    let buyers = server
        .get(&format!("/courses/{course}/book-buyers"))
        .await
        .expect(200);
    assert_eq!(buyers["buyers"][0]["firstName"], FIRST);

    let store = server.data_dir().join(STORE_NAME);
    if !crate::POSTGRES {
        // Sealed from the start: the event files hold ciphertext only, and the email's tag is
        // its hash.
        let events = store.join("events");
        assert!(events.is_dir(), "{}", events.display());
        assert_eq!(files_containing(&events, &needles), Vec::new());
    }

    // The read models' files hold copies (which is what the forget must reach).
    let copies = files_containing(server.data_dir(), &needles);
    assert!(
        copies
            .iter()
            .any(|(path, _)| path.starts_with(store.join("projections"))),
        "{copies:?}"
    );

    // Bad requests change nothing.
    let path = format!("/students/{id}/forget");
    let missing = server
        .post(&path, json!({"requestedBy": "dpo"}))
        .await
        .problem(400);
    assert!(missing.contains("reason"), "{missing}");
    server
        .post(&path, forget_body("  ", "dpo"))
        .await
        .problem(400);
    server
        .post(&path, forget_body("GDPR", &"x".repeat(201)))
        .await
        .problem(400);
    let unknown = "00000000-0000-4000-8000-000000000042";
    let not_found = server
        .post(
            &format!("/students/{unknown}/forget"),
            forget_body("GDPR", "dpo"),
        )
        .await
        .problem(404);
    assert!(not_found.contains(unknown), "{not_found}");
    server
        .post("/students/not-a-uuid/forget", forget_body("GDPR", "dpo"))
        .await
        .problem(400);
    assert_eq!(
        server.get(&format!("/students/{id}")).await.expect(200)["firstName"],
        FIRST
    );

    let forgotten = server
        .post(
            &path,
            forget_body("erasure request 2026-117", "dpo@example.edu"),
        )
        .await
        .expect(200);
    assert_eq!(forgotten["studentId"], id.as_str());
    assert_eq!(forgotten["alreadyForgotten"], false);
    let position = forgotten["position"].as_u64().unwrap();
    assert!(position > 0, "{forgotten}");

    let student = server.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(student["personalDataErased"], true, "{student}");
    assert_eq!(
        (
            &student["firstName"],
            &student["lastName"],
            &student["email"]
        ),
        (&json!(""), &json!(""), &json!("")),
        "{student}"
    );
    // What is not personal stays.
    assert_eq!(student["courseCount"], 1);
    assert_eq!(student["courses"][0]["name"], "Erasure");
    let listed = items(&server.get("/students").await.expect(200));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["personalDataErased"], true);
    assert_eq!(listed[0]["firstName"], "");
    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    let enrolled = &details["enrolledStudents"];
    assert_eq!(enrolled[0]["studentId"], id.as_str());
    assert_eq!(enrolled[0]["firstName"], "");
    assert_eq!(enrolled[0]["email"], "");
    assert_eq!(enrolled[0]["personalDataErased"], true);
    let buyers = server
        .get(&format!("/courses/{course}/book-buyers"))
        .await
        .expect(200);
    assert_eq!(buyers["buyers"][0]["lastName"], "");
    assert_eq!(buyers["buyers"][0]["personalDataErased"], true);
    assert_eq!(buyers["buyers"][0]["booksBought"], 1);

    // No file of the data directory holds the names or the email any more: not the events,
    // not the read models (rebuilt, their earlier versions gone with the replaced files).
    no_file_contains(server.data_dir(), &needles).await;
    if crate::POSTGRES {
        // The keys live in the database, shared by every server, not in this one's folder.
        assert!(!store.join("keys").exists());
    } else {
        assert!(store.join("keys").is_dir());
        let report = opossum::opossum_fs::verify_folder(&store).unwrap();
        assert!(report.is_intact(), "{report:?}");
    }

    // Forgetting again is no error, and appends nothing.
    let again = server
        .post(&path, forget_body("duplicate request", "dpo@example.edu"))
        .await
        .expect(200);
    assert_eq!(again["alreadyForgotten"], true);
    assert_eq!(again["position"], position);

    // The address stays taken: its hash tag outlives the erasure (see the README).
    let taken = server
        .post(
            "/students",
            json!({"firstName": "Zoe", "lastName": "Q", "email": EMAIL.to_uppercase()}),
        )
        .await
        .problem(400);
    assert!(taken.contains("already registered"), "{taken}");
    // The student goes on as a pseudonymous id.
    let other = server.course("After", 5).await;
    server.enroll(&other, &id).await.expect(201);
    let student = server.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(student["courseCount"], 2);
    assert_eq!(text(&student, "firstName"), "");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_one_student_leaves_the_others_alone() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    let course = server.course("Computing", 5).await;
    server.enroll(&course, &ada).await.expect(201);
    server.enroll(&course, &alan).await.expect(201);
    server
        .post(
            &format!("/students/{ada}/forget"),
            forget_body("erasure request", "dpo"),
        )
        .await
        .expect(200);
    let alan_now = server.get(&format!("/students/{alan}")).await.expect(200);
    assert_eq!(alan_now["lastName"], "Turing");
    assert_eq!(alan_now["personalDataErased"], false);
    let enrolled = server.get(&format!("/courses/{course}")).await.expect(200)["enrolledStudents"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<(&str, bool)> = enrolled
        .iter()
        .map(|s| {
            (
                s["lastName"].as_str().unwrap(),
                s["personalDataErased"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("", true), ("Turing", false)]);
    // Alan's address is still his; a new student registers as before.
    server
        .post(
            "/students",
            json!({"firstName": "A", "lastName": "T", "email": "alan.turing@example.edu"}),
        )
        .await
        .problem(400);
    server.student("Grace", "Hopper").await;
    server.stop().await;
}
