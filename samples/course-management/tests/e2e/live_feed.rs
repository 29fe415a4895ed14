//! The live feed, `GET /events/stream`: read as Server-Sent Events over a real connection while
//! the test appends through the API. Every read is bounded by a hang guard; no assertion depends
//! on timing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Server;

const HANG_GUARD: Duration = Duration::from_secs(60);

/// One SSE message that is not only comments.
#[derive(Debug)]
struct Message {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl Message {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// A feed's response, read message by message as its body arrives.
struct Feed {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Feed {
    async fn open(server: &Server, path: &str, last_event_id: Option<&str>) -> Feed {
        let response = server.open_stream(path, last_event_id).await;
        assert_eq!(response.status().as_u16(), 200, "{path}: {response:?}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream", "{path}");
        Feed {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next message, skipping comments (the opening line, keep-alives); `None` once the
    /// response has ended.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..at + 2).collect();
                if let Some(message) = parse(std::str::from_utf8(&block).unwrap()) {
                    return Some(message);
                }
                continue;
            }
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk())
                .await
                .expect("hang guard: the feed sent nothing more")
                .unwrap();
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(self.buffer.is_empty(), "a torn message at the end");
                    return None;
                }
            }
        }
    }

    /// The next message, which must be an event's: its position, type and data.
    async fn next_event(&mut self) -> (u64, String, Value) {
        let message = self.next().await.expect("the feed ended");
        let data = message.json();
        let id: u64 = message.id.as_deref().unwrap().parse().unwrap();
        assert_eq!(data["position"], id, "{message:?}");
        let event = message.event.clone().unwrap();
        assert_eq!(data["type"], event.as_str(), "{message:?}");
        assert!(data["timestamp"].is_string(), "{message:?}");
        assert!(data["payload"].is_object(), "{message:?}");
        (id, event, data)
    }
}

/// The fields of one SSE block; `None` when it holds only comments.
fn parse(block: &str) -> Option<Message> {
    let mut message = Message {
        id: None,
        event: None,
        data: String::new(),
    };
    let mut fields = 0;
    for line in block
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
    {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        fields += 1;
        match name {
            "id" => message.id = Some(value),
            "event" => message.event = Some(value),
            "data" => {
                if !message.data.is_empty() {
                    message.data.push('\n');
                }
                message.data.push_str(&value);
            }
            _ => {}
        }
    }
    (fields > 0).then_some(message)
}

