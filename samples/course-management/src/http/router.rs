//! The router: every feature's routes with their OpenAPI document, the `/docs` page, and
//! problem+json fallbacks.

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opossum::OpossumBuilder;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::AppState;
use super::extract::BODY_LIMIT;
use super::openapi::{ApiDoc, finish};
use super::problem::problem;
use crate::{
    admin, announcements, course_aggregate, course_books, courses, enrollment, exam_tokens,
    invoices, live_feed, students,
};

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Where the documentation page for people is served (Swagger UI, its files built into the
/// binary).
pub const DOCS_PATH: &str = "/docs";

/// The whole API, its document at [`OPENAPI_PATH`] and its page at [`DOCS_PATH`].
pub fn router(state: AppState) -> Router {
    let (routes, document) = api_routes().split_for_parts();
    // Swagger UI's own defaults would send the document to swagger.io's online validator.
    let docs = SwaggerUi::new(DOCS_PATH)
        .url(OPENAPI_PATH, finish(document))
        .config(Config::new([OPENAPI_PATH]).validator_url("none"));
    routes
        .route("/", get(index))
        .merge(docs)
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The OpenAPI document of the whole API, as `GET /openapi.json` serves it.
#[must_use]
pub fn openapi_document() -> Document {
    finish(api_document())
}

/// The document before [`finish`] adds what operations share.
pub(crate) fn api_document() -> Document {
    api_routes().into_openapi()
}

/// Every feature's routes, each registered with its operation.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        "openapi": OPENAPI_PATH,
        "docs": DOCS_PATH,
    }))
}

async fn no_such_route(OriginalUri(uri): OriginalUri) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "No such route",
        &format!(
            "{} is not a route of this API; see {DOCS_PATH} or {OPENAPI_PATH}",
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
            "{} does not accept this method; see {DOCS_PATH} or {OPENAPI_PATH}",
            uri.path()
        ),
    )
}
