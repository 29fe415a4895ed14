//! `/courses`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    ChangeCourseLimit, CourseDetails, CourseShortInfo, CreateCourse, GetCourse, ListCourses,
};
use crate::error::AppResult;
use crate::http::{
    ApiJson, ApiPage, ApiPath, ApiQuery, AppState, Conflict, Invalid, Missing, PageQuery,
    Unavailable, created,
};
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (CreateCourse, ListCourses, GetCourse, ChangeCourseLimit);

/// The courses' routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(details))
        .routes(routes!(change_limit))
}

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Courses";

/// A course to create (also through the aggregate, `POST /aggregate/courses`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateCourse, example = json!({
    "name": "Event sourcing", "description": "Decisions from events.", "maxStudentCount": 30
}))]
pub struct CreateRequest {
    /// One line (no control characters), trimmed.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Any lines (no control characters but newlines and tabs).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// The student limit.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_student_count: u32,
}

/// The created course's id.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CourseCreated)]
pub struct Created {
    /// The course's id.
    pub course_id: Uuid,
}

/// Create a course
#[utoipa::path(post, path = "/courses", tag = TAG, operation_id = "createCourse",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created", body = Created,
            headers(("Location" = String, description = "the course's URL"))),
        Invalid,
    ))]
async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> AppResult<Response> {
    let course_id = state
        .send(CreateCourse {
            name: request.name,
            description: request.description,
            max_student_count: request.max_student_count,
        })
        .await?;
    Ok(created(
        format!("/courses/{course_id}"),
        Created { course_id },
    ))
}

/// The filter of the courses' list.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only full (true) or open (false) courses.
    is_full: Option<bool>,
}

/// A page of the courses
///
/// In id order, optionally only full or open ones.
#[utoipa::path(get, path = "/courses", tag = TAG, operation_id = "listCourses",
    params(ListFilter, PageQuery),
    responses(
        (status = 200, description = "One page", body = Listing<CourseShortInfo>),
        Invalid, Unavailable,
    ))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ListFilter>,
    ApiPage(page): ApiPage,
) -> AppResult<Json<Listing<CourseShortInfo>>> {
    Ok(Json(
        state
            .send(ListCourses {
                is_full: filter.is_full,
                page,
            })
            .await?,
    ))
}

/// A course with its students' names
#[utoipa::path(get, path = "/courses/{courseId}", tag = TAG, operation_id = "getCourse",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    responses(
        (status = 200, description = "The course", body = CourseDetails),
        Invalid, Missing, Unavailable,
    ))]
async fn details(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseDetails>> {
    Ok(Json(state.send(GetCourse { course_id }).await?))
}

/// A new student limit.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StudentLimit, example = json!({"maxStudentCount": 40}))]
struct LimitRequest {
    /// Not below the course's enrolment.
    #[schema(minimum = 1, maximum = 10000)]
    max_student_count: u32,
}

/// Change a course's student limit
///
/// Not below its enrolment (400 rule-violated); the current limit again answers 200 and
/// changes nothing.
#[utoipa::path(patch, path = "/courses/{courseId}/student-limit", tag = TAG,
    operation_id = "changeStudentLimit",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    request_body = LimitRequest,
    responses(
        (status = 200, description = "The course with its new limit", body = CourseDetails),
        Invalid, Missing, Conflict,
    ))]
async fn change_limit(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<LimitRequest>,
) -> AppResult<Json<CourseDetails>> {
    state
        .send(ChangeCourseLimit {
            course_id,
            max_student_count: request.max_student_count,
        })
        .await?;
    Ok(Json(state.send(GetCourse { course_id }).await?))
}
