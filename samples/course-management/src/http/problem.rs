//! Every error becomes one status code and an RFC 9457 problem+json body, here and only here.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opossum::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A status, the problem type's last segment, and the title.
type Kind = (StatusCode, &'static str, &'static str);

/// The body of every error reply (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/rule-violated",
    "title": "A business rule forbids this",
    "status": 400,
    "detail": "The course is at its maximum capacity (30 students)."
}))]
pub(crate) struct Problem {
    /// What kind of problem: `/problems/` and a name such as `invalid-request`,
    /// `rule-violated`, `not-found`, `concurrency-conflict` or `busy`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind's title, the same for every problem of the kind.
    pub title: String,
    /// The reply's HTTP status code.
    pub status: u16,
    /// What went wrong with this request, and what to do.
    pub detail: String,
}

const INVALID: Kind = (
    StatusCode::BAD_REQUEST,
    "invalid-request",
    "The request is invalid",
);
const NOT_FOUND: Kind = (StatusCode::NOT_FOUND, "not-found", "Not found");
const BUSY: Kind = (
    StatusCode::CONFLICT,
    "busy",
    "Conflicts with work in progress",
);
const UNAVAILABLE: Kind = (
    StatusCode::SERVICE_UNAVAILABLE,
    "unavailable",
    "The store is not available",
);
const CONFLICT: &str = "concurrency-conflict";

/// The problem of an error: the sample's own errors by their variant, Opossum's by their
/// kind, whichever crate they came through.
fn classify(error: &AppError) -> Kind {
    let opossum = match error {
        AppError::Invalid(_) => return INVALID,
        AppError::Rule(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "rule-violated",
                "A business rule forbids this",
            );
        }
        AppError::NotFound(_) => return NOT_FOUND,
        AppError::Busy(_) => return BUSY,
        AppError::Unavailable(_) => return UNAVAILABLE,
        AppError::Opossum(e) => e,
    };
    match opossum.kind() {
        ErrorKind::ConditionFailed => (StatusCode::CONFLICT, CONFLICT, "Concurrent updates"),
        ErrorKind::InvalidInput => INVALID,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::DiskFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            "disk-full",
            "The disk holding the store is full",
        ),
        ErrorKind::ReadOnly => (
            StatusCode::SERVICE_UNAVAILABLE,
            "read-only",
            "The store cannot be written",
        ),
        ErrorKind::LockTimeout => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store-locked",
            "Another process holds the store's lock",
        ),
        // Another process maintains the projections, a rebuild is running, the store is in use.
        ErrorKind::Busy => BUSY,
        // The sample sets no mediator timeout: what times out is a read model that has not
        // applied this process's writes yet.
        ErrorKind::Timeout => (
            StatusCode::SERVICE_UNAVAILABLE,
            "read-model-behind",
            "The read model is not up to date yet",
        ),
        ErrorKind::Closed => UNAVAILABLE,
        // Deleting a store in a shared database, for one.
        ErrorKind::Unsupported => (
            StatusCode::METHOD_NOT_ALLOWED,
            "unsupported",
            "This store does not support the operation",
        ),
        // The database is unreachable (restarting, the network).
        ErrorKind::Io => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "The store could not be read or written; try again",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ),
    }
}

/// A problem+json response. A 409 carries `Retry-After: 1`: the request lost a race (or met
/// work in progress) and may be sent again as it is.
pub(crate) fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = Problem {
        kind: format!("/problems/{kind}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
    if status == StatusCode::CONFLICT {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// The `Retry-After` of every 409 problem, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, kind, title) = classify(&self);
        let detail = if kind == CONFLICT {
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
    use opossum::opossum_fs::Error as FileStoreError;
    use opossum::{DecisionError, EventStoreError, ProjectionError};

    use super::*;

    fn status(error: impl Into<AppError>) -> StatusCode {
        error.into().into_response().status()
    }

    #[test]
    fn a_full_disk_is_507_wherever_the_store_error_surfaces() {
        let full = || FileStoreError::DiskFull {
            action: "append to",
            path: "events/00000000000000000001.jsonl".into(),
        };
        // An append through the `EventStore` trait, as a decision and the app's store make it.
        let appended = || EventStoreError::from(full());
        let through_a_decision = AppError::from(DecisionError::Store(appended()));
        let through_the_facade = AppError::from(opossum::Error::EventStore(appended()));
        let opening_the_store = AppError::from(opossum::Error::Store(full()));
        for error in [through_a_decision, through_the_facade, opening_the_store] {
            assert_eq!(status(error), StatusCode::INSUFFICIENT_STORAGE);
        }
        let closed = DecisionError::Store(EventStoreError::from(FileStoreError::Closed));
        assert_eq!(status(closed), StatusCode::SERVICE_UNAVAILABLE);
        let crashed = opossum::Error::Task {
            reason: "it panicked".to_owned(),
        };
        assert_eq!(status(crashed), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn opossum_errors_map_by_kind() {
        let conflict = AppError::from(DecisionError::Store(EventStoreError::ConditionFailed {
            after: None,
        }));
        assert!(conflict.is_condition_failed());
        assert_eq!(status(conflict), StatusCode::CONFLICT);
        assert_eq!(
            status(EventStoreError::EmptyAppend),
            StatusCode::BAD_REQUEST
        );
        let unknown = ProjectionError::UnknownProjection {
            name: "Nope".to_owned(),
            registered: Vec::new(),
        };
        assert_eq!(status(unknown), StatusCode::NOT_FOUND);
        let rebuilding = ProjectionError::RebuildInProgress {
            name: "Courses".to_owned(),
        };
        assert_eq!(status(rebuilding), StatusCode::CONFLICT);
        let elsewhere = opossum::Error::OpenElsewhere {
            path: "data/course-management".into(),
        };
        assert_eq!(status(elsewhere), StatusCode::CONFLICT);
        let behind = opossum::Error::ReadModelBehind {
            projection: "Courses".to_owned(),
            position: opossum::Position::FIRST,
            waited: std::time::Duration::from_secs(5),
        };
        assert_eq!(status(behind), StatusCode::SERVICE_UNAVAILABLE);
        let locked = FileStoreError::LockTimeout {
            path: "data/course-management".into(),
            waited: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            status(opossum::Error::Store(locked)),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn only_conflicts_say_when_to_retry() {
        let busy = AppError::Busy("a rebuild is running".to_owned()).into_response();
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let invalid = AppError::Invalid("no".to_owned()).into_response();
        assert!(invalid.headers().get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn a_conflict_is_a_problem_that_says_to_send_again() {
        let conflict = AppError::from(EventStoreError::ConditionFailed { after: None });
        let response = conflict.into_response();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&header::HeaderValue::from_static(PROBLEM_JSON))
        );
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&header::HeaderValue::from_static("1"))
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "/problems/concurrency-conflict");
        assert_eq!(body["status"], 409);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("Send the request again")
        );
    }
}