/// The value of tag `key` in an event's data.
fn tag_of(data: &Value, key: &str) -> String {
    data["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
        .unwrap_or_else(|| panic!("no {key} tag in {data}"))
        .to_owned()
}

/// The `studentId` tag of an event's data.
fn student_of(data: &Value) -> String {
    tag_of(data, "studentId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_of_the_filtered_types_arrive_as_they_are_appended() {
    let Some(server) = Server::start().await else {
        return;
    };
    let before = server.student("Ada", "Lovelace").await;
    let mut feed = Feed::open(&server, "/events/stream?type=StudentRegistered", None).await;

    let grace = server.student("Grace", "Hopper").await;
    let (first, event, data) = feed.next_event().await;
    assert_eq!(event, "StudentRegistered");
    assert_eq!(
        student_of(&data),
        grace,
        "not {before}, stored before the feed opened"
    );
    assert_eq!(data["payload"]["firstName"], "Grace");

    // A course is not a registration: the next message is the next student.
    server.course("Rust", 10).await;
    let alan = server.student("Alan", "Turing").await;
    let (second, _, data) = feed.next_event().await;
    assert_eq!(student_of(&data), alan);
    assert!(
        second > first + 1,
        "the course came in between: {first}, {second}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_and_tags_filter_together_and_every_tag_must_match() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    let grace = server.student("Grace", "Hopper").await;
    let rust = server.course("Rust", 10).await;
    let go = server.course("Go", 10).await;
    let path = format!("/events/stream?type=StudentEnrolledToCourse&tag=studentId:{ada}");
    let mut ada_enrolled = Feed::open(&server, &path, None).await;

    server.enroll(&rust, &grace).await.expect(201); // another student's
    server.enroll(&rust, &ada).await.expect(201);
    server
        .patch(
            &format!("/students/{ada}/subscription"),
            json!({"enrollmentTier": "Standard"}),
        )
        .await
        .expect(200); // Ada's, of another type
    server.enroll(&go, &grace).await.expect(201);
    server.enroll(&go, &ada).await.expect(201);
    let mut courses = Vec::new();
    for _ in 0..2 {
        let (_, event, data) = ada_enrolled.next_event().await;
        assert_eq!(event, "StudentEnrolledToCourse");
        assert_eq!(student_of(&data), ada);
        courses.push(tag_of(&data, "courseId"));
    }
    assert_eq!(courses, [rust.clone(), go.clone()]);

    // Two tags: only Ada's enrolment in Go carries both, though events with one of them
    // (her Rust enrolment, Grace's in Go) came before it.
    let both = format!("/events/stream?after=0&tag=studentId:{ada}&tag=courseId:{go}");
    let mut ada_in_go = Feed::open(&server, &both, None).await;
    let (_, event, data) = ada_in_go.next_event().await;
    assert_eq!(event, "StudentEnrolledToCourse");
    assert_eq!((student_of(&data), tag_of(&data, "courseId")), (ada, go));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_resumed_after_an_event_gets_exactly_the_events_after_it() {
    let Some(server) = Server::start().await else {
        return;
    };
    let mut students = Vec::new();
    for name in ["Ada", "Grace", "Alan"] {
        students.push(server.student(name, "Pioneer").await);
        server.course(&format!("{name}'s course"), 5).await;
    }
    let registrations = "/events/stream?type=StudentRegistered&after=0";
    let mut everything = Feed::open(&server, registrations, None).await;
    let mut positions = Vec::new();
    for student in &students {
        let (position, _, data) = everything.next_event().await;
        assert_eq!(&student_of(&data), student);
        positions.push(position);
    }
    drop(everything);

    // A reconnecting client sends the last id it got; it wins over the URL's ?after=.
    let last = positions[0].to_string();
    let mut resumed = Feed::open(&server, registrations, Some(&last)).await;
    assert_eq!(resumed.next_event().await.0, positions[1]);
    assert_eq!(resumed.next_event().await.0, positions[2]);
    let newest = server.student("Edsger", "Dijkstra").await;
    let (position, _, data) = resumed.next_event().await;
    assert_eq!(
        student_of(&data),
        newest,
        "after the stored ones, the new one, once"
    );
    assert!(position > positions[2]);

    let after = format!(
        "/events/stream?type=StudentRegistered&after={}",
        positions[1]
    );
    let mut from_query = Feed::open(&server, &after, None).await;
    assert_eq!(from_query.next_event().await.0, positions[2]);
    assert_eq!(from_query.next_event().await.0, position);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_positions_are_400_problems() {
    let Some(server) = Server::start().await else {
        return;
    };
    server.student("Ada", "Lovelace").await;
    for (path, says) in [
        ("/events/stream?tag=studentId", "not key:value"),
        ("/events/stream?tag=:x", "tag"),
        ("/events/stream?type=", "type is empty"),
        (
            "/events/stream?type=StudentRegistered&type=",
            "type is empty",
        ),
        ("/events/stream?after=first", "not a position"),
        ("/events/stream?types=StudentRegistered", "not a parameter"),
        ("/events/stream?after=99", "past the last event"),
    ] {
        let detail = server.get(path).await.problem(400);
        assert!(detail.contains(says), "{path}: {detail}");
    }
    for (id, says) in [("abc", "Last-Event-ID"), ("99", "past the last event")] {
        let response = server.open_stream("/events/stream", Some(id)).await;
        assert_eq!(response.status().as_u16(), 400, "{id}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "application/problem+json");
        let body: Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{id}: {detail}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_store_or_stopping_the_server_ends_the_open_feeds() {
    let Some(server) = Server::start().await else {
        return;
    };
    server.student("Ada", "Lovelace").await;
    if crate::POSTGRES {
        // No deleting a shared database; a graceful stop still ends an open feed.
        let mut feed = Feed::open(&server, "/events/stream?after=0", None).await;
        let (position, _, _) = feed.next_event().await;
        assert_eq!(position, 1);
        tokio::time::timeout(HANG_GUARD, server.stop())
            .await
            .expect("hang guard: the stop waited for the feed");
        let end = feed.next().await.expect("a last message");
        assert_eq!(end.event.as_deref(), Some("feed-end"), "{end:?}");
        return;
    }
    let mut feed = Feed::open(&server, "/events/stream", None).await;
    // The feed holds the store; the delete ends it rather than failing as "in use".
    let deleted = server.delete("/admin/store?confirm=true").await.expect(200);
    assert_eq!(deleted["deleted"], true);
    let end = feed.next().await.expect("a last message");
    assert_eq!(end.event.as_deref(), Some("feed-end"), "{end:?}");
    assert!(end.json()["reason"].as_str().unwrap().contains("deleted"));
    assert!(feed.next().await.is_none(), "the response ended");

    // On the fresh store, a feed works, and a graceful stop ends it instead of waiting for it.
    let mut feed = Feed::open(&server, "/events/stream?after=0", None).await;
    let grace = server.student("Grace", "Hopper").await;
    let (position, _, data) = feed.next_event().await;
    assert_eq!(position, 1, "positions start again");
    assert_eq!(student_of(&data), grace);
    tokio::time::timeout(HANG_GUARD, server.stop())
        .await
        .expect("hang guard: the stop waited for the feed");
    let end = feed.next().await.expect("a last message");
    assert_eq!(end.event.as_deref(), Some("feed-end"), "{end:?}");
    assert!(feed.next().await.is_none());
}
