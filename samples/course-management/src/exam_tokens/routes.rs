//! `/exams/{examId}/registration-tokens` and `/exam-registration-tokens/{tokenId}`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ExamToken, GetExamToken, IssueExamToken, RedeemExamToken, RevokeExamToken};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, Conflict, Invalid, Missing, StudentRef, created};

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Exam registration";

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    IssueExamToken,
    GetExamToken,
    RedeemExamToken,
    RevokeExamToken,
);

/// The tokens' routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue))
        .routes(routes!(one))
        .routes(routes!(redeem))
        .routes(routes!(revoke))
}

/// Issue a registration token
///
/// A single-use token for one student to register for the exam (the opt-in-token example).
#[utoipa::path(post, path = "/exams/{examId}/registration-tokens", tag = TAG,
    operation_id = "issueExamToken",
    params(("examId" = Uuid, Path, description = "The exam's id")),
    request_body = StudentRef,
    responses(
        (status = 201, description = "Issued", body = ExamToken,
            headers(("Location" = String, description = "the token's URL"))),
        Invalid, Missing, Conflict,
    ))]
async fn issue(
    State(state): State<AppState>,
    ApiPath(exam_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRef>,
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

/// A token's status
#[utoipa::path(get, path = "/exam-registration-tokens/{tokenId}", tag = TAG,
    operation_id = "getExamToken",
    params(("tokenId" = Uuid, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The token", body = ExamToken),
        Invalid, Missing,
    ))]
async fn one(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
) -> AppResult<Json<ExamToken>> {
    Ok(Json(state.send(GetExamToken { token_id }).await?))
}

/// Redeem a token
///
/// Once, by its student, unless it was revoked.
#[utoipa::path(post, path = "/exam-registration-tokens/{tokenId}/redeem", tag = TAG,
    operation_id = "redeemExamToken",
    params(("tokenId" = Uuid, Path, description = "The token's id")),
    request_body = StudentRef,
    responses(
        (status = 200, description = "Redeemed", body = ExamToken),
        Invalid, Missing, Conflict,
    ))]
async fn redeem(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRef>,
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

/// Revoke a token
///
/// Only a token that was not used yet.
#[utoipa::path(post, path = "/exam-registration-tokens/{tokenId}/revoke", tag = TAG,
    operation_id = "revokeExamToken",
    params(("tokenId" = Uuid, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = ExamToken),
        Invalid, Missing, Conflict,
    ))]
async fn revoke(
    State(state): State<AppState>,
    ApiPath(token_id): ApiPath<Uuid>,
) -> AppResult<Json<ExamToken>> {
    Ok(Json(state.send(RevokeExamToken { token_id }).await?))
}
