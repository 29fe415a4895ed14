//! `/courses`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ChangeCourseLimit, CourseDetails, CourseShortInfo, CreateCourse, GetCourse, ListCourses,
};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPage, ApiPath, ApiQuery, AppState, created};
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (CreateCourse, ListCourses, GetCourse, ChangeCourseLimit);

/// The courses' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/courses", get(list).post(create))
        .route("/courses/{course_id}", get(details))
        .route("/courses/{course_id}/student-limit", patch(change_limit))
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

/// `POST /courses`: a name of 1 to 200 characters on one line, a description of at most 2000
/// (newlines and tabs allowed), `maxStudentCount` 1 to 10,000; 400 invalid-request otherwise.
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFilter {
    is_full: Option<bool>,
}

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

async fn details(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseDetails>> {
    Ok(Json(state.send(GetCourse { course_id }).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LimitRequest {
    max_student_count: u32,
}

/// `PATCH /courses/{id}/student-limit`: the current limit again answers 200 and changes nothing
/// (idempotent); a limit out of range is 400 invalid-request, one below the enrolment 400
/// rule-violated.
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
