//! The DCB consistency scenarios, in the style of the dcb.events load-test suite, against the
//! running server: 20 parallel writers on one consistency boundary never break its rule, and
//! parallel writers on unrelated boundaries never fail one another.
//!
//! Each scenario runs `OPOSSUM_DCB_ROUNDS` times (default 2) on fresh data.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;

use crate::support::{Reply, Server, concurrently};

/// Parallel writers per scenario.
const WRITERS: usize = 20;

fn rounds() -> usize {
    std::env::var("OPOSSUM_DCB_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2)
}

/// How many replies had each status.
fn statuses(replies: &[Reply]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for reply in replies {
        *counts.entry(reply.status).or_default() += 1;
    }
    counts
}

/// Checks that every reply is one of `allowed`, and that the refusals are the rule's problem
/// (`rule-violated`) or a conflict that retries could not resolve; returns the counts.
#[track_caller]
fn only(replies: &[Reply], success: u16, allowed: &[u16]) -> BTreeMap<u16, usize> {
    let counts = statuses(replies);
    for reply in replies {
        assert!(
            reply.status == success || allowed.contains(&reply.status),
            "unexpected reply: {reply:?} (all: {counts:?})"
        );
        match reply.status {
            400 => assert_eq!(reply.body["type"], "/problems/rule-violated", "{reply:?}"),
            409 => assert_eq!(
                reply.body["type"], "/problems/concurrency-conflict",
                "{reply:?}"
            ),
            _ => {}
        }
    }
    counts
}

async fn students(server: &Server, n: usize) -> Vec<String> {
    let replies = concurrently(n, |i| {
        server.post(
            "/students",
            json!({"firstName": "S", "lastName": format!("{i}"), "email": format!("s{i}.{}@example.edu", Uuid::new_v4())}),
        )
    })
    .await;
    replies
        .into_iter()
        .map(|r| r.created("studentId"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_enrolments_never_overfill_a_course() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let capacity = 5;
        let course = server.course("Contended", capacity).await;
        let students = students(&server, WRITERS).await;
        let replies = concurrently(WRITERS, |i| server.enroll(&course, &students[i])).await;
        let counts = only(&replies, 201, &[400, 409]);
        let enrolled = counts.get(&201).copied().unwrap_or(0);
        let conflicts = counts.get(&409).copied().unwrap_or(0);
        assert!(enrolled <= capacity as usize, "{counts:?}");
        // Seats stay free only for writers whose retries all met a conflict.
        assert!(enrolled + conflicts >= capacity as usize, "{counts:?}");
        let details = server.get(&format!("/courses/{course}")).await.expect(200);
        assert_eq!(details["currentEnrollmentCount"], enrolled, "{details}");
        assert_eq!(
            details["enrolledStudents"].as_array().unwrap().len(),
            enrolled
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_enrolments_never_exceed_a_students_tier() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let student = students(&server, 1).await.remove(0);
        let mut courses = Vec::new();
        for i in 0..WRITERS {
            courses.push(server.course(&format!("Course {i}"), 100).await);
        }
        let replies = concurrently(WRITERS, |i| server.enroll(&courses[i], &student)).await;
        let counts = only(&replies, 201, &[400, 409]);
        let enrolled = counts.get(&201).copied().unwrap_or(0);
        let basic = 2;
        assert!(enrolled <= basic, "{counts:?}");
        assert!(
            enrolled + counts.get(&409).copied().unwrap_or(0) >= basic,
            "{counts:?}"
        );
        let details = server
            .get(&format!("/students/{student}"))
            .await
            .expect(200);
        assert_eq!(details["courseCount"], enrolled, "{details}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_registrations_take_an_email_once() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let email = format!("same.{}@example.edu", Uuid::new_v4());
        let replies = concurrently(WRITERS, |i| {
            // The same address in other cases is the same address.
            let email = if i % 2 == 0 {
                email.clone()
            } else {
                email.to_uppercase()
            };
            server.post(
                "/students",
                json!({"firstName": "Twin", "lastName": format!("{i}"), "email": email}),
            )
        })
        .await;
        // One append with a condition and no read: a loser is refused, never retried.
        let counts = only(&replies, 201, &[400]);
        assert_eq!(counts.get(&201), Some(&1), "{counts:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_invoices_get_gap_free_numbers() {
    let Some(server) = Server::start().await else {
        return;
    };
    let customer = students(&server, 1).await.remove(0);
    let mut numbers = Vec::new();
    for _ in 0..rounds() {
        let replies = concurrently(WRITERS, |_| {
            server.post("/invoices", json!({"customerId": customer, "amount": 10}))
        })
        .await;
        only(&replies, 201, &[409]);
        numbers.extend(
            replies
                .iter()
                .filter(|r| r.status == 201)
                .map(|r| r.body["invoiceNumber"].as_u64().unwrap()),
        );
    }
    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected, "numbers repeat or leave gaps");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_redemptions_use_a_token_once() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let student = students(&server, 1).await.remove(0);
        let token = server
            .post(
                &format!("/exams/{}/registration-tokens", Uuid::new_v4()),
                json!({"studentId": student}),
            )
            .await
            .created("tokenId");
        let replies = concurrently(WRITERS, |_| {
            server.post(
                &format!("/exam-registration-tokens/{token}/redeem"),
                json!({"studentId": student}),
            )
        })
        .await;
        let counts = only(&replies, 200, &[400, 409]);
        assert!(counts.get(&200).copied().unwrap_or(0) <= 1, "{counts:?}");
        let status = server
            .get(&format!("/exam-registration-tokens/{token}"))
            .await
            .expect(200);
        let redeemed = counts.get(&200) == Some(&1);
        assert_eq!(
            status["status"] == "Redeemed",
            redeemed,
            "{status} {counts:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_posts_with_one_idempotency_token_post_once() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let course = server.course("Announced", 10).await;
        let token = Uuid::new_v4();
        let replies = concurrently(WRITERS, |i| {
            server.post(
                &format!("/courses/{course}/announcements"),
                json!({"title": format!("Post {i}"), "idempotencyToken": token}),
            )
        })
        .await;
        let counts = only(&replies, 201, &[400, 409]);
        assert!(counts.get(&201).copied().unwrap_or(0) <= 1, "{counts:?}");
        let page = server
            .get(&format!("/courses/{course}/announcements"))
            .await
            .expect(200);
        let posted = page["items"].as_array().unwrap().len();
        assert_eq!(posted, counts.get(&201).copied().unwrap_or(0), "{page}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_subscriptions_never_overfill_an_aggregate() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        let capacity = 5;
        let course = server
            .post(
                "/aggregate/courses",
                json!({"name": "Aggregate", "maxStudentCount": capacity}),
            )
            .await
            .created("courseId");
        let students = students(&server, WRITERS).await;
        let replies = concurrently(WRITERS, |i| {
            server.post(
                &format!("/aggregate/courses/{course}/subscriptions"),
                json!({"studentId": students[i]}),
            )
        })
        .await;
        let counts = only(&replies, 201, &[400, 409]);
        let enrolled = counts.get(&201).copied().unwrap_or(0);
        assert!(enrolled <= capacity, "{counts:?}");
        let state = server
            .get(&format!("/aggregate/courses/{course}"))
            .await
            .expect(200);
        assert_eq!(state["enrollmentCount"], enrolled, "{state}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_writes_on_unrelated_boundaries_never_fail() {
    let Some(server) = Server::start().await else {
        return;
    };
    for _ in 0..rounds() {
        // Registrations with distinct emails: distinct tags, no conflict.
        let students = students(&server, WRITERS).await;
        let mut courses = Vec::new();
        for i in 0..WRITERS {
            courses.push(server.course(&format!("Own {i}"), 1).await);
        }
        // Each writer enrols its own student in its own course: no boundary is shared, so no
        // append condition of one can fail because of another's event.
        let replies = concurrently(WRITERS, |i| server.enroll(&courses[i], &students[i])).await;
        assert_eq!(statuses(&replies), BTreeMap::from([(201, WRITERS)]));
        // Each writer changes its own course's limit, then posts to it.
        let replies = concurrently(WRITERS, |i| {
            server.patch(
                &format!("/courses/{}/student-limit", courses[i]),
                json!({"maxStudentCount": 2}),
            )
        })
        .await;
        assert_eq!(statuses(&replies), BTreeMap::from([(200, WRITERS)]));
        let replies = concurrently(WRITERS, |i| {
            server.post(
                &format!("/courses/{}/announcements", courses[i]),
                json!({"title": "Mine", "idempotencyToken": Uuid::new_v4()}),
            )
        })
        .await;
        assert_eq!(statuses(&replies), BTreeMap::from([(201, WRITERS)]));
        // And changes its own student's tier.
        let replies = concurrently(WRITERS, |i| {
            server.patch(
                &format!("/students/{}/subscription", students[i]),
                json!({"enrollmentTier": "Standard"}),
            )
        })
        .await;
        assert_eq!(statuses(&replies), BTreeMap::from([(200, WRITERS)]));
    }
    server.stop().await;
}
