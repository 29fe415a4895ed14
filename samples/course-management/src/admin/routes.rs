//! `/admin`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    Checkpoints, ProjectionStatusView, RebuildProjections, RebuildSummary, StatusView,
    StoreFigures, StoreView,
};
use crate::error::{AppError, AppResult};
use crate::http::{ApiPath, ApiQuery, AppState, Conflict, Invalid, Missing};

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Admin";

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (RebuildProjections, StatusView, Checkpoints, StoreFigures);

/// The admin routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rebuild_all))
        .routes(routes!(rebuild_one))
        .routes(routes!(status))
        .routes(routes!(checkpoints))
        .routes(routes!(store, delete_store))
}

/// Rebuild every projection from the log
#[utoipa::path(post, path = "/admin/projections/rebuild", tag = TAG,
    operation_id = "rebuildAllProjections",
    responses((status = 200, description = "What was rebuilt", body = RebuildSummary), Conflict))]
async fn rebuild_all(State(state): State<AppState>) -> AppResult<Json<RebuildSummary>> {
    Ok(Json(state.send(RebuildProjections { name: None }).await?))
}

/// Rebuild one projection
#[utoipa::path(post, path = "/admin/projections/{name}/rebuild", tag = TAG,
    operation_id = "rebuildProjection",
    params(("name" = String, Path, description = "The projection's name, as the status lists it")),
    responses(
        (status = 200, description = "What was rebuilt", body = RebuildSummary),
        Missing, Conflict,
    ))]
async fn rebuild_one(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> AppResult<Json<RebuildSummary>> {
    Ok(Json(
        state.send(RebuildProjections { name: Some(name) }).await?,
    ))
}

/// The projections' status
///
/// Checkpoints, failures, running and queued rebuilds, and whether this process maintains the
/// projections or follows another's.
#[utoipa::path(get, path = "/admin/projections/status", tag = TAG,
    operation_id = "projectionStatus",
    responses((status = 200, description = "The status", body = ProjectionStatusView)))]
async fn status(State(state): State<AppState>) -> AppResult<Json<ProjectionStatusView>> {
    Ok(Json(state.send(StatusView).await?))
}

/// Every projection's checkpoint
///
/// By projection name: the position of the last event applied, or null before the first.
#[utoipa::path(get, path = "/admin/projections/checkpoints", tag = TAG,
    operation_id = "projectionCheckpoints",
    responses((status = 200, description = "The checkpoints", body = BTreeMap<String, Option<u64>>)))]
async fn checkpoints(
    State(state): State<AppState>,
) -> AppResult<Json<BTreeMap<String, Option<u64>>>> {
    Ok(Json(state.send(Checkpoints).await?))
}

/// The store's figures
#[utoipa::path(get, path = "/admin/store", tag = TAG, operation_id = "storeFigures",
    responses((status = 200, description = "The figures", body = StoreView)))]
async fn store(State(state): State<AppState>) -> AppResult<Json<StoreView>> {
    Ok(Json(state.send(StoreFigures).await?))
}

/// The confirmation a delete needs.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Confirm {
    /// Must be true.
    #[serde(default)]
    confirm: bool,
}

/// What a delete did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    /// Always true.
    deleted: bool,
}

/// Delete the store and start afresh
///
/// Removes every event and read model for good; needs `confirm=true`.
#[utoipa::path(delete, path = "/admin/store", tag = TAG, operation_id = "deleteStore",
    params(Confirm),
    responses((status = 200, description = "Deleted", body = Deleted), Invalid, Conflict))]
async fn delete_store(
    State(state): State<AppState>,
    ApiQuery(confirm): ApiQuery<Confirm>,
) -> AppResult<Json<Deleted>> {
    if !confirm.confirm {
        return Err(AppError::invalid(
            "Deleting the store removes every event and read model for good; add ?confirm=true \
             to do it.",
        ));
    }
    state.delete_store().await?;
    Ok(Json(Deleted { deleted: true }))
}
