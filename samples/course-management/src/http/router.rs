//! The router: every feature's routes, the OpenAPI document, and problem+json fallbacks.

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opossum::OpossumBuilder;
use serde::Serialize;

use super::AppState;
use super::extract::BODY_LIMIT;
use super::problem::problem;
use crate::{
    admin, announcements, course_aggregate, course_books, courses, enrollment, exam_tokens,
    invoices, live_feed, students,
};

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/openapi.json", get(openapi))
        .merge(students::routes())
        .merge(courses::routes())
        .merge(enrollment::routes())
        .merge(invoices::routes())
        .merge(exam_tokens::routes())
        .merge(course_books::routes())
        .merge(announcements::routes())
        .merge(course_aggregate::routes())
        .merge(admin::routes())
        .merge(live_feed::routes())
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Requires a handler for every message the routes of [`router`] send, so that a forgotten
/// handler fails the app's build at start-up rather than its first request.
pub fn require_handlers(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .require_all::<students::RouteMessages>()
        .require_all::<courses::RouteMessages>()
        .require_all::<enrollment::RouteMessages>()
        .require_all::<invoices::RouteMessages>()
        .require_all::<exam_tokens::RouteMessages>()
        .require_all::<course_books::RouteMessages>()
        .require_all::<announcements::RouteMessages>()
        .require_all::<course_aggregate::RouteMessages>()
        .require_all::<admin::RouteMessages>()
}

/// A 201 Created response with a `Location` header and a JSON body.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "course-management",
        "description": "The Opossum course-management sample: all seven DCB examples over HTTP.",
        "openapi": "/openapi.json",
    }))
}

async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi_document())
}

async fn no_such_route(OriginalUri(uri): OriginalUri) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "No such route",
        &format!(
            "{} is not a route of this API; see /openapi.json",
            uri.path()
        ),
    )
}

async fn method_not_allowed(OriginalUri(uri): OriginalUri) -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        &format!(
            "{} does not accept this method; see /openapi.json",
            uri.path()
        ),
    )
}
