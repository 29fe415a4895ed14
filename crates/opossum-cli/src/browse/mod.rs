//! `opossum browse DIR [--bind ADDR]`: a read-only web page on which auditors and inspectors
//! browse a store's events.
//!
//! The pages are rendered on the server ([`pages`]), need no JavaScript and load nothing from
//! elsewhere: the stylesheet is part of the binary, so the browser works offline. The store is
//! opened read-only and only ever read; the server answers only `GET` and `HEAD`, and every other
//! method on every path with `405 Method Not Allowed`. A banner on every page shows whether the
//! hash chain verified, checked in the background at start and again when the store grew (at
//! most once a minute).
//!
//! | route | what it shows |
//! |---|---|
//! | `GET /` | the events, newest first, a page at a time, with filters |
//! | `GET /events/{position}` | one event: metadata, payload, the stored line, its chain links |
//! | `GET /style.css` | the stylesheet |

mod pages;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query as UrlQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opossum_core::{Position, Query, ReadOptions};
use opossum_fs::{FileEventStore, StoredEvent};

use crate::cli::{BrowseArgs, Filters};
use crate::commands::verify::{Verified, verify_dir};
use crate::{Error, Outcome, Output, Selection, open_read_only};

/// Events on a page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The most events a page shows.
const MAX_LIMIT: usize = 500;
/// The shortest time between two verifications of the chain.
const RECHECK: Duration = Duration::from_secs(60);
/// The stylesheet, served at `/style.css`.
const STYLE: &str = include_str!("style.css");
/// What the pages may load: their own stylesheet, nothing else; forms submit only to the
/// browser itself, and no other site may frame the pages.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
base-uri 'none'; frame-ancestors 'none'";
/// The methods the browser answers.
const ALLOW: &str = "GET, HEAD";

/// Serves the read-only event browser for the store in `args.dir` on `args.bind` until the
/// process is interrupted.
pub(crate) fn browse(args: &BrowseArgs, out: &mut Output) -> Result<Outcome, Error> {
    let store = open_read_only(&args.dir)?;
    let app = Arc::new(App {
        store: Arc::new(store),
        dir: args.dir.clone(),
        chain: Mutex::new(ChainState {
            chain: Chain::Verifying,
            rechecking: false,
        }),
    });
    crate::commands::block_on(serve(&args.bind, app, out), Outcome::Done)
}

/// Binds `bind`, says where the browser is, and serves.
async fn serve(bind: &str, app: Arc<App>, out: &mut Output<'_>) -> Result<Outcome, Error> {
    let bind_error = |source| Error::Bind {
        address: bind.to_owned(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let url = format!("http://{address}/");
    let store = app.store.path().display().to_string();
    if out.is_json() {
        out.json_line(&serde_json::json!({ "url": url, "store": store }), false)?;
    } else {
        out.emit(&(), |w| {
            writeln!(w, "browsing {store} at {url} (read-only; Ctrl+C to stop)")
        })?;
    }
    tokio::spawn(watch_chain(Arc::clone(&app)));
    axum::serve(listener, router(app))
        .await
        .map_err(|e| Error::io("serve the event browser on", address.to_string(), e))?;
    Ok(Outcome::Done)
}

/// The routes: pages for `GET` (and `HEAD`), `405` for every other method on every path.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/events/{position}", get(event))
        .route("/style.css", get(style))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), read_only))
        .layer(middleware::map_response(security_headers))
        .with_state(app)
}

/// What every handler shares.
struct App {
    /// The store, opened read-only.
    store: Arc<FileEventStore>,
    /// Its folder, as given.
    dir: PathBuf,
    /// What the last verification of the chain found.
    chain: Mutex<ChainState>,
}

/// What the banner shows.
#[derive(Clone, Debug)]
enum Chain {
    /// The first verification has not finished.
    Verifying,
    /// The last verification's result.
    Checked(Box<Verified>),
    /// The last verification could not run.
    NotRun(String),
}

/// The chain's verification state, and whether a new verification is under way.
#[derive(Clone, Debug)]
struct ChainState {
    chain: Chain,
    rechecking: bool,
}

