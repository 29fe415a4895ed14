//! Every error becomes one status code and an RFC 9457 problem+json body, here and only here.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opossum::ProjectionError;

use crate::error::AppError;

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The status, the problem type's last segment, and the title of an error.
fn classify(error: &AppError) -> (StatusCode, &'static str, &'static str) {
    match error {
        AppError::Invalid(_) => (
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "The request is invalid",
        ),
        AppError::Rule(_) => (
            StatusCode::BAD_REQUEST,
            "rule-violated",
            "A business rule forbids this",
        ),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        AppError::Busy(_) => (
            StatusCode::CONFLICT,
            "busy",
            "Conflicts with work in progress",
        ),
        AppError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The store is not available",
        ),
        e if e.is_condition_failed() => (
            StatusCode::CONFLICT,
            "concurrency-conflict",
            "Concurrent updates",
        ),
        AppError::App(opossum::Error::ReadModelBehind { .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "read-model-behind",
            "The read model is not up to date yet",
        ),
        AppError::App(opossum::Error::Projections(ProjectionError::UnknownProjection {
            ..
        })) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        AppError::App(opossum::Error::Projections(ProjectionError::RebuildInProgress {
            ..
        })) => (
            StatusCode::CONFLICT,
            "busy",
            "Conflicts with work in progress",
        ),
        AppError::App(
            opossum::Error::Projections(ProjectionError::NotMaintainer { .. })
            | opossum::Error::OpenElsewhere { .. },
        ) => (
            StatusCode::CONFLICT,
            "other-process",
            "Another process maintains this store's projections",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ),
    }
}

/// A problem+json response.
pub(crate) fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("/problems/{kind}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, kind, title) = classify(&self);
        let detail = if kind == "concurrency-conflict" {
            "Other requests changed the same data while this one was being decided, and every \
             retry met another change; nothing was written. Send the request again."
                .to_owned()
        } else {
            self.to_string()
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        problem(status, kind, title, &detail)
    }
}
