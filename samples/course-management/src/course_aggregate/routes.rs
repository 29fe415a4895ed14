//! `/aggregate/courses`: the same course domain through the event-sourced aggregate.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ChangeAggregateCapacity, CourseAggregateView, CreateAggregateCourse, GetAggregateCourse,
    SubscribeToAggregateCourse,
};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, created};

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    CreateAggregateCourse,
    GetAggregateCourse,
    ChangeAggregateCapacity,
    SubscribeToAggregateCourse,
);

/// The aggregate's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/aggregate/courses", post(create))
        .route("/aggregate/courses/{course_id}", get(one))
        .route("/aggregate/courses/{course_id}/capacity", patch(capacity))
        .route(
            "/aggregate/courses/{course_id}/subscriptions",
            post(subscribe),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
    #[serde(default)]
    description: String,
    max_student_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    course_id: Uuid,
}

/// `POST /aggregate/courses`: the name (1 to 200 characters, one line), the description (at
/// most 2000) and `maxStudentCount` (1 to 10,000) are checked as `POST /courses` checks them:
/// 400 invalid-request naming the field.
async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> AppResult<Response> {
    let course_id = state
        .send(CreateAggregateCourse {
            name: request.name,
            description: request.description,
            max_student_count: request.max_student_count,
        })
        .await?;
    Ok(created(
        format!("/aggregate/courses/{course_id}"),
        Created { course_id },
    ))
}

async fn one(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseAggregateView>> {
    Ok(Json(state.send(GetAggregateCourse { course_id }).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CapacityRequest {
    new_capacity: u32,
}

/// `PATCH /aggregate/courses/{id}/capacity`: the current capacity again answers 200 and
/// changes nothing (idempotent, like a course's student limit and a book's price); a capacity
/// out of range is 400 invalid-request, one below the enrolment 400 rule-violated.
async fn capacity(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<CapacityRequest>,
) -> AppResult<Json<CourseAggregateView>> {
    Ok(Json(
        state
            .send(ChangeAggregateCapacity {
                course_id,
                new_capacity: request.new_capacity,
            })
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeRequest {
    student_id: Uuid,
}

/// `POST /aggregate/courses/{id}/subscriptions`: 404 for an unknown course or an unknown
/// (unregistered) student, decided on with the course's events in one append condition.
async fn subscribe(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SubscribeRequest>,
) -> AppResult<Response> {
    let view = state
        .send(SubscribeToAggregateCourse {
            course_id,
            student_id: request.student_id,
        })
        .await?;
    Ok(created(format!("/aggregate/courses/{course_id}"), view))
}