impl App {
    /// The chain's verification state now.
    fn chain(&self) -> ChainState {
        self.chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update_chain(&self, change: impl FnOnce(&mut ChainState)) {
        change(&mut self.chain.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// A whole page: the layout with the banner around `body`.
    fn page(&self, status: StatusCode, title: &str, body: maud::Markup) -> Response {
        let store = self.store.path().display().to_string();
        (status, pages::layout(title, &store, &self.chain(), body)).into_response()
    }

    /// A page that says what went wrong.
    fn problem(&self, status: StatusCode, heading: &str, text: &str) -> Response {
        self.page(status, heading, pages::message(heading, text))
    }

    /// The store in a blocking task: `read` runs on a thread where file reads may block.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&FileEventStore) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || read(&store))
            .await
            .map_err(|e| Error::io("read", &self.dir, std::io::Error::other(e)))?
    }

    /// The 500 page for a store that could not be read.
    fn store_failed(&self, error: &Error) -> Response {
        self.problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The store could not be read",
            &error.to_string(),
        )
    }
}

/// Verifies the chain now, and again whenever the store's head moved, at most every
/// [`RECHECK`].
async fn watch_chain(app: Arc<App>) {
    // The head the last verification started from; `None` before the first, or when it could
    // not be read.
    let mut checked: Option<Option<u64>> = None;
    loop {
        let head = app.read(head).await.ok();
        if head.is_none() || head != checked {
            app.update_chain(|state| state.rechecking = true);
            let dir = app.dir.clone();
            let chain = match tokio::task::spawn_blocking(move || verify_dir(&dir)).await {
                Ok(Ok(verified)) => Chain::Checked(Box::new(verified)),
                Ok(Err(e)) => Chain::NotRun(e.to_string()),
                Err(e) => Chain::NotRun(format!("the verification stopped: {e}")),
            };
            app.update_chain(|state| {
                state.chain = chain;
                state.rechecking = false;
            });
            checked = head;
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// The store's head position, `None` when it holds no events.
fn head(store: &FileEventStore) -> Result<Option<u64>, Error> {
    Ok(store
        .read_last_blocking(&Query::all())?
        .map(|e| e.position.get()))
}

/// Lets `GET` and `HEAD` through and answers every other method with `405` and `Allow`.
async fn read_only(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    let text = format!(
        "This browser is read-only: it answers only GET and HEAD, not {}. Nothing in the store can be changed from here.",
        request.method()
    );
    let mut response = app.problem(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", &text);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    response
}

/// The headers of every response: a strict content policy, no sniffing, no caching (the pages
/// show the store as it is now), no referrer, no framing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /style.css`.
async fn style() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLE,
    )
        .into_response()
}

/// Any other path.
async fn not_found(State(app): State<Arc<App>>) -> Response {
    app.problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page here. The events are listed on the start page.",
    )
}

/// What the start page's query string asks for.
#[derive(Clone, Debug)]
struct Params {
    /// The filters, as the form gave them.
    filters: Filters,
    /// Events per page.
    limit: usize,
    /// The page of the newest events before this position.
    older_than: Option<u64>,
    /// The page of the oldest events after this position.
    newer_than: Option<u64>,
}

impl Params {
    /// The parameters of a query string, empty fields left out (a form sends them).
    fn parse(pairs: &[(String, String)]) -> Result<Params, String> {
        let mut params = Params {
            filters: Filters::default(),
            limit: DEFAULT_LIMIT,
            older_than: None,
            newer_than: None,
        };
        let position = |name: &str, text: &str| {
            text.parse::<u64>().map_err(|_| {
                format!("{name}: {text:?} is not a position; positions are whole numbers from 1")
            })
        };
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "type" => params.filters.types.push(value.to_owned()),
                "tag" => params.filters.tags.push(value.to_owned()),
                "since" => params.filters.since = Some(value.to_owned()),
                "until" => params.filters.until = Some(value.to_owned()),
                "after" => params.filters.after = Some(position("after", value)?),
                "before" => params.filters.before = Some(position("before", value)?),
                "older_than" => params.older_than = Some(position("older_than", value)?),
                "newer_than" => params.newer_than = Some(position("newer_than", value)?),
                "limit" => {
                    params.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "limit: {value:?} is not a page size; give a whole number from 1 to {MAX_LIMIT}"
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "{other:?} is not a filter; the filters are type, tag, since, until, after, before and limit"
                    ));
                }
            }
        }
        if params.older_than.is_some() && params.newer_than.is_some() {
            return Err(
                "a page is either older_than or newer_than a position, not both".to_owned(),
            );
        }
        Ok(params)
    }

    /// The start page's address with these filters and page size, on the page `cursor`
    /// chooses.
    fn href(&self, cursor: Cursor) -> String {
        let f = &self.filters;
        let mut pairs: Vec<(&str, String)> = Vec::new();
        pairs.extend(f.types.iter().map(|t| ("type", t.clone())));
        pairs.extend(f.tags.iter().map(|t| ("tag", t.clone())));
        pairs.extend(f.since.iter().map(|t| ("since", t.clone())));
        pairs.extend(f.until.iter().map(|t| ("until", t.clone())));
        pairs.extend(f.after.iter().map(|p| ("after", p.to_string())));
        pairs.extend(f.before.iter().map(|p| ("before", p.to_string())));
        if self.limit != DEFAULT_LIMIT {
            pairs.push(("limit", self.limit.to_string()));
        }
        match cursor {
            Cursor::Newest => {}
            Cursor::OlderThan(p) => pairs.push(("older_than", p.to_string())),
            Cursor::NewerThan(p) => pairs.push(("newer_than", p.to_string())),
        }
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        if query.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{query}")
        }
    }
}

