//! The Opossum course-management sample: an HTTP API over an event store in a local folder,
//! exercising all seven examples of <https://dcb.events/examples/>:
//!
//! | DCB example | here | pattern |
//! |---|---|---|
//! | course subscriptions | [`enrollment`] | three decision projections, one read, one condition, `decide` |
//! | unique username | [`students`] (email) | a plain append condition on the email tag |
//! | invoice number | [`invoices`] | `read_last` plus a condition after it |
//! | dynamic product price | [`course_books`] | a clock-reading projection (30-minute grace), N-ary cart decision |
//! | event-sourced aggregate | [`course_aggregate`] | a tag-scoped condition `after = version`, bounded retries |
//! | opt-in token | [`exam_tokens`] | an enum-state projection: the events are the token registry |
//! | prevent record duplication | [`announcements`] | an idempotency-token projection beside the course's existence |
//!
//! Each feature folder holds its events, decisions and handlers (mediator commands and
//! queries whose dependencies are their fields), projections and routes. [`app::build_app`]
//! wires them all on one [`opossum::OpossumApp`]; [`http::router`] serves them; [`seed`] fills
//! a store with realistic data through the same commands. Every list route is paged
//! ([`paging`]). [`live_feed`] streams the store's events as they are committed, as
//! Server-Sent Events.

pub mod admin;
pub mod announcements;
pub mod app;
pub mod course_aggregate;
pub mod course_books;
pub mod courses;
pub mod enrollment;
pub mod error;
pub mod exam_tokens;
pub mod http;
pub mod invoices;
pub mod live_feed;
pub mod money;
pub mod paging;
pub mod seed;
pub mod store;
pub mod students;
pub mod tags;

use std::future::Future;

pub use app::{POSTGRES_SCHEMA, STORE_NAME, Settings, build_app, connect_postgres};
pub use error::{AppError, AppResult};
pub use http::{AppState, router};

/// Serves the API on `listener` until `shutdown` completes, then stops the projection daemon
/// and closes the store. When `shutdown` completes, the live feeds are ended (they would
/// never end by themselves) and the requests in flight finish. Clients get the default
/// [`http::ServeOptions`] (30 s to send a request's headers, and its body); see
/// [`http::serve_with`].
///
/// # Errors
/// The facade's error from closing the store.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    http::serve_with(listener, state, shutdown, http::ServeOptions::default()).await
}
