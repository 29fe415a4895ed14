//! A server per test, and a small client.

use std::sync::Arc;
use std::time::Duration;

use course_management::{AppState, Settings, build_app, serve};
use opossum::{ManualClock, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The API on a temporary store, on 127.0.0.1 with a port of its own.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) clock: ManualClock,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _schema: Option<SchemaGuard>,
    dir: tempfile::TempDir,
}

/// The variable that holds the URL of the PostgreSQL database the `e2e_postgres` run uses
/// (`.ci/run` starts a throw-away cluster and sets it).
const DATABASE_URL_VAR: &str = "OPOSSUM_TEST_DATABASE_URL";

/// The test database's URL for a run on PostgreSQL; `None` (after saying so) without one,
/// except under `CI=true`, where a missing database fails the test.
fn database_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{DATABASE_URL_VAR} is not set: CI must run the end-to-end tests on PostgreSQL too"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "SKIPPED: {DATABASE_URL_VAR} is not set; see the README's \"Outgrowing a folder\""
                );
            }
            None
        }
    }
}

/// Drops a test's PostgreSQL schema when the server is gone.
struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let options = opossum_postgres::PgOptions::new().schema(schema);
                if let Ok(store) = opossum_postgres::PgEventStore::connect(&url, options).await {
                    let _ = store.drop_schema().await;
                }
            });
        })
        .join();
    }
}

/// A schema name no other test uses.
fn unique_schema() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "e2e_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A response: status, content type and JSON body (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) location: Option<String>,
    pub(crate) body: Value,
}

impl Reply {
    /// The body, after checking the status.
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected reply: {self:?}");
        self.body
    }

    /// The id in `field` of a 201 Created reply.
    #[track_caller]
    pub(crate) fn created(self, field: &str) -> String {
        let body = self.expect(201);
        body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {body}"))
            .to_owned()
    }

    /// The problem's detail, after checking the status and that the body is problem+json.
    #[track_caller]
    pub(crate) fn problem(self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected reply: {self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(self.body["title"].is_string(), "{self:?}");
        assert!(self.body["type"].is_string(), "{self:?}");
        self.body["detail"].as_str().unwrap_or_default().to_owned()
    }
}

impl Server {
    /// A server on a fresh store: a folder store, or with [`crate::POSTGRES`] a schema of its
    /// own in the test database (`None` when there is none, outside CI).
    pub(crate) async fn start() -> Option<Server> {
        Server::start_in(tempfile::tempdir().unwrap()).await
    }

    /// [`Server::start`] on the data directory `dir`, which may hold a store already.
    pub(crate) async fn start_in(dir: tempfile::TempDir) -> Option<Server> {
        let clock = ManualClock::new(Timestamp::now());
        let mut settings = Settings::new(dir.path());
        settings.clock = Arc::new(clock.clone());
        let mut schema_guard = None;
        if crate::POSTGRES {
            let url = database_url()?;
            let schema = unique_schema();
            let options = course_management::app::postgres_options(&schema).unwrap();
            let store = opossum_postgres::PgEventStore::connect(&url, options)
                .await
                .unwrap();
            settings = settings.on_postgres(Arc::new(store));
            schema_guard = Some(SchemaGuard { url, schema });
        }
        let app = build_app(&settings).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(app, settings);
        let task = tokio::spawn(async move {
            serve(listener, state, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Some(Server {
            base,
            clock,
            // The timeout only guards against a hang; no assertion depends on timing.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            stop: Some(stop),
            task: Some(task),
            _schema: schema_guard,
            dir,
        })
    }

    /// The data directory: the store folder (or, on PostgreSQL, the read models and keys) is
    /// its `course-management` folder.
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server gracefully and waits until the store is closed.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Sends a request. The URL and body are taken at once, so the returned future borrows
    /// nothing (requests built from temporary paths can run concurrently).
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> impl std::future::Future<Output = Reply> + use<> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = header("content-type").unwrap_or_default();
            let location = header("location");
            let text = response.text().await.unwrap();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            Reply {
                status,
                content_type,
                location,
                body,
            }
        }
    }

    /// Opens a streaming `GET` (a live feed), with a `Last-Event-ID` header when given, and
    /// returns the response once its headers are in; its body is read as it comes.
    pub(crate) async fn open_stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        request.send().await.unwrap()
    }

    pub(crate) fn get(&self, path: &str) -> impl std::future::Future<Output = Reply> + use<> {
        self.call(Method::GET, path, None)
    }

