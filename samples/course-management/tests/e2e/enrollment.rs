//! Enrolment: the course-subscriptions example — three rules in one decision.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{Server, concurrently, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_shows_on_both_sides_with_names() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Compilers", 5).await;
    let ada = server.student("Ada", "Lovelace").await;
    let reply = server.enroll(&course, &ada).await.expect(201);
    assert_eq!(reply, json!({"courseId": course, "studentId": ada}));

    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    assert_eq!(details["currentEnrollmentCount"], 1);
    assert_eq!(details["enrolledStudents"][0]["firstName"], "Ada");
    assert_eq!(details["enrolledStudents"][0]["lastName"], "Lovelace");
    let student = server.get(&format!("/students/{ada}")).await.expect(200);
    assert_eq!(student["courseCount"], 1);
    assert_eq!(student["courses"][0]["name"], "Compilers");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_refuses_with_its_own_message() {
    let Some(server) = Server::start().await else {
        return;
    };
    let tiny = server.course("Tiny", 1).await;
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    server.enroll(&tiny, &ada).await.expect(201);

    let again = server.enroll(&tiny, &ada).await.problem(400);
    assert!(again.contains("already enrolled"), "{again}");
    let full = server.enroll(&tiny, &alan).await.problem(400);
    assert!(full.contains("maximum capacity (1 student)"), "{full}");

    // Basic allows two courses.
    let second = server.course("Second", 10).await;
    let third = server.course("Third", 10).await;
    server.enroll(&second, &ada).await.expect(201);
    let limit = server.enroll(&third, &ada).await.problem(400);
    assert!(limit.contains("2 courses for the Basic tier"), "{limit}");
    server
        .patch(
            &format!("/students/{ada}/subscription"),
            json!({"enrollmentTier": "Standard"}),
        )
        .await
        .expect(200);
    server.enroll(&third, &ada).await.expect(201);

    let unknown = "00000000-0000-4000-8000-000000000003";
    let no_course = server.enroll(unknown, &ada).await.problem(404);
    assert!(no_course.contains("Course"), "{no_course}");
    let no_student = server.enroll(&second, unknown).await.problem(404);
    assert!(no_student.contains("Student"), "{no_student}");
    server
        .post(
            &format!("/courses/{second}/enrollments"),
            json!({"student": ada}),
        )
        .await
        .problem(400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_enrolments_fill_ten_seats_exactly() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Popular", 10).await;
    let mut students = Vec::new();
    for i in 0..20 {
        students.push(server.student(&format!("Student{i}"), "Parallel").await);
    }
    let replies = concurrently(20, |i| server.enroll(&course, &students[i])).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    for reply in &replies {
        // Refused because the course is full (400), or — when every retry met another
        // enrolment — a conflict (409). Never a 5xx, never an enrolment beyond capacity.
        assert!(
            [201, 400, 409].contains(&reply.status),
            "unexpected reply: {reply:?}"
        );
    }
    assert_eq!(created, 10, "{replies:?}");

    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    assert_eq!(details["currentEnrollmentCount"], 10);
    assert_eq!(details["isFull"], true);
    let enrolled: HashSet<String> = details["enrolledStudents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| text(s, "studentId"))
        .collect();
    assert_eq!(enrolled.len(), 10);
    let accepted: HashSet<String> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| text(&r.body, "studentId"))
        .collect();
    assert_eq!(enrolled, accepted);
    server.stop().await;
}
