//! `/courses/{courseId}/enrollments`.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::EnrollStudent;
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPath, AppState, Conflict, Invalid, Missing, StudentRef, created};

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (EnrollStudent,);

/// The enrolment route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(enroll))
}

/// Who was enrolled where.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Enrollment)]
struct Enrolled {
    /// The course.
    course_id: Uuid,
    /// The student.
    student_id: Uuid,
}

/// Enrol a student
///
/// The course's capacity, the student's tier limit and no double enrolment, decided at once
/// (the course-subscriptions example).
#[utoipa::path(post, path = "/courses/{courseId}/enrollments", tag = "Enrollment",
    operation_id = "enrollStudent",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    request_body = StudentRef,
    responses(
        (status = 201, description = "Enrolled", body = Enrolled,
            headers(("Location" = String, description = "the course's URL"))),
        Invalid, Missing, Conflict,
    ))]
async fn enroll(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StudentRef>,
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
