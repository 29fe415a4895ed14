//! Exam registration tokens: the opt-in-token example — issue, redeem once, revoke.

use serde_json::json;

use crate::support::{Server, concurrently, text};

const EXAM: &str = "00000000-0000-4000-8000-0000000e0a01";

async fn issue(server: &Server, student: &str) -> String {
    let reply = server
        .post(
            &format!("/exams/{EXAM}/registration-tokens"),
            json!({"studentId": student}),
        )
        .await
        .expect(201);
    assert_eq!(reply["status"], "Issued");
    assert_eq!(reply["examId"], EXAM);
    text(&reply, "tokenId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_redeemed_once_by_its_student() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    let token = issue(&server, &ada).await;
    let redeem = |student: &str| {
        server.post(
            &format!("/exam-registration-tokens/{token}/redeem"),
            json!({"studentId": student}),
        )
    };

    let stranger = redeem(&alan).await.problem(400);
    assert!(stranger.contains("another student"), "{stranger}");
    let redeemed = redeem(&ada).await.expect(200);
    assert_eq!(redeemed["status"], "Redeemed");
    let twice = redeem(&ada).await.problem(400);
    assert!(twice.contains("already been used"), "{twice}");
    let late = server
        .post(
            &format!("/exam-registration-tokens/{token}/revoke"),
            json!({}),
        )
        .await
        .problem(400);
    assert!(late.contains("already been used"), "{late}");
    let status = server
        .get(&format!("/exam-registration-tokens/{token}"))
        .await
        .expect(200);
    assert_eq!(status["status"], "Redeemed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_cannot_be_redeemed_and_unknown_ones_are_missing() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let token = issue(&server, &ada).await;
    let revoked = server
        .post(
            &format!("/exam-registration-tokens/{token}/revoke"),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(revoked["status"], "Revoked");
    let detail = server
        .post(
            &format!("/exam-registration-tokens/{token}/redeem"),
            json!({"studentId": ada}),
        )
        .await
        .problem(400);
    assert!(detail.contains("revoked"), "{detail}");
    server
        .post(
            &format!("/exam-registration-tokens/{token}/revoke"),
            json!({}),
        )
        .await
        .problem(400);

    let unknown = "00000000-0000-4000-8000-000000000404";
    server
        .get(&format!("/exam-registration-tokens/{unknown}"))
        .await
        .problem(404);
    server
        .post(
            &format!("/exam-registration-tokens/{unknown}/redeem"),
            json!({"studentId": ada}),
        )
        .await
        .problem(404);
    server
        .post(
            &format!("/exams/{EXAM}/registration-tokens"),
            json!({"studentId": unknown}),
        )
        .await
        .problem(404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_one_token_succeed_once() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let token = issue(&server, &ada).await;
    let replies = concurrently(6, |_| {
        server.post(
            &format!("/exam-registration-tokens/{token}/redeem"),
            json!({"studentId": ada}),
        )
    })
    .await;
    let redeemed = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(redeemed, 1, "{replies:?}");
    assert!(
        replies.iter().all(|r| [200, 400, 409].contains(&r.status)),
        "{replies:?}"
    );
    server.stop().await;
}
