//! `/courses/{courseId}/announcements`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Announcement, ListAnnouncements, PostAnnouncement, RetractAnnouncement};
use crate::error::AppResult;
use crate::http::{
    ApiJson, ApiPage, ApiPath, AppState, Conflict, Invalid, Missing, PageQuery, Unavailable,
    created,
};

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Announcements";
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (PostAnnouncement, ListAnnouncements, RetractAnnouncement);

/// The announcements' routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, post_one))
        .routes(routes!(retract))
}

/// An announcement to post.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PostAnnouncement, example = json!({
    "title": "Room change", "body": "Thursday's session is in room 4.",
    "idempotencyToken": "9d4f2a7c-5e1b-4f30-8b8d-7a3e6f1c4c2e"
}))]
struct PostRequest {
    /// One line (no control characters), trimmed.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// Any lines (no control characters but newlines and tabs).
    #[serde(default)]
    #[schema(max_length = 2000)]
    body: String,
    /// The client's token for this announcement: posting with a token of a live announcement
    /// is refused (400 rule-violated).
    idempotency_token: Uuid,
}

/// The posted announcement's id.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AnnouncementCreated)]
struct Posted {
    /// The announcement's id.
    announcement_id: Uuid,
}

/// Post an announcement
///
/// Once per idempotency token (the prevent-record-duplication example).
#[utoipa::path(post, path = "/courses/{courseId}/announcements", tag = TAG,
    operation_id = "postAnnouncement",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    request_body = PostRequest,
    responses(
        (status = 201, description = "Posted", body = Posted,
            headers(("Location" = String, description = "the course's announcements"))),
        Invalid, Missing, Conflict,
    ))]
async fn post_one(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PostRequest>,
) -> AppResult<Response> {
    let announcement_id = state
        .send(PostAnnouncement {
            course_id,
            title: request.title,
            body: request.body,
            idempotency_token: request.idempotency_token,
        })
        .await?;
    Ok(created(
        format!("/courses/{course_id}/announcements"),
        Posted { announcement_id },
    ))
}

/// A page of a course's live announcements
///
/// In id order; sort by `position` for posting order.
#[utoipa::path(get, path = "/courses/{courseId}/announcements", tag = TAG,
    operation_id = "listAnnouncements",
    params(("courseId" = Uuid, Path, description = "The course's id"), PageQuery),
    responses(
        (status = 200, description = "One page", body = Listing<Announcement>),
        Invalid, Missing, Unavailable,
    ))]
async fn list(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
    ApiPage(page): ApiPage,
) -> AppResult<Json<Listing<Announcement>>> {
    Ok(Json(
        state.send(ListAnnouncements { course_id, page }).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetractPath {
    course_id: Uuid,
    announcement_id: Uuid,
}

/// The retracted announcement.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Retracted {
    /// The announcement's id.
    announcement_id: Uuid,
    /// Always true.
    retracted: bool,
}

/// Retract an announcement
///
/// Its idempotency token may then be used again.
#[utoipa::path(post, path = "/courses/{courseId}/announcements/{announcementId}/retract",
    tag = TAG, operation_id = "retractAnnouncement",
    params(
        ("courseId" = Uuid, Path, description = "The course's id"),
        ("announcementId" = Uuid, Path, description = "The announcement's id"),
    ),
    responses(
        (status = 200, description = "Retracted", body = Retracted),
        Invalid, Missing, Conflict,
    ))]

async fn retract(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<RetractPath>,
) -> AppResult<Json<Retracted>> {
    state
        .send(RetractAnnouncement {
            course_id: path.course_id,
            announcement_id: path.announcement_id,
        })
        .await?;
    Ok(Json(Retracted {
        announcement_id: path.announcement_id,
        retracted: true,
    }))
}