/// Which page of the selected events.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// The newest events.
    Newest,
    /// The newest events before a position.
    OlderThan(u64),
    /// The oldest events after a position (0: the oldest events).
    NewerThan(u64),
}

/// `text` percent-encoded for a query string: everything but letters, digits and `-._~`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One page of events.
#[derive(Debug)]
struct Listing {
    /// The events, newest first.
    events: Vec<StoredEvent>,
    /// Whether older events are selected too.
    older: bool,
    /// Whether newer events are selected too.
    newer: bool,
    /// The store's head.
    head: Option<u64>,
    /// The store's event types and their counts.
    types: Vec<(String, u64)>,
}

/// `selection`, narrowed to the events after `after` and before `before`; `None` when no
/// position is left.
fn narrowed(selection: &Selection, after: Option<u64>, before: Option<u64>) -> Option<Selection> {
    let mut narrowed = selection.clone();
    if let Some(after) = after {
        let after = after.max(narrowed.after.map_or(0, Position::get));
        narrowed.after = Position::new(after).ok();
    }
    if let Some(before) = before {
        narrowed.before = Some(narrowed.before.map_or(before, |b| b.min(before)));
    }
    let lowest = narrowed.after.map_or(0, Position::get);
    match narrowed.before {
        Some(before) if before <= lowest.saturating_add(1) => None,
        _ => Some(narrowed),
    }
}

/// At most `limit` events of `selection` between `after` and `before`.
fn read_between(
    store: &FileEventStore,
    selection: &Selection,
    after: Option<u64>,
    before: Option<u64>,
    limit: usize,
    descending: bool,
) -> Result<Vec<StoredEvent>, Error> {
    match narrowed(selection, after, before) {
        Some(s) => s.read(store, Some(limit), descending),
        None => Ok(Vec::new()),
    }
}

/// The page of `selection` that `params` asks for.
fn list(store: &FileEventStore, selection: &Selection, params: &Params) -> Result<Listing, Error> {
    let limit = params.limit;
    let (events, older, newer) = if let Some(cursor) = params.newer_than {
        let mut events = read_between(store, selection, Some(cursor), None, limit + 1, false)?;
        let newer = events.len() > limit;
        events.truncate(limit);
        events.reverse();
        let older = match events.last() {
            Some(e) => {
                let oldest = e.event.position.get();
                !read_between(store, selection, None, Some(oldest), 1, true)?.is_empty()
            }
            None => false,
        };
        (events, older, newer)
    } else {
        let mut events = read_between(store, selection, None, params.older_than, limit + 1, true)?;
        let older = events.len() > limit;
        events.truncate(limit);
        let newer = match (params.older_than, events.first()) {
            (Some(_), Some(e)) => {
                let newest = e.event.position.get();
                !read_between(store, selection, Some(newest), None, 1, false)?.is_empty()
            }
            _ => false,
        };
        (events, older, newer)
    };
    Ok(Listing {
        events,
        older,
        newer,
        head: head(store)?,
        types: store.event_types()?,
    })
}

/// What is wrong with a filter, for a page (`tag: …` rather than `invalid --tag: …`).
fn filter_problem(error: &Error) -> String {
    match error {
        Error::InvalidArgument { argument, reason } => {
            format!("{}: {reason}", argument.trim_start_matches('-'))
        }
        other => other.to_string(),
    }
}

/// `GET /`: a page of events, newest first, with the filters' form.
async fn index(
    State(app): State<Arc<App>>,
    query: Result<UrlQuery<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let bad = |text: &str| app.problem(StatusCode::BAD_REQUEST, "These filters do not work", text);
    let pairs = match query {
        Ok(UrlQuery(pairs)) => pairs,
        Err(e) => return bad(&e.body_text()),
    };
    let params = match Params::parse(&pairs) {
        Ok(params) => params,
        Err(text) => return bad(&text),
    };
    let selection = match Selection::new(&params.filters) {
        Ok(selection) => selection,
        Err(e) => return bad(&filter_problem(&e)),
    };
    let wanted = params.clone();
    match app
        .read(move |store| list(store, &selection, &wanted))
        .await
    {
        Ok(listing) => app.page(StatusCode::OK, "Events", pages::index(&params, &listing)),
        Err(e) => app.store_failed(&e),
    }
}

