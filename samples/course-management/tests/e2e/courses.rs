//! Courses: creation, the student limit, the "is full" filter.

use serde_json::json;

use crate::support::{Server, items, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_course_is_created_listed_and_its_limit_changed() {
    let Some(server) = Server::start().await else {
        return;
    };
    let reply = server
        .post(
            "/courses",
            json!({"name": "Rust", "description": "Ownership and borrowing", "maxStudentCount": 2}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let body = reply.body.clone();
    assert_eq!(body.as_object().unwrap().len(), 1, "only the id: {body}");
    let course = text(&body, "courseId");

    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    assert_eq!(details["name"], "Rust");
    assert_eq!(details["maxStudentCount"], 2);
    assert_eq!(details["isFull"], false);

    let changed = server
        .patch(
            &format!("/courses/{course}/student-limit"),
            json!({"maxStudentCount": 1}),
        )
        .await
        .expect(200);
    assert_eq!(changed["maxStudentCount"], 1);

    let list = items(&server.get("/courses").await.expect(200));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["courseId"], course.as_str());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_cannot_drop_below_the_enrolment_and_full_courses_are_filtered() {
    let Some(server) = Server::start().await else {
        return;
    };
    let small = server.course("Small", 2).await;
    let big = server.course("Big", 20).await;
    for name in ["A", "B"] {
        let student = server.student(name, "Student").await;
        server.enroll(&small, &student).await.expect(201);
    }
    let full = items(&server.get("/courses?isFull=true").await.expect(200));
    assert_eq!(full.len(), 1);
    assert_eq!(full[0]["courseId"], small.as_str());
    let open = items(&server.get("/courses?isFull=false").await.expect(200));
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["courseId"], big.as_str());

    let detail = server
        .patch(
            &format!("/courses/{small}/student-limit"),
            json!({"maxStudentCount": 1}),
        )
        .await
        .problem(400);
    assert!(detail.contains("has 2 students enrolled"), "{detail}");

    server
        .patch(
            &format!("/courses/{small}/student-limit"),
            json!({"maxStudentCount": 3}),
        )
        .await
        .expect(200);
    assert!(items(&server.get("/courses?isFull=true").await.expect(200)).is_empty());

    server
        .post("/courses", json!({"name": "Zero", "maxStudentCount": 0}))
        .await
        .problem(400);
    server
        .post("/courses", json!({"name": "", "maxStudentCount": 3}))
        .await
        .problem(400);
    let unknown = "00000000-0000-4000-8000-000000000002";
    server
        .get(&format!("/courses/{unknown}"))
        .await
        .problem(404);
    server
        .patch(
            &format!("/courses/{unknown}/student-limit"),
            json!({"maxStudentCount": 3}),
        )
        .await
        .problem(404);
    server.stop().await;
}
