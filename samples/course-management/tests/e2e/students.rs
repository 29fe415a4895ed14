//! Students: unique email (the unique-username example), tiers, and the list filters.

use serde_json::json;

use crate::support::{Server, items, text, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_student_is_listed_and_has_details() {
    let Some(server) = Server::start().await else {
        return;
    };
    let reply = server
        .post(
            "/students",
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}),
        )
        .await;
    let location = reply.location.clone();
    let id = text(&reply.expect(201), "studentId");
    assert_eq!(location, Some(format!("/students/{id}")));

    let page = server.get("/students").await.expect(200);
    assert_eq!(page["nextCursor"], json!(null), "one student is one page");
    let list = items(&page);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["studentId"], id.as_str());
    assert_eq!(list[0]["firstName"], "Ada");
    assert_eq!(list[0]["enrollmentTier"], "Basic");
    assert_eq!(list[0]["maxCourses"], 2);

    let details = server.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(details["email"], "ada@example.com");
    assert_eq!(details["courses"], json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_is_registered_once_in_any_case() {
    let Some(server) = Server::start().await else {
        return;
    };
    server.student("Ada", "Lovelace").await;
    let detail = server
        .post(
            "/students",
            json!({"firstName": "Other", "lastName": "Ada", "email": "ADA.Lovelace@Example.edu"}),
        )
        .await
        .problem(400);
    assert!(detail.contains("already registered"), "{detail}");
    assert_eq!(items(&server.get("/students").await.expect(200)).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_students_are_problems() {
    let Some(server) = Server::start().await else {
        return;
    };
    let missing_field = server
        .post("/students", json!({"firstName": "Ada", "lastName": "L"}))
        .await
        .problem(400);
    assert!(missing_field.contains("email"), "{missing_field}");
    let bad_email = server
        .post(
            "/students",
            json!({"firstName": "Ada", "lastName": "L", "email": "not-an-email"}),
        )
        .await
        .problem(400);
    assert!(bad_email.contains("not an email"), "{bad_email}");
    server
        .post(
            "/students",
            json!({"firstName": " ", "lastName": "L", "email": "a@b.cd"}),
        )
        .await
        .problem(400);
    server.get("/students/not-a-uuid").await.problem(400);
    let unknown = "00000000-0000-4000-8000-000000000001";
    server
        .get(&format!("/students/{unknown}"))
        .await
        .problem(404);
    server
        .patch(
            &format!("/students/{unknown}/subscription"),
            json!({"enrollmentTier": "Master"}),
        )
        .await
        .problem(404);
    server.get("/students?tier=Gold").await.problem(400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn students_are_filtered_by_tier_and_by_being_maxed_out() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    let grace = server.student("Grace", "Hopper").await;
    let upgraded = server
        .patch(
            &format!("/students/{alan}/subscription"),
            json!({"enrollmentTier": "professional"}),
        )
        .await
        .expect(200);
    assert_eq!(upgraded["enrollmentTier"], "Professional");
    assert_eq!(upgraded["maxCourses"], 10);
    for name in ["Algebra", "Biology"] {
        let course = server.course(name, 10).await;
        server.enroll(&course, &ada).await.expect(201);
    }

    let ids = |page: serde_json::Value| -> Vec<String> { texts(&items(&page), "studentId") };
    assert_eq!(
        ids(server.get("/students?tier=Professional").await.expect(200)),
        [alan.as_str()]
    );
    assert_eq!(
        ids(server.get("/students?isMaxedOut=true").await.expect(200)),
        [ada.as_str()]
    );
    let mut open_basic = ids(server
        .get("/students?tier=basic&isMaxedOut=false")
        .await
        .expect(200));
    open_basic.sort();
    assert_eq!(open_basic, [grace.as_str()]);
    assert_eq!(ids(server.get("/students").await.expect(200)).len(), 3);

    // Ada upgrades: she is no longer maxed out.
    server
        .patch(
            &format!("/students/{ada}/subscription"),
            json!({"enrollmentTier": "Standard"}),
        )
        .await
        .expect(200);
    assert!(ids(server.get("/students?isMaxedOut=true").await.expect(200)).is_empty());
    let details = server.get(&format!("/students/{ada}")).await.expect(200);
    let courses: Vec<&str> = details["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        courses,
        ["Algebra", "Biology"],
        "course names come from related events"
    );
    server.stop().await;
}
