//! `/exams/{examId}/registration-tokens` and `/exam-registration-tokens/{tokenId}`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::{ExamToken, GetExamToken, IssueExamToken, RedeemExamToken, RevokeExamToken};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, created};

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    IssueExamToken,
    GetExamToken,
    RedeemExamToken,
    RevokeExamToken,
);

/// The tokens' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/exams/{exam_id}/registration-tokens", post(issue))
        .route("/exam-registration-tokens/{token_id}", get(one))
        .route("/exam-registration-tokens/{token_id}/redeem", post(redeem))
        .route("/exam-registration-tokens/{token_id}/revoke", post(revoke))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StudentRequest {
    student_id: Uuid,
}

async fn issue(
    State(state): State<AppState>,
    ApiPath(exam_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRequest>,
) -> AppResult<Response> {
    let token = state
        .send(IssueExamToken {
            exam_id,
            student_id: request.student_id,
        })
        .await?;
    Ok(created(
        format!("/exam-registration-tokens/{}", token.token_id),
        token,
    ))
}

async fn one(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
) -> AppResult<Json<ExamToken>> {
    Ok(Json(state.send(GetExamToken { token_id }).await?))
}

async fn redeem(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRequest>,
) -> AppResult<Json<ExamToken>> {
    Ok(Json(
        state
            .send(RedeemExamToken {
                token_id,
                student_id: request.student_id,
            })
            .await?,
    ))
}

async fn revoke(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
) -> AppResult<Json<ExamToken>> {
    Ok(Json(state.send(RevokeExamToken { token_id }).await?))
}
