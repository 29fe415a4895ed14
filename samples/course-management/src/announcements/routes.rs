//! `/courses/{courseId}/announcements`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Announcement, ListAnnouncements, PostAnnouncement, RetractAnnouncement};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPage, ApiPath, AppState, created};
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (PostAnnouncement, ListAnnouncements, RetractAnnouncement);

/// The announcements' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/courses/{course_id}/announcements",
            get(list).post(post_one),
        )
        .route(
            "/courses/{course_id}/announcements/{announcement_id}/retract",
            post(retract),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostRequest {
    title: String,
    #[serde(default)]
    body: String,
    idempotency_token: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Posted {
    announcement_id: Uuid,
}

/// `POST /courses/{id}/announcements`: a title of 1 to 200 characters on one line, a body of
/// at most 2000 (newlines and tabs allowed); 400 invalid-request naming the field otherwise.
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
struct RetractPath {
    course_id: Uuid,
    announcement_id: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Retracted {
    announcement_id: Uuid,
    retracted: bool,
}

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
