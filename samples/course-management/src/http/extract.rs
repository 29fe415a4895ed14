//! Extractors that reject with a problem+json [`AppError::Invalid`] instead of axum's plain text.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use opossum::Page;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::problem::problem;
use crate::error::AppError;
use crate::paging;

/// The most a request body may hold, in bytes (axum's default, set explicitly by the
/// [`router`](super::router) so that the 413 problem can name it).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON body; a missing or malformed one is a 400 problem naming what is wrong, one over
/// [`BODY_LIMIT`] a 413 problem naming the limit, and one without the `application/json`
/// content type a 415 problem.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// The 413 problem of a body over [`BODY_LIMIT`], naming the limit.
pub(crate) fn body_too_large() -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "The request body is too large",
        &format!(
            "The request body is over the limit of {BODY_LIMIT} bytes ({} MiB); send a \
             smaller one.",
            BODY_LIMIT / (1024 * 1024)
        ),
    )
}

/// The problem of a rejected JSON body: 413 and 415 by axum's status, 400 otherwise.
fn json_rejection(rejection: &JsonRejection) -> Response {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "This route takes a JSON body: send it with `Content-Type: application/json`.",
        ),
        _ => AppError::Invalid(rejection.body_text()).into_response(),
    }
}

/// Path parameters; an id that is not a UUID is a 400 problem.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(AppError::Invalid(rejection.body_text())),
        }
    }
}

/// Query-string parameters; malformed ones are a 400 problem.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(AppError::Invalid(rejection.body_text())),
        }
    }
}

/// The `?limit=&cursor=` of a list route, checked by [`crate::paging::page`]: a limit outside
/// 1 to [`MAX_LIMIT`](crate::paging::MAX_LIMIT), or a cursor that no page returned, is a 400
/// problem. The route's other query parameters (its filters) are left to its own
/// [`ApiQuery`].
#[derive(Debug)]
pub struct ApiPage(pub Page);

#[derive(Deserialize)]
struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiPage {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let ApiQuery(params) = ApiQuery::<PageParams>::from_request_parts(parts, state).await?;
        paging::page(params.limit.as_deref(), params.cursor.as_deref()).map(ApiPage)
    }
}
