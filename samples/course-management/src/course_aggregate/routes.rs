//! `/aggregate/courses`: the same course domain through the event-sourced aggregate.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    ChangeAggregateCapacity, CourseAggregateView, CreateAggregateCourse, GetAggregateCourse,
    SubscribeToAggregateCourse,
};
use crate::courses::{CreateRequest, Created};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, Conflict, Invalid, Missing, StudentRef, created};

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Aggregate (event-sourced)";

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    CreateAggregateCourse,
    GetAggregateCourse,
    ChangeAggregateCapacity,
    SubscribeToAggregateCourse,
);

/// The aggregate's routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(one))
        .routes(routes!(capacity))
        .routes(routes!(subscribe))
}

/// Create a course through the aggregate
///
/// The same body and checks as `POST /courses`.
#[utoipa::path(post, path = "/aggregate/courses", tag = TAG, operation_id = "createAggregateCourse",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created", body = Created,
            headers(("Location" = String, description = "the aggregate's URL"))),
        Invalid,
    ))]
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

/// The course aggregate's state
#[utoipa::path(get, path = "/aggregate/courses/{courseId}", tag = TAG,
    operation_id = "getAggregateCourse",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    responses(
        (status = 200, description = "The aggregate", body = CourseAggregateView),
        Invalid, Missing,
    ))]
async fn one(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseAggregateView>> {
    Ok(Json(state.send(GetAggregateCourse { course_id }).await?))
}

/// A new capacity.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NewCapacity, example = json!({"newCapacity": 40}))]
struct CapacityRequest {
    /// Not below the enrolment.
    #[schema(minimum = 1, maximum = 10000)]
    new_capacity: u32,
}

/// Change the aggregate's capacity
///
/// Saved with a tag-scoped condition after the loaded version, with bounded retries. The
/// current capacity again answers 200 and changes nothing; out of range is 400
/// invalid-request, below the enrolment 400 rule-violated.
#[utoipa::path(patch, path = "/aggregate/courses/{courseId}/capacity", tag = TAG,
    operation_id = "changeAggregateCapacity",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    request_body = CapacityRequest,
    responses(
        (status = 200, description = "The aggregate with its new capacity", body = CourseAggregateView),
        Invalid, Missing, Conflict,
    ))]
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

/// Enrol a student through the aggregate
///
/// Capacity and duplicates only; 404 for an unknown course or an unregistered student,
/// decided on with the course's events in one append condition.
#[utoipa::path(post, path = "/aggregate/courses/{courseId}/subscriptions", tag = TAG,
    operation_id = "subscribeToAggregateCourse",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    request_body = StudentRef,
    responses(
        (status = 201, description = "Enrolled", body = CourseAggregateView,
            headers(("Location" = String, description = "the aggregate's URL"))),
        Invalid, Missing, Conflict,
    ))]
async fn subscribe(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRef>,
) -> AppResult<Response> {
    let view = state
        .send(SubscribeToAggregateCourse {
            course_id,
            student_id: request.student_id,
        })
        .await?;
    Ok(created(format!("/aggregate/courses/{course_id}"), view))
}
