//! `/students`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    ForgetStudent, GetStudent, ListStudents, RegisterStudent, StudentDetails, StudentForgotten,
    StudentShortInfo, Tier, UpdateSubscription,
};
use crate::error::{AppError, AppResult};
use crate::http::{
    ApiJson, ApiPage, ApiPath, ApiQuery, AppState, Conflict, Invalid, Missing, PageQuery,
    Unavailable, created,
};
use crate::paging::Listing;

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Students";

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    RegisterStudent,
    ListStudents,
    GetStudent,
    UpdateSubscription,
    ForgetStudent,
);

/// The students' routes, each with its operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(details))
        .routes(routes!(update_subscription))
        .routes(routes!(forget))
}

/// A student to register.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RegisterStudent, example = json!({
    "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"
}))]
struct RegisterRequest {
    /// One line (no control characters), trimmed.
    #[schema(min_length = 1, max_length = 100)]
    first_name: String,
    /// One line (no control characters), trimmed.
    #[schema(min_length = 1, max_length = 100)]
    last_name: String,
    /// An address no other student registered with, in any case.
    #[schema(min_length = 3, max_length = 254)]
    email: String,
}

/// The registered student's id.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StudentCreated)]
struct Registered {
    student_id: Uuid,
}

/// Register a student
///
/// The email must be unused, in any case (the unique-username example: one append with a
/// condition on the email's tag, no read).
#[utoipa::path(post, path = "/students", tag = TAG, operation_id = "registerStudent",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = Registered,
            headers(("Location" = String, description = "the student's URL"))),
        Invalid, Conflict,
    ))]
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

/// The filters of the students' list.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only students of this tier (in any case).
    #[param(value_type = Option<Tier>)]
    tier: Option<String>,
    /// Only students who reached (true) or did not reach (false) their course limit.
    is_maxed_out: Option<bool>,
}

/// A page of the students
///
/// In id order, optionally only one tier's and whether they reached their course limit.
#[utoipa::path(get, path = "/students", tag = TAG, operation_id = "listStudents",
    params(ListFilter, PageQuery),
    responses(
        (status = 200, description = "One page", body = Listing<StudentShortInfo>),
        Invalid, Unavailable,
    ))]
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

/// A student with their courses
#[utoipa::path(get, path = "/students/{studentId}", tag = TAG, operation_id = "getStudent",
    params(("studentId" = Uuid, Path, description = "The student's id")),
    responses(
        (status = 200, description = "The student", body = StudentDetails),
        Invalid, Missing, Unavailable,
    ))]
async fn details(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
) -> AppResult<Json<StudentDetails>> {
    Ok(Json(state.send(GetStudent { student_id }).await?))
}

/// A new subscription tier.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Subscription, example = json!({"enrollmentTier": "Standard"}))]
struct SubscriptionRequest {
    /// The tier (in any case).
    #[schema(value_type = Tier)]
    enrollment_tier: String,
}

/// Change a student's subscription tier
///
/// The current tier again answers 200 and changes nothing; a tier allowing fewer courses than
/// the student takes is 400 rule-violated.
#[utoipa::path(patch, path = "/students/{studentId}/subscription", tag = TAG,
    operation_id = "changeSubscription",
    params(("studentId" = Uuid, Path, description = "The student's id")),
    request_body = SubscriptionRequest,
    responses(
        (status = 200, description = "The student with the new tier", body = StudentDetails),
        Invalid, Missing, Conflict,
    ))]
async fn update_subscription(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SubscriptionRequest>,
) -> AppResult<Json<StudentDetails>> {
    let tier = parse_tier(&request.enrollment_tier)?;
    state.send(UpdateSubscription { student_id, tier }).await?;
    Ok(Json(state.send(GetStudent { student_id }).await?))
}

/// Why and for whom a student is forgotten.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ForgetStudent, example = json!({
    "reason": "erasure request 2026-114", "requestedBy": "dpo@example.com"
}))]
struct ForgetRequest {
    /// Why, such as the erasure request's reference; one line.
    #[schema(min_length = 1, max_length = 200)]
    reason: String,
    /// Who asked: the `SubjectForgotten` event's `user_id`; one line.
    #[schema(min_length = 1, max_length = 200)]
    requested_by: String,
}

/// Forget a student
///
/// Erases their names and email from every event (crypto-shredding) and read model; the
/// events stay and the chain stays intact. Sent again, `alreadyForgotten` is true.
#[utoipa::path(post, path = "/students/{studentId}/forget", tag = TAG,
    operation_id = "forgetStudent",
    params(("studentId" = Uuid, Path, description = "The student's id")),
    request_body = ForgetRequest,
    responses(
        (status = 200, description = "Forgotten", body = StudentForgotten),
        Invalid, Missing, Conflict,
    ))]
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
