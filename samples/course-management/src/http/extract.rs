//! Extractors that reject with a problem+json [`AppError::Invalid`] instead of axum's plain text.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use opossum::Page;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::paging;

/// A JSON body; a missing or malformed one is a 400 problem naming what is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(AppError::Invalid(rejection.body_text())),
        }
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
