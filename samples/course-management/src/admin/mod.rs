//! Administration: rebuilding projections, their status and checkpoints, store figures, and
//! deleting the store (which needs `confirm=true`).

mod commands;
mod routes;

pub use commands::{
    AdminHandlers, Checkpoints, ProjectionFigures, ProjectionStatusView, RebuildProjections,
    RebuildSummary, StatusView, StoreFigures, StoreView,
};
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

/// Registers the admin handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .handler_with::<RebuildProjections, _, _>(AdminHandlers::from_context)
        .handler_with::<StatusView, _, _>(AdminHandlers::from_context)
        .handler_with::<Checkpoints, _, _>(AdminHandlers::from_context)
        .handler_with::<StoreFigures, _, _>(AdminHandlers::from_context)
}
