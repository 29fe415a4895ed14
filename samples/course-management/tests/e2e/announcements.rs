//! Announcements: the prevent-record-duplication example — one post per idempotency token,
//! freed again by a retraction.

use serde_json::json;

use crate::support::{Server, concurrently, items, text};

const TOKEN: &str = "00000000-0000-4000-8000-00000000a001";
const OTHER_TOKEN: &str = "00000000-0000-4000-8000-00000000a002";

/// The titles of a course's live announcements in the order they were posted: the list is in
/// id order (the order its pages follow), and each announcement carries its position.
async fn titles_in_posting_order(server: &Server, course: &str) -> Vec<String> {
    let mut live = items(
        &server
            .get(&format!("/courses/{course}/announcements"))
            .await
            .expect(200),
    );
    live.sort_by_key(|a| a["position"].as_u64().unwrap());
    live.iter().map(|a| text(a, "title")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_posts_once_until_its_announcement_is_retracted() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Rust", 10).await;
    let post = |token: &str, title: &str| {
        server.post(
            &format!("/courses/{course}/announcements"),
            json!({"title": title, "body": "Room 101", "idempotencyToken": token}),
        )
    };
    let first = text(
        &post(TOKEN, "Exam moved").await.expect(201),
        "announcementId",
    );
    let retry = post(TOKEN, "Exam moved").await.problem(400);
    assert!(retry.contains("already submitted"), "{retry}");
    post(OTHER_TOKEN, "Lab notes").await.expect(201);

    let titles = titles_in_posting_order(&server, &course).await;
    assert_eq!(titles, ["Exam moved", "Lab notes"]);

    let retracted = server
        .post(
            &format!("/courses/{course}/announcements/{first}/retract"),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(retracted["retracted"], true);
    let again = server
        .post(
            &format!("/courses/{course}/announcements/{first}/retract"),
            json!({}),
        )
        .await
        .problem(400);
    assert!(again.contains("already retracted"), "{again}");

    // The token is free again.
    post(TOKEN, "Exam moved (corrected)").await.expect(201);
    let titles = titles_in_posting_order(&server, &course).await;
    assert_eq!(titles, ["Lab notes", "Exam moved (corrected)"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_retries_with_one_token_posts_once() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Rust", 10).await;
    let replies = concurrently(6, |_| {
        server.post(
            &format!("/courses/{course}/announcements"),
            json!({"title": "Once", "idempotencyToken": TOKEN}),
        )
    })
    .await;
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "{replies:?}"
    );
    assert!(
        replies.iter().all(|r| [201, 400, 409].contains(&r.status)),
        "{replies:?}"
    );
    let live = server
        .get(&format!("/courses/{course}/announcements"))
        .await
        .expect(200);
    assert_eq!(items(&live).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_need_an_existing_course_and_announcement() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Rust", 10).await;
    let unknown = "00000000-0000-4000-8000-00000000dead";
    server
        .post(
            &format!("/courses/{unknown}/announcements"),
            json!({"title": "x", "idempotencyToken": TOKEN}),
        )
        .await
        .problem(404);
    server
        .post(
            &format!("/courses/{course}/announcements/{unknown}/retract"),
            json!({}),
        )
        .await
        .problem(404);
    server
        .get(&format!("/courses/{unknown}/announcements"))
        .await
        .problem(404);
    server
        .post(
            &format!("/courses/{course}/announcements"),
            json!({"title": "no token"}),
        )
        .await
        .problem(400);
    server.stop().await;
}