/// One event and what the page about it needs to know around it.
#[derive(Debug)]
struct Detail {
    /// The event; `None` when there is none at the position.
    event: Option<StoredEvent>,
    /// The store's head.
    head: Option<u64>,
}

/// The event at `position`.
fn detail(store: &FileEventStore, position: Position) -> Result<Detail, Error> {
    let mut options = ReadOptions::new().limit(1);
    if let Some(previous) = position.previous() {
        options = options.after(previous);
    }
    let event = store
        .read_stored(&Query::all(), options)?
        .into_iter()
        .next()
        .filter(|e| e.event.position == position);
    Ok(Detail {
        event,
        head: head(store)?,
    })
}

/// `GET /events/{position}`: one event, all there is to know about it.
async fn event(
    State(app): State<Arc<App>>,
    position: Result<UrlPath<String>, PathRejection>,
) -> Response {
    let text = match position {
        Ok(UrlPath(text)) => text,
        Err(e) => return app.problem(StatusCode::BAD_REQUEST, "Not a position", &e.body_text()),
    };
    let Ok(number) = text.parse::<u64>() else {
        return app.problem(
            StatusCode::BAD_REQUEST,
            "Not a position",
            &format!("{text:?} is not a position; positions are whole numbers from 1."),
        );
    };
    let Ok(position) = Position::new(number) else {
        return app.problem(
            StatusCode::NOT_FOUND,
            "No such event",
            "There is no event at position 0: positions start at 1.",
        );
    };
    match app.read(move |store| detail(store, position)).await {
        Ok(Detail {
            event: Some(event),
            head,
        }) => app.page(
            StatusCode::OK,
            &format!("Event {number}"),
            pages::event(&event, head),
        ),
        Ok(Detail { event: None, head }) => {
            let text = match head {
                Some(head) => format!(
                    "There is no event at position {number}: the store's events are at positions 1 to {head}."
                ),
                None => {
                    format!("There is no event at position {number}: the store holds no events.")
                }
            };
            app.problem(StatusCode::NOT_FOUND, "No such event", &text)
        }
        Err(e) => app.store_failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &[(&str, &str)]) -> Vec<(String, String)> {
        text.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameters_are_checked_and_empty_fields_ignored() {
        let p = Params::parse(&pairs(&[
            ("type", "CourseCreated"),
            ("tag", "group=1"),
            ("since", ""),
            ("after", "3"),
            ("limit", "20"),
        ]))
        .unwrap();
        assert_eq!(p.filters.types, ["CourseCreated"]);
        assert_eq!(p.filters.tags, ["group=1"]);
        assert_eq!(p.filters.since, None);
        assert_eq!(p.filters.after, Some(3));
        assert_eq!(p.limit, 20);
        assert_eq!(
            p.href(Cursor::OlderThan(9)),
            "/?type=CourseCreated&tag=group%3D1&after=3&limit=20&older_than=9"
        );
        assert!(Params::parse(&pairs(&[("after", "x")])).is_err());
        assert!(Params::parse(&pairs(&[("limit", "501")])).is_err());
        assert!(Params::parse(&pairs(&[("limit", "0")])).is_err());
        assert!(Params::parse(&pairs(&[("typ", "X")])).is_err());
        assert!(Params::parse(&pairs(&[("older_than", "3"), ("newer_than", "1")])).is_err());
    }

    #[test]
    fn narrowing_leaves_out_empty_ranges() {
        let selection = Selection::new(&Filters {
            after: Some(5),
            before: Some(50),
            ..Filters::default()
        })
        .unwrap();
        let s = narrowed(&selection, Some(2), Some(60)).unwrap();
        assert_eq!(s.after.map(Position::get), Some(5));
        assert_eq!(s.before, Some(50));
        let s = narrowed(&selection, Some(10), Some(20)).unwrap();
        assert_eq!(s.after.map(Position::get), Some(10));
        assert_eq!(s.before, Some(20));
        assert!(narrowed(&selection, Some(10), Some(11)).is_none());
        assert!(narrowed(&selection, None, Some(6)).is_none());
        let all = Selection::new(&Filters::default()).unwrap();
        assert!(narrowed(&all, None, Some(1)).is_none());
        assert!(narrowed(&all, None, Some(0)).is_none());
        assert!(narrowed(&all, Some(0), None).is_some());
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("a b=c&d/é"), "a%20b%3Dc%26d%2F%C3%A9");
        assert_eq!(encode("2026-01-01T00:00:00Z"), "2026-01-01T00%3A00%3A00Z");
    }
}
