//! The OpenAPI 3.1 document, generated rather than written: every route is registered through
//! [`utoipa_axum::routes!`] from its handler's `#[utoipa::path]` attribute, so the same
//! attribute gives the router its path and method and the document its operation; request and
//! response bodies are the handlers' own types, described by their `ToSchema` derives, with
//! limits taken from the constants the server checks. Nothing here lists a route.
//!
//! What every operation shares is added here: the problem+json error responses
//! ([`Invalid`], [`Missing`], [`Conflict`], [`Unavailable`], named by each handler), and the
//! 413 and 415 problems of every operation that takes a JSON body (added by [`finish`], as
//! [`ApiJson`](super::ApiJson) answers them for every such route).

use std::collections::BTreeMap;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response};
use utoipa::{IntoParams, IntoResponses, OpenApi};

use super::extract::BODY_LIMIT;
use super::problem::{PROBLEM_JSON, Problem};
use crate::live_feed::FeedEvent;

/// The document's parts that no handler gives: its title, description and the problem schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Opossum course management",
        description = "The Opossum sample: all seven DCB examples (dcb.events/examples) over \
            HTTP, on an event store in a local folder. Errors are application/problem+json \
            (RFC 9457); a 409 carries Retry-After and the same request may be sent again. \
            Lists are paged with limit and cursor. A page for people is at /docs."
    ),
    components(schemas(Problem, FeedEvent))
)]
pub(super) struct ApiDoc;

/// One problem+json response.
fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn responses(status: u16, response: Response) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_string(), RefOr::T(response))])
}

/// 400: the request is malformed (`invalid-request`) or a business rule forbids it
/// (`rule-violated`).
pub struct Invalid;

impl IntoResponses for Invalid {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(
            400,
            problem_response(
                "Invalid request (invalid-request), or a business rule forbids it (rule-violated)",
            ),
        )
    }
}

/// 404: something the request names does not exist.
pub struct Missing;

impl IntoResponses for Missing {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(
            404,
            problem_response("Something the request names does not exist (not-found)"),
        )
    }
}

/// 409: concurrent changes that every retry met, or work in progress; with `Retry-After`.
pub struct Conflict;

impl IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut response = problem_response(
            "Concurrent updates that every retry met (concurrency-conflict), or work in \
             progress (busy); nothing was written, send the same request again",
        );
        response.headers.insert(
            "Retry-After".to_owned(),
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(Object::with_type(Type::Integer)))
                    .description(Some(
                        "seconds to wait before sending the same request again (always 1)",
                    ))
                    .build(),
            ),
        );
        responses(409, response)
    }
}

/// 503: the store or a read model is not available yet.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(
            503,
            problem_response(
                "The store is not available, or a read model has not caught up yet; try again",
            ),
        )
    }
}

/// The paging parameters of every list route; [`ApiPage`](super::ApiPage) reads them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only described: `ApiPage` parses the query itself.
pub struct PageQuery {
    /// Items per page; outside the bounds is a 400 problem.
    // The bounds are `paging::MAX_LIMIT` and `DEFAULT_LIMIT` (the macro takes literals; a test
    // compares them).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<usize>,
    /// The `nextCursor` of the previous page (with the same filters); leave it out for the
    /// first page. A cursor no page returned is a 400 problem.
    cursor: Option<String>,
}

/// The path of the live feed, whose stream names its messages' schema in `x-event-data`.
const LIVE_FEED: &str = "/events/stream";

/// Adds what every operation of a kind shares, once all routes are merged: the 413 and 415
/// problems of each operation with a JSON body, and the schema of the live feed's messages.
pub(super) fn finish(mut document: Document) -> Document {
    if let Some(feed) = document.paths.paths.get_mut(LIVE_FEED) {
        let stream = feed
            .get
            .as_mut()
            .and_then(|get| get.responses.responses.get_mut("200"));
        if let Some(RefOr::T(stream)) = stream {
            for content in stream.content.values_mut() {
                let RefOr::T(content) = content else {
                    continue;
                };
                let mut extensions = Extensions::default();
                extensions.insert(
                    "x-event-data".to_owned(),
                    serde_json::json!({"$ref": "#/components/schemas/FeedEvent"}),
                );
                content.extensions = Some(extensions);
            }
        }
    }
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_body_problems(operation);
        }
    }
    document
}

fn add_body_problems(operation: &mut Operation) {
    if operation.request_body.is_none() {
        return;
    }
    let too_large = format!(
        "The body is over the limit of {BODY_LIMIT} bytes ({} MiB) (body-too-large)",
        BODY_LIMIT / (1024 * 1024)
    );
    for (status, description) in [
        (413, too_large.as_str()),
        (
            415,
            "The body was not sent as application/json (unsupported-media-type)",
        ),
    ] {
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(problem_response(description)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_gets_the_413_and_415_problems_and_others_do_not() {
        let document = finish(super::super::router::api_document());
        let paths = &document.paths.paths;
        let register = paths["/students"].post.as_ref().unwrap();
        assert!(register.responses.responses.contains_key("413"));
        assert!(register.responses.responses.contains_key("415"));
        let list = paths["/students"].get.as_ref().unwrap();
        assert!(!list.responses.responses.contains_key("413"));
    }

    #[test]
    fn a_conflict_says_when_to_retry() {
        let conflict = Conflict::responses();
        let RefOr::T(response) = &conflict["409"] else {
            panic!("409 is inline")
        };
        assert!(response.headers.contains_key("Retry-After"));
    }
}
