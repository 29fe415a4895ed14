//! Every error becomes one status code and an RFC 9457 problem+json body, here and only here.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opossum::opossum_fs::Error as FileStoreError;
use opossum::{DecisionError, EventStoreError, ProjectionError};

use crate::error::AppError;

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The file store's own error inside `error`, if that is what it carries.
fn file_store_error(error: &AppError) -> Option<&FileStoreError> {
    let core = match error {
        AppError::Decision(DecisionError::Store(core))
        | AppError::App(opossum::Error::EventStore(core)) => core,
        AppError::App(opossum::Error::Store(file)) => return Some(file),
        _ => return None,
    };
    match core {
        EventStoreError::Storage(source) => source.downcast_ref::<FileStoreError>(),
        _ => None,
    }
}

/// The status, the problem type's last segment, and the title of an error.
fn classify(error: &AppError) -> (StatusCode, &'static str, &'static str) {
    if let Some(FileStoreError::DiskFull { .. }) = file_store_error(error) {
        return (
            StatusCode::INSUFFICIENT_STORAGE,
            "disk-full",
            "The disk holding the store is full",
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_wherever_the_store_error_surfaces() {
        let full = || FileStoreError::DiskFull {
            action: "append to",
            path: "events/00000000000000000001.jsonl".into(),
        };
        let through_a_decision = AppError::Decision(DecisionError::Store(
            EventStoreError::Storage(Box::new(full())),
        ));
        let through_the_facade = AppError::App(opossum::Error::Store(full()));
        for error in [through_a_decision, through_the_facade] {
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        }
        let other = AppError::Decision(DecisionError::Store(EventStoreError::Storage(Box::new(
            FileStoreError::Closed,
        ))));
        assert_eq!(
            other.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
