//! `/students`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ForgetStudent, GetStudent, ListStudents, RegisterStudent, StudentDetails, StudentForgotten,
    StudentShortInfo, Tier, UpdateSubscription,
};
use crate::error::{AppError, AppResult};
use crate::http::{ApiJson, ApiPage, ApiPath, ApiQuery, AppState, created};
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    RegisterStudent,
    ListStudents,
    GetStudent,
    UpdateSubscription,
    ForgetStudent,
);

/// The students' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/students", get(list).post(register))
        .route("/students/{student_id}", get(details))
        .route(
            "/students/{student_id}/subscription",
            patch(update_subscription),
        )
        .route("/students/{student_id}/forget", post(forget))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    first_name: String,
    last_name: String,
    email: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    student_id: Uuid,
}

async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> AppResult<Response> {
    let student_id = state
        .send(RegisterStudent {
            first_name: request.first_name,
            last_name: request.last_name,
            email: request.email,
        })
        .await?;
    Ok(created(
        format!("/students/{student_id}"),
        Registered { student_id },
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFilter {
    tier: Option<String>,
    is_maxed_out: Option<bool>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ListFilter>,
    ApiPage(page): ApiPage,
) -> AppResult<Json<Listing<StudentShortInfo>>> {
    let tier = filter.tier.as_deref().map(parse_tier).transpose()?;
    let students = state
        .send(ListStudents {
            tier,
            is_maxed_out: filter.is_maxed_out,
            page,
        })
        .await?;
    Ok(Json(students))
}

async fn details(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
) -> AppResult<Json<StudentDetails>> {
    Ok(Json(state.send(GetStudent { student_id }).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionRequest {
    enrollment_tier: String,
}

/// `PATCH /students/{id}/subscription`: the current tier again answers 200 and changes
/// nothing (idempotent); a tier allowing fewer courses than the student takes is 400
/// rule-violated.
async fn update_subscription(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SubscriptionRequest>,
) -> AppResult<Json<StudentDetails>> {
    let tier = parse_tier(&request.enrollment_tier)?;
    state.send(UpdateSubscription { student_id, tier }).await?;
    Ok(Json(state.send(GetStudent { student_id }).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForgetRequest {
    reason: String,
    requested_by: String,
}

async fn forget(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ForgetRequest>,
) -> AppResult<Json<StudentForgotten>> {
    let forgotten = state
        .send(ForgetStudent {
            student_id,
            reason: request.reason,
            requested_by: request.requested_by,
        })
        .await?;
    Ok(Json(forgotten))
}

fn parse_tier(name: &str) -> AppResult<Tier> {
    Tier::parse(name).ok_or_else(|| {
        AppError::invalid(format!(
            "{} is not a tier; use Basic, Standard, Professional or Master.",
            crate::error::quote(name)
        ))
    })
}