    pub(crate) fn post(
        &self,
        path: &str,
        body: Value,
    ) -> impl std::future::Future<Output = Reply> + use<> {
        self.call(Method::POST, path, Some(body))
    }

    pub(crate) fn patch(
        &self,
        path: &str,
        body: Value,
    ) -> impl std::future::Future<Output = Reply> + use<> {
        self.call(Method::PATCH, path, Some(body))
    }

    pub(crate) fn delete(&self, path: &str) -> impl std::future::Future<Output = Reply> + use<> {
        self.call(Method::DELETE, path, None)
    }

    /// Waits until no projection is being rebuilt (the daemon rebuilds the projections of a
    /// new store when it starts). Polls; the bound only guards against a hang.
    pub(crate) async fn rebuilds_settled(&self) {
        for _ in 0..1_000 {
            let status = self.get("/admin/projections/status").await.expect(200);
            let idle = status["rebuildsRunning"]
                .as_array()
                .is_some_and(Vec::is_empty)
                && status["rebuildsQueued"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                && status["projections"]
                    .as_array()
                    .is_some_and(|all| all.iter().all(|p| p["rebuilding"] == false));
            if idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the projections never stopped rebuilding");
    }

    /// Every item of the list route `path` (which may carry filters), read `limit` at a time by
    /// following `nextCursor`, and the number of pages that took. Checks that no page is over
    /// the limit and that only the last page has no cursor.
    pub(crate) async fn every_page(&self, path: &str, limit: usize) -> (Vec<Value>, usize) {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for pages in 1..=10_000 {
            let url = match &cursor {
                None => format!("{path}{separator}limit={limit}"),
                Some(cursor) => format!("{path}{separator}limit={limit}&cursor={cursor}"),
            };
            let page = self.get(&url).await.expect(200);
            let found = items(&page);
            assert!(found.len() <= limit, "{url}: {page}");
            all.extend(found);
            match page["nextCursor"].as_str() {
                None => return (all, pages),
                Some(next) => {
                    assert!(!next.is_empty(), "{url}: {page}");
                    cursor = Some(next.to_owned());
                }
            }
        }
        panic!("{path} never reached its last page");
    }

    /// Registers a student and returns their id.
    pub(crate) async fn student(&self, first: &str, last: &str) -> String {
        let email = format!(
            "{}.{}@example.edu",
            first.to_lowercase(),
            last.to_lowercase()
        );
        let body = self
            .post(
                "/students",
                json!({"firstName": first, "lastName": last, "email": email}),
            )
            .await
            .expect(201);
        body["studentId"].as_str().unwrap().to_owned()
    }

    /// Creates a course and returns its id.
    pub(crate) async fn course(&self, name: &str, max_students: u32) -> String {
        let body = self
            .post(
                "/courses",
                json!({"name": name, "description": "a course", "maxStudentCount": max_students}),
            )
            .await
            .expect(201);
        body["courseId"].as_str().unwrap().to_owned()
    }

    /// Enrols a student.
    pub(crate) fn enroll(
        &self,
        course: &str,
        student: &str,
    ) -> impl std::future::Future<Output = Reply> + use<> {
        self.post(
            &format!("/courses/{course}/enrollments"),
            json!({"studentId": student}),
        )
    }
}

/// Runs `n` requests at once and returns their replies.
pub(crate) async fn concurrently<F, Fut>(n: usize, request: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let pending: Vec<_> = (0..n).map(request).collect();
    let mut replies = Vec::with_capacity(n);
    let joined = futures_join_all(pending).await;
    replies.extend(joined);
    replies
}

/// Polls every future together on this task (they are HTTP requests, so all are in flight at
/// once on the server's side).
async fn futures_join_all<Fut: std::future::Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// The items of a list reply, after checking that it is one page:
/// `{"items": [...], "nextCursor": "…" | null}`.
#[track_caller]
pub(crate) fn items(page: &Value) -> Vec<Value> {
    let object = page
        .as_object()
        .unwrap_or_else(|| panic!("not a page: {page}"));
    assert_eq!(object.len(), 2, "a page holds items and nextCursor: {page}");
    let next = &page["nextCursor"];
    assert!(next.is_null() || next.is_string(), "{page}");
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .clone()
}

/// The string field `field` of every item of `list`.
#[track_caller]
pub(crate) fn texts(list: &[Value], field: &str) -> Vec<String> {
    list.iter().map(|item| text(item, field)).collect()
}

/// A string field of a JSON object.
pub(crate) fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {value}"))
        .to_owned()
}
