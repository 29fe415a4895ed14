//! Serving the router over TCP, with what `axum::serve` lacks: a time limit on reading a
//! request's headers and body (a slow or stalled client is disconnected or answered 408), one
//! `info` log line per request, and a graceful shutdown.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::extract::{BODY_LIMIT, body_too_large};
use super::problem::problem;
use super::{AppState, router};
use crate::error::AppError;

/// The default of [`ServeOptions::read_timeout`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`serve_with`] serves.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (then the connection is
    /// closed), and, separately, its body (then the answer is a 408 problem).
    pub read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// The router with the serving layers: the body limit, the body's time limit, and the
/// request log (outermost, so that it logs every answer).
fn app(state: AppState, options: ServeOptions) -> Router {
    router(state)
        .layer(from_fn_with_state(options.read_timeout, read_body_in_time))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(log_request))
}

/// Serves the API on `listener` until `shutdown` completes, as [`crate::serve`] does, with
/// `options`.
///
/// # Errors
/// The facade's error from closing the store.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = app(state.clone(), options);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, for one: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(options.read_timeout);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // The live feeds would never end by themselves; the requests in flight finish.
    state.end_feeds();
    graceful.shutdown().await;
    state.shutdown().await?;
    Ok(())
}

/// Reads the request's body within `limit`: a client that sends a short body (fewer bytes
/// than it announced) gets a 408 problem instead of holding the connection. The handler then
/// runs without a time limit (a rebuild may take long).
async fn read_body_in_time(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = e
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                body_too_large()
            } else {
                AppError::Invalid("Failed to read the request body".to_owned()).into_response()
            };
        }
        Err(_) => {
            return problem(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "The request took too long to arrive",
                &format!(
                    "The request body did not arrive within {} s.",
                    limit.as_secs_f64()
                ),
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// One `info` line per request: method, path (without the query), status and latency. Never
/// the body.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
