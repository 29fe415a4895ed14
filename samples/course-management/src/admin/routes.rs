//! `/admin`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{
    Checkpoints, ProjectionStatusView, RebuildProjections, RebuildSummary, StatusView,
    StoreFigures, StoreView,
};
use crate::error::{AppError, AppResult};
use crate::http::{ApiPath, ApiQuery, AppState};

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (RebuildProjections, StatusView, Checkpoints, StoreFigures);

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/projections/rebuild", post(rebuild_all))
        .route("/admin/projections/{name}/rebuild", post(rebuild_one))
        .route("/admin/projections/status", get(status))
        .route("/admin/projections/checkpoints", get(checkpoints))
        .route("/admin/store", get(store).delete(delete_store))
}

async fn rebuild_all(State(state): State<AppState>) -> AppResult<Json<RebuildSummary>> {
    Ok(Json(state.send(RebuildProjections { name: None }).await?))
}

async fn rebuild_one(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> AppResult<Json<RebuildSummary>> {
    Ok(Json(
        state.send(RebuildProjections { name: Some(name) }).await?,
    ))
}

async fn status(State(state): State<AppState>) -> AppResult<Json<ProjectionStatusView>> {
    Ok(Json(state.send(StatusView).await?))
}

async fn checkpoints(
    State(state): State<AppState>,
) -> AppResult<Json<BTreeMap<String, Option<u64>>>> {
    Ok(Json(state.send(Checkpoints).await?))
}

async fn store(State(state): State<AppState>) -> AppResult<Json<StoreView>> {
    Ok(Json(state.send(StoreFigures).await?))
}

#[derive(Deserialize)]
struct Confirm {
    #[serde(default)]
    confirm: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    deleted: bool,
}

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
