//! `/courses/{courseId}/enrollments`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EnrollStudent;
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, created};

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (EnrollStudent,);

/// The enrolment route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/courses/{course_id}/enrollments", post(enroll))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrollRequest {
    student_id: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    course_id: Uuid,
    student_id: Uuid,
}

async fn enroll(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> AppResult<Response> {
    let student_id = request.student_id;
    state
        .send(EnrollStudent {
            course_id,
            student_id,
        })
        .await?;
    Ok(created(
        format!("/courses/{course_id}"),
        Enrolled {
            course_id,
            student_id,
        },
    ))
}
