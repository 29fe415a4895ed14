//! Rules that hold alike on every route: unknown students are 404 wherever a student is
//! referred to, every free-text field is bounded and clean and never echoed back whole,
//! setting the current value again is a no-op, and a limit out of range is invalid-request.

use serde_json::{Value, json};

use crate::support::{Reply, Server, items, text};

const NIL: &str = "00000000-0000-0000-0000-000000000000";
const RANDOM: &str = "3f0c6b8e-2a4d-4c1e-9b7a-5d2e8f1a6c90";
/// The idempotency token of the refused announcements (a refusal uses no token).
const TOKEN: &str = "00000000-0000-4000-8000-0000000000aa";

/// The detail of a 400 invalid-request problem.
#[track_caller]
fn invalid(reply: Reply) -> String {
    assert_eq!(reply.body["type"], "/problems/invalid-request", "{reply:?}");
    reply.problem(400)
}

/// The detail of a 400 rule-violated problem.
#[track_caller]
fn violated(reply: Reply) -> String {
    assert_eq!(reply.body["type"], "/problems/rule-violated", "{reply:?}");
    reply.problem(400)
}

async fn aggregate_course(server: &Server, capacity: u32) -> String {
    let reply = server
        .post(
            "/aggregate/courses",
            json!({"name": "Aggregates", "maxStudentCount": capacity}),
        )
        .await
        .expect(201);
    text(&reply, "courseId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_subscribes_registered_students_only() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = aggregate_course(&server, 3).await;
    let subscriptions = format!("/aggregate/courses/{course}/subscriptions");
    for unknown in [NIL, RANDOM] {
        let detail = server
            .post(&subscriptions, json!({"studentId": unknown}))
            .await
            .problem(404);
        assert!(detail.contains(unknown), "{detail}");
        // The plain route answers the same.
        server.enroll(&course, unknown).await.problem(404);
    }
    let state = server
        .get(&format!("/aggregate/courses/{course}"))
        .await
        .expect(200);
    assert_eq!(state["enrollmentCount"], 0, "{state}");

    let ada = server.student("Ada", "Lovelace").await;
    let view = server
        .post(&subscriptions, json!({"studentId": ada}))
        .await
        .expect(201);
    assert_eq!(view["enrolledStudents"], json!([ada]));
    // An unknown course is still the first thing refused.
    server
        .post(
            &format!("/aggregate/courses/{RANDOM}/subscriptions"),
            json!({"studentId": ada}),
        )
        .await
        .problem(404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_bill_registered_students_only() {
    let Some(server) = Server::start().await else {
        return;
    };
    for unknown in [NIL, RANDOM] {
        let detail = server
            .post("/invoices", json!({"customerId": unknown, "amount": 10}))
            .await
            .problem(404);
        assert!(detail.contains(unknown), "{detail}");
    }
    let ada = server.student("Ada", "Lovelace").await;
    let first = server
        .post("/invoices", json!({"customerId": ada, "amount": 10}))
        .await
        .expect(201);
    assert_eq!(first["invoiceNumber"], 1, "refusals use no number");
    assert_eq!(items(&server.get("/invoices").await.expect(200)).len(), 1);
    server.stop().await;
}

/// A request whose field `field` holds `value`, beside valid other fields.
struct TextCase {
    path: String,
    body: Value,
    field: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_free_text_field_is_bounded_and_clean() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Texts", 5).await;
    let ada = server.student("Ada", "Lovelace").await;
    let cases = |value: &str| -> Vec<TextCase> {
        let token = TOKEN;
        let student = |first: &str, last: &str, email: &str| json!({"firstName": first, "lastName": last, "email": email});
        let course_body = |name: &str, description: &str| json!({"name": name, "description": description, "maxStudentCount": 3});
        let book = |title: &str, author: &str, isbn: &str| json!({"courseId": course, "title": title, "author": author, "isbn": isbn, "price": 10});
        let announcement = |title: &str, body: &str| json!({"title": title, "body": body, "idempotencyToken": token});
        let forget = |reason: &str, by: &str| json!({"reason": reason, "requestedBy": by});
        let announcements = format!("/courses/{course}/announcements");
        let forgetting = format!("/students/{ada}/forget");
        vec![
            TextCase {
                path: "/courses".into(),
                body: course_body(value, "d"),
                field: "name",
            },
            TextCase {
                path: "/courses".into(),
                body: course_body("n", value),
                field: "description",
            },
            TextCase {
                path: "/aggregate/courses".into(),
                body: course_body(value, "d"),
                field: "name",
            },
            TextCase {
                path: "/aggregate/courses".into(),
                body: course_body("n", value),
                field: "description",
            },
            TextCase {
                path: "/course-books".into(),
                body: book(value, "a", "i"),
                field: "title",
            },
            TextCase {
                path: "/course-books".into(),
                body: book("t", value, "i"),
                field: "author",
            },
            TextCase {
                path: "/course-books".into(),
                body: book("t", "a", value),
                field: "isbn",
            },
            TextCase {
                path: announcements.clone(),
                body: announcement(value, "b"),
                field: "title",
            },
            TextCase {
                path: announcements,
                body: announcement("t", value),
                field: "body",
            },
            TextCase {
                path: "/students".into(),
                body: student(value, "L", "x@example.edu"),
                field: "firstName",
            },
            TextCase {
                path: "/students".into(),
                body: student("F", value, "y@example.edu"),
                field: "lastName",
            },
            TextCase {
                path: "/students".into(),
                body: student("F", "L", value),
                field: "email",
            },
            TextCase {
                path: forgetting.clone(),
                body: forget(value, "dpo"),
                field: "reason",
            },
            TextCase {
                path: forgetting,
                body: forget("GDPR", value),
                field: "requestedBy",
            },
        ]
    };

    // Too long: a 100 KB value is refused, naming the field, and never echoed back whole.
    let huge = "x".repeat(100_000);
    for case in cases(&huge) {
        let detail = invalid(server.post(&case.path, case.body).await);
        assert!(
            detail.contains(case.field),
            "{} {}: {detail}",
            case.path,
            case.field
        );
        assert!(
            detail.len() < 200,
            "{} {}: the detail echoes the value: {} bytes",
            case.path,
            case.field,
            detail.len()
        );
    }
    // A NUL or an escape character: refused in every field, bodies included.
    for bad in ["a\u{0}b", "a\u{1b}[31mb"] {
        for case in cases(bad) {
            let detail = invalid(server.post(&case.path, case.body).await);
            assert!(
                detail.contains(case.field),
                "{} {bad:?}: {detail}",
                case.path
            );
        }
    }
    // A newline or a tab is refused in a one-line field.
    for case in cases("a\nb") {
        if !["description", "body"].contains(&case.field) {
            invalid(server.post(&case.path, case.body).await);
        }
    }

    // The limits: 200 characters for a name or title, 2000 for a description or body.
    for (path, ok, too_long) in [
        (
            "/aggregate/courses",
            json!({"name": "é".repeat(200), "maxStudentCount": 2}),
            json!({"name": "é".repeat(201), "maxStudentCount": 2}),
        ),
        (
            "/courses",
            json!({"name": "n", "description": "d".repeat(2000), "maxStudentCount": 2}),
            json!({"name": "n", "description": "d".repeat(2001), "maxStudentCount": 2}),
        ),
    ] {
        server.post(path, ok).await.expect(201);
        invalid(server.post(path, too_long).await);
    }
    let long_title = "t".repeat(200);
    server
        .post(
            "/course-books",
            json!({"courseId": course, "title": long_title, "price": 10}),
        )
        .await
        .expect(201);
    // Bodies and descriptions may hold newlines and tabs.
    let body = "Room 101\n\tbring a laptop\r\nand a pen";
    server
        .post(
            &format!("/courses/{course}/announcements"),
            json!({"title": "t".repeat(200), "body": body, "idempotencyToken": RANDOM}),
        )
        .await
        .expect(201);
    let posted = server
        .get(&format!("/courses/{course}/announcements"))
        .await
        .expect(200);
    assert_eq!(items(&posted)[0]["body"], body);
    let aggregate = server
        .post(
            "/aggregate/courses",
            json!({"name": "Lines", "description": "one\ntwo\tthree", "maxStudentCount": 2}),
        )
        .await
        .expect(201);
    let state = server
        .get(&format!(
            "/aggregate/courses/{}",
            text(&aggregate, "courseId")
        ))
        .await
        .expect(200);
    assert_eq!(state["description"], "one\ntwo\tthree");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgrade_below_the_courses_taken_is_refused() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let tier = format!("/students/{ada}/subscription");
    server
        .patch(&tier, json!({"enrollmentTier": "Master"}))
        .await
        .expect(200);
    for i in 0..5 {
        let course = server.course(&format!("Course {i}"), 10).await;
        server.enroll(&course, &ada).await.expect(201);
    }
    let detail = violated(
        server
            .patch(&tier, json!({"enrollmentTier": "Basic"}))
            .await,
    );
    assert!(detail.contains("5 courses"), "{detail}");
    // Standard allows exactly five.
    let standard = server
        .patch(&tier, json!({"enrollmentTier": "Standard"}))
        .await
        .expect(200);
    assert_eq!(standard["enrollmentTier"], "Standard");
    assert_eq!(standard["courseCount"], 5);
    violated(
        server
            .patch(&tier, json!({"enrollmentTier": "Basic"}))
            .await,
    );
    let student = server.get(&format!("/students/{ada}")).await.expect(200);
    assert_eq!(student["enrollmentTier"], "Standard");
    assert!(student["courseCount"].as_u64() <= student["maxCourses"].as_u64());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_the_current_value_again_is_a_no_op_on_every_route() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Same", 4).await;
    let limit = server
        .patch(
            &format!("/courses/{course}/student-limit"),
            json!({"maxStudentCount": 4}),
        )
        .await
        .expect(200);
    assert_eq!(limit["maxStudentCount"], 4);

    let book = server
        .post(
            "/course-books",
            json!({"courseId": course, "title": "Book", "price": 12.5}),
        )
        .await
        .expect(201);
    let book = text(&book, "bookId");
    let price = server
        .patch(
            &format!("/course-books/{book}/price"),
            json!({"newPrice": 12.5}),
        )
        .await
        .expect(200);
    assert_eq!(price["price"], 12.5);

    let aggregate = aggregate_course(&server, 3).await;
    let before = server
        .get(&format!("/aggregate/courses/{aggregate}"))
        .await
        .expect(200);
    let same = server
        .patch(
            &format!("/aggregate/courses/{aggregate}/capacity"),
            json!({"newCapacity": 3}),
        )
        .await
        .expect(200);
    assert_eq!(same["capacity"], 3);
    assert_eq!(same["version"], before["version"], "nothing was appended");

    let ada = server.student("Ada", "Lovelace").await;
    let tier = server
        .patch(
            &format!("/students/{ada}/subscription"),
            json!({"enrollmentTier": "Basic"}),
        )
        .await
        .expect(200);
    assert_eq!(tier["enrollmentTier"], "Basic");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_out_of_range_is_invalid_request_on_every_route() {
    let Some(server) = Server::start().await else {
        return;
    };
    let plain = invalid(
        server
            .post("/courses", json!({"name": "Zero", "maxStudentCount": 0}))
            .await,
    );
    let aggregate = invalid(
        server
            .post(
                "/aggregate/courses",
                json!({"name": "Zero", "maxStudentCount": 0}),
            )
            .await,
    );
    assert_eq!(plain, aggregate, "the same message");
    assert!(plain.contains("maxStudentCount"), "{plain}");

    let course = server.course("Some", 3).await;
    let change = invalid(
        server
            .patch(
                &format!("/courses/{course}/student-limit"),
                json!({"maxStudentCount": 0}),
            )
            .await,
    );
    assert_eq!(change, plain);
    let course = aggregate_course(&server, 3).await;
    for capacity in [0, 10_001] {
        let detail = invalid(
            server
                .patch(
                    &format!("/aggregate/courses/{course}/capacity"),
                    json!({"newCapacity": capacity}),
                )
                .await,
        );
        assert!(detail.contains("newCapacity"), "{detail}");
    }
    server.stop().await;
}
