//! `GET /events/stream`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use opossum::opossum_core::stream::{EventStream, subscribe};
use opossum::{EventStore, EventStoreError, Payload, Position, SequencedEvent, Tag, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{FeedFilter, Start};
use crate::error::{AppError, AppResult};
use crate::http::{ApiQuery, AppState, FeedEnd, FeedEnded, Invalid, Unavailable};

/// How often an idle feed sends a comment, so that proxies and clients do not take it for a
/// dead connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE event name of the message that ends a feed on a store error.
const FEED_ERROR: &str = "feed-error";
/// The SSE event name of the message that ends a feed the server ends.
const FEED_END: &str = "feed-end";

/// The live feed's route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The `data:` of each event's message (in the OpenAPI document as the stream's
/// `x-event-data`, as OpenAPI 3.1 has no words for the items of a stream).
#[derive(Serialize, ToSchema)]
pub struct FeedEvent<'a> {
    /// The event's position in the store.
    position: u64,
    /// The event's type.
    #[serde(rename = "type")]
    event_type: &'a str,
    /// The event's tags.
    #[schema(value_type = Vec<FeedTag>)]
    tags: &'a [Tag],
    /// The event's payload, as stored (sealed personal fields stay sealed).
    #[schema(value_type = Object)]
    payload: &'a Payload,
    /// When the event was appended, as its writer's clock said.
    timestamp: Timestamp,
}

/// A tag of a [`FeedEvent`], as `opossum::Tag` serialises it.
#[derive(ToSchema)]
#[allow(dead_code)] // Only described: the feed serialises `opossum::Tag` itself.
struct FeedTag {
    /// The tag's key, such as `courseId`.
    key: String,
    /// Its value.
    value: String,
}

/// The store's events as they are committed
///
/// Server-Sent Events: each event is one message, `id:` its position, `event:` its type,
/// `data:` a `FeedEvent`. Events committed by this process or another on the same store come
/// alike. The stream opens with a comment naming where it starts, sends a `keep-alive`
/// comment when idle for 15 s, and ends with a `feed-error` message (`{kind, detail}`) when
/// the store fails, or a `feed-end` message (`{reason}`) when the store is deleted or the
/// server stops.
#[utoipa::path(get, path = "/events/stream", tag = "Live feed", operation_id = "liveFeed",
    params(
        ("type" = Option<Vec<String>>, Query,
            description = "Repeatable: only events of any of these types (none: every type); an empty one is a 400 problem"),
        ("tag" = Option<Vec<String>>, Query,
            description = "Repeatable, key:value (split at the first colon): only events carrying every one of these tags"),
        ("after" = Option<u64>, Query,
            description = "First the stored events after this position (0: every stored event), then the new ones; without it, only events committed from now on"),
        ("Last-Event-ID" = Option<u64>, Header,
            description = "The id of the last message received, which a reconnecting EventSource sends: the feed resumes after it (it wins over after); past the last event is a 400 problem"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events until the client or the server ends them",
            content_type = "text/event-stream", body = String),
        Invalid, Unavailable,
    ))]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> AppResult<Response> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| {
            AppError::invalid("Last-Event-ID is not text; give the id of the last event received")
        })?),
        None => None,
    };
    let filter = FeedFilter::parse(&pairs, last_event_id)?;
    let (store, end) = state.open_feed().await?;
    // Read here, before the response starts: an event committed once the client has the
    // response's headers comes in the feed.
    let head = store.head().await?;
    let after = match filter.start {
        Start::After(Some(after)) if Some(after) > head => {
            return Err(AppError::invalid(format!(
                "position {after} is past the last event ({}); the store may have been deleted \
                 since: connect again without Last-Event-ID or after",
                head.map_or(0, Position::get)
            )));
        }
        Start::After(after) => after,
        Start::Now => head,
    };
    tracing::debug!(after = after.map(Position::get), query = ?filter.query, "live feed opened");
    let events = subscribe(store, filter.query, after);
    let opening = Event::default().comment(match after {
        Some(after) => format!("events after position {after}"),
        None => "events from the first".to_owned(),
    });
    let messages =
        futures_util::stream::once(std::future::ready(Ok(opening))).chain(messages(events, end));
    Ok(Sse::new(messages)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// One message per event until the client goes away, the server ends the feed (then a
/// `feed-end` message), or the store fails (then a `feed-error` message). Either message ends
/// the response, and drops the feed's hold on the store.
fn messages(
    events: EventStream<'static>,
    end: FeedEnd,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let ended = Box::pin(end.ended());
    futures_util::stream::unfold(Some((events, ended)), |open| async move {
        let (mut events, mut ended) = open?;
        let next = tokio::select! {
            biased;
            why = &mut ended => return Some((Ok(end_message(why)), None)),
            next = events.next() => next,
        };
        match next.map(|event| event.and_then(|event| message(&event))) {
            Some(Ok(message)) => Some((Ok(message), Some((events, ended)))),
            Some(Err(error)) => {
                tracing::warn!(error = %error, "live feed ended by a store error");
                Some((Ok(error_message(&error)), None))
            }
            None => None,
        }
    })
}

fn message(event: &SequencedEvent) -> Result<Event, EventStoreError> {
    let data = FeedEvent {
        position: event.position.get(),
        event_type: event.event.event_type().as_str(),
        tags: event.event.tags(),
        payload: event.event.payload(),
        timestamp: event.event.metadata().timestamp,
    };
    // The type is validated (no line breaks), so `event:` cannot panic; the payload is JSON
    // already, so serializing cannot fail but is handled as a store error all the same.
    Event::default()
        .id(event.position.to_string())
        .event(data.event_type)
        .json_data(&data)
        .map_err(|e| EventStoreError::storage(opossum::ErrorKind::Other, e.into_inner()))
}

fn end_message(why: FeedEnded) -> Event {
    tracing::debug!(?why, "live feed ended by the server");
    Event::default()
        .event(FEED_END)
        .data(serde_json::json!({"reason": why.reason()}).to_string())
}

fn error_message(error: &EventStoreError) -> Event {
    Event::default().event(FEED_ERROR).data(
        serde_json::json!({"kind": error.kind().as_str(), "detail": error.to_string()}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use opossum::{NewEvent, Position};

    use super::*;

    #[test]
    fn an_event_message_carries_its_position_type_and_data() {
        let event = SequencedEvent {
            position: Position::new(7).unwrap(),
            event: NewEvent::builder(
                "StudentRegistered",
                Payload::from_json(r#"{"a":1}"#).unwrap(),
            )
            .tag("studentId", "s-1")
            .build()
            .unwrap(),
            stored_at: None,
        };
        let data = FeedEvent {
            position: 7,
            event_type: "StudentRegistered",
            tags: event.event.tags(),
            payload: event.event.payload(),
            timestamp: event.event.metadata().timestamp,
        };
        let json: serde_json::Value = serde_json::to_value(&data).unwrap();
        assert_eq!(json["position"], 7);
        assert_eq!(json["type"], "StudentRegistered");
        assert_eq!(json["tags"][0]["key"], "studentId");
        assert_eq!(json["tags"][0]["value"], "s-1");
        assert_eq!(json["payload"]["a"], 1);
        assert!(json["timestamp"].is_string());
        assert!(message(&event).is_ok());
    }
}
