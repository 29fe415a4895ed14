//! The HTTP layer: the router, the shared state (with the live feeds it ends on a delete or a
//! shutdown), extractors whose rejections are problem+json, the one `IntoResponse` impl for
//! errors, and the OpenAPI document generated from the handlers. Nothing below this module
//! knows about HTTP.

mod bodies;
mod extract;
mod feeds;
mod openapi;
mod problem;
mod router;
mod serve;
mod state;

pub use bodies::StudentRef;
pub use extract::{ApiJson, ApiPage, ApiPath, ApiQuery, BODY_LIMIT};
pub use feeds::{FeedEnd, FeedEnded, FeedStore};
pub use openapi::{Conflict, Invalid, Missing, PageQuery, Unavailable};
pub use problem::PROBLEM_JSON;
pub use router::{DOCS_PATH, OPENAPI_PATH, created, openapi_document, require_handlers, router};
pub use serve::{DEFAULT_READ_TIMEOUT, ServeOptions, serve_with};
pub use state::AppState;
