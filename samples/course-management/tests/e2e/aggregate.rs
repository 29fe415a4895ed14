//! The event-sourced aggregate: tag-scoped condition after the loaded version, bounded retries.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{Server, concurrently, text};

async fn aggregate_course(server: &Server, capacity: u32) -> String {
    let reply = server
        .post(
            "/aggregate/courses",
            json!({"name": "Aggregates", "description": "DDD", "maxStudentCount": capacity}),
        )
        .await
        .expect(201);
    text(&reply, "courseId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_enforces_its_rules() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = aggregate_course(&server, 1).await;
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    let subscribe = |student: &str| {
        server.post(
            &format!("/aggregate/courses/{course}/subscriptions"),
            json!({"studentId": student}),
        )
    };

    let view = subscribe(&ada).await.expect(201);
    assert_eq!(view["enrollmentCount"], 1);
    let full = subscribe(&alan).await.problem(400);
    assert!(full.contains("fully booked"), "{full}");
    // The current capacity again is a no-op (idempotent, like a course's student limit).
    let same = server
        .patch(
            &format!("/aggregate/courses/{course}/capacity"),
            json!({"newCapacity": 1}),
        )
        .await
        .expect(200);
    assert_eq!(same["capacity"], 1);
    let grown = server
        .patch(
            &format!("/aggregate/courses/{course}/capacity"),
            json!({"newCapacity": 2}),
        )
        .await
        .expect(200);
    assert_eq!(grown["capacity"], 2);
    let again = subscribe(&ada).await.problem(400);
    assert!(again.contains("already enrolled"), "{again}");
    let subscribed = subscribe(&alan).await.expect(201);
    let below = server
        .patch(
            &format!("/aggregate/courses/{course}/capacity"),
            json!({"newCapacity": 1}),
        )
        .await
        .problem(400);
    assert!(below.contains("below the 2 students"), "{below}");

    // The aggregate writes the same events: the decision-model side sees them.
    let state = server
        .get(&format!("/aggregate/courses/{course}"))
        .await
        .expect(200);
    assert_eq!(state["enrollmentCount"], 2);
    assert!(state["version"].as_u64().unwrap() > 0);
    // A reply after a save shows the version the save made, as a reload does.
    assert_eq!(
        subscribed["version"], state["version"],
        "{subscribed} {state}"
    );
    assert!(
        subscribed["version"].as_u64() > grown["version"].as_u64(),
        "{subscribed} {grown}"
    );
    let details = server.get(&format!("/courses/{course}")).await.expect(200);
    assert_eq!(details["currentEnrollmentCount"], 2);
    assert_eq!(details["enrolledStudents"][1]["firstName"], "Alan");
    let student = server.get(&format!("/students/{ada}")).await.expect(200);
    assert_eq!(student["courseCount"], 1);

    let unknown = "00000000-0000-4000-8000-000000000a99";
    server
        .get(&format!("/aggregate/courses/{unknown}"))
        .await
        .problem(404);
    server
        .patch(
            &format!("/aggregate/courses/{unknown}/capacity"),
            json!({"newCapacity": 3}),
        )
        .await
        .problem(404);
    server
        .post(
            "/aggregate/courses",
            json!({"name": "", "maxStudentCount": 3}),
        )
        .await
        .problem(400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_subscriptions_never_overbook_the_aggregate() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = aggregate_course(&server, 5).await;
    let mut students = Vec::new();
    for i in 0..8 {
        students.push(server.student(&format!("Agg{i}"), "Parallel").await);
    }
    let replies = concurrently(8, |i| {
        server.post(
            &format!("/aggregate/courses/{course}/subscriptions"),
            json!({"studentId": students[i]}),
        )
    })
    .await;
    for reply in &replies {
        assert!([201, 400, 409].contains(&reply.status), "{reply:?}");
    }
    let accepted: HashSet<&str> = replies
        .iter()
        .zip(&students)
        .filter(|(r, _)| r.status == 201)
        .map(|(_, s)| s.as_str())
        .collect();
    assert!(!accepted.is_empty());
    let state = server
        .get(&format!("/aggregate/courses/{course}"))
        .await
        .expect(200);
    let enrolled: HashSet<&str> = state["enrolledStudents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(enrolled.len() <= 5, "{state}");
    assert_eq!(
        enrolled, accepted,
        "every 201 is enrolled, and nothing else"
    );
    server.stop().await;
}
