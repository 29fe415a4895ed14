//! The browser's pages, rendered on the server. Everything shown is escaped by `maud`; no page
//! has a script, and the only thing a page loads is `/style.css`.

use maud::{DOCTYPE, Markup, html};
use opossum_core::Tag;
use opossum_fs::StoredEvent;

use super::{Chain, ChainState, Cursor, Listing, Params};
use crate::cli::Filters;
use crate::pretty_json;

/// The address of the page of the event at `position`.
fn event_href(position: u64) -> String {
    format!("/events/{position}")
}

/// A time as RFC 3339 text, shown to the second in UTC; other text as it is.
fn time(text: &str) -> String {
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => text.to_owned(),
    }
}

/// `n` and the noun for it: `1 event`, `3 events`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A tag as `key=value`.
fn tag(tag: &Tag) -> Markup {
    html! { span.tag { (tag.key()) "=" (tag.value()) } }
}

/// Every page: the title bar with the store's folder, the chain's banner, then `body`.
pub(super) fn layout(title: &str, store: &str, chain: &ChainState, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Opossum event browser" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Opossum " span { "event browser" } }
                    span.readonly title="Nothing on these pages can change the store" { "read-only" }
                    span.store { "Store " code { (store) } }
                }
                (banner(chain))
                main { (body) }
                footer {
                    "Read-only view: the store is opened for reading and never changed. "
                    "Times are UTC."
                }
            }
        }
    }
}

/// The chain's verification state.
fn banner(state: &ChainState) -> Markup {
    let again = if state.rechecking {
        " · checking again…"
    } else {
        ""
    };
    match &state.chain {
        Chain::Verifying => html! {
            div.banner.pending id="chain" {
                strong { "Verifying…" }
                " The hash chain is being checked; reload the page to see the result."
            }
        },
        Chain::NotRun(error) => html! {
            div.banner.warn id="chain" {
                strong { "Chain not verified: " }
                (error)
                (again)
            }
        },
        Chain::Checked(v) => match &v.problem {
            None => html! {
                div.banner.ok id="chain" {
                    strong { "Chain intact: " }
                    (count(usize::try_from(v.events_checked).unwrap_or(usize::MAX), "event"))
                    " verified at " (time(&v.verified_at))
                    @if let Some(hash) = &v.head_hash {
                        ", head hash " code.hash { (hash) }
                    }
                    (again)
                }
            },
            Some(p) => html! {
                div.banner.broken id="chain" {
                    strong {
                        "CHAIN BROKEN at position "
                        a href=(event_href(p.position)) { (p.position) }
                        " (" (p.kind) ")"
                    }
                    ": " (p.detail) " — verified at " (time(&v.verified_at))
                    (again)
                    span.where {
                        (count(usize::try_from(v.events_checked).unwrap_or(usize::MAX), "event"))
                        " before it verified intact; the break is in " code { (p.file) }
                        " at byte " (p.offset) "."
                    }
                }
            },
        },
    }
}

/// A heading and a sentence: the page of an error.
pub(super) fn message(heading: &str, text: &str) -> Markup {
    html! {
        h1 { (heading) }
        p.message { (text) }
        p { a href="/" { "← All events" } }
    }
}

/// The filters in words, one item each.
fn applied(f: &Filters) -> Vec<String> {
    let mut items = Vec::new();
    if !f.types.is_empty() {
        items.push(format!("type {}", f.types.join(" or ")));
    }
    items.extend(f.tags.iter().map(|t| format!("tag {t}")));
    items.extend(f.since.iter().map(|t| format!("since {t}")));
    items.extend(f.until.iter().map(|t| format!("until {t}")));
    items.extend(f.after.iter().map(|p| format!("after position {p}")));
    items.extend(f.before.iter().map(|p| format!("before position {p}")));
    items
}

/// The start page: the filters' form, the page of events and the links to the others.
pub(super) fn index(params: &Params, listing: &Listing) -> Markup {
    let f = &params.filters;
    let one_empty = [String::new()];
    let types: &[String] = if f.types.is_empty() {
        &one_empty
    } else {
        &f.types
    };
    let tags: &[String] = if f.tags.is_empty() {
        &one_empty
    } else {
        &f.tags
    };
    let applied = applied(f);
    let newest = listing.events.first().map(|e| e.event.position.get());
    let oldest = listing.events.last().map(|e| e.event.position.get());
    let paged = params.older_than.is_some() || params.newer_than.is_some();
    html! {
        h1 { "Events" }
        form.filters method="get" action="/" {
            div.fields {
                @for t in types {
                    label {
                        span { "Type" }
                        input type="text" name="type" value=(t) list="event-types" placeholder="any type";
                    }
                }
                @for t in tags {
                    label {
                        span { "Tag" }
                        input type="text" name="tag" value=(t) placeholder="key=value";
                    }
                }
                label {
                    span { "Since (RFC 3339)" }
                    input type="text" name="since" value=[f.since.as_deref()] placeholder="2026-01-31T00:00:00Z";
                }
                label {
                    span { "Until (RFC 3339)" }
                    input type="text" name="until" value=[f.until.as_deref()] placeholder="2026-02-01T00:00:00Z";
                }
                label {
                    span { "After position" }
                    input type="number" name="after" min="0" value=[f.after];
                }
                label {
                    span { "Before position" }
                    input type="number" name="before" min="1" value=[f.before];
                }
                label {
                    span { "Per page" }
                    input type="number" name="limit" min="1" max=(super::MAX_LIMIT) value=(params.limit);
                }
            }
            div.actions {
                button type="submit" { "Apply filters" }
                a href="/" { "Clear" }
            }
            datalist id="event-types" {
                @for (name, n) in &listing.types {
                    option value=(name) { (name) " (" (n) ")" }
                }
            }
        }
        p.applied {
            "Filters: "
            @if applied.is_empty() {
                "none (every event)"
            }
            @for item in &applied {
                span.chip { (item) }
            }
        }
        p.count id="count" {
            strong { (count(listing.events.len(), "event")) }
            " on this page"
            @if let (Some(newest), Some(oldest)) = (newest, oldest) {
                @if newest == oldest {
                    " (position " (newest) ")"
                } @else {
                    " (positions " (newest) " down to " (oldest) ")"
                }
            }
            ", newest first. The store holds "
            (count(usize::try_from(listing.head.unwrap_or(0)).unwrap_or(usize::MAX), "event"))
            "."
        }
        @if listing.events.is_empty() {
            p.empty { "No event matches these filters on this page." }
        } @else {
            table.events {
                thead {
                    tr {
                        th.num { "Position" }
                        th { "Time" }
                        th { "Type" }
                        th { "Tags" }
                        th { "User" }
                    }
                }
                tbody {
                    @for e in &listing.events {
                        @let p = e.event.position.get();
                        @let event = &e.event.event;
                        tr id=(format!("event-{p}")) {
                            td.num { a href=(event_href(p)) { (p) } }
                            td.time { (event.metadata().timestamp) }
                            td { a href=(event_href(p)) { (event.event_type().as_str()) } }
                            td.tags { @for t in event.tags() { (tag(t)) " " } }
                            td { (event.metadata().user_id.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if paged {
                a href=(params.href(Cursor::Newest)) { "« Newest" }
            }
            @if let (true, Some(newest)) = (listing.newer, newest) {
                a rel="prev" id="newer" href=(params.href(Cursor::NewerThan(newest))) { "‹ Newer" }
            }
            @if let (true, Some(oldest)) = (listing.older, oldest) {
                a rel="next" id="older" href=(params.href(Cursor::OlderThan(oldest))) { "Older ›" }
                a href=(params.href(Cursor::NewerThan(0))) { "Oldest »" }
            }
        }
    }
}

/// What recomputing an event's chain hash found.
enum Recomputed {
    /// The stored hash is right.
    Matches,
    /// The line and its predecessor's hash give another hash.
    Differs(String),
    /// The hash cannot be recomputed (no hash field, a predecessor hash that is not hex).
    Impossible,
}

/// An event's metadata field, or a dash.
fn field(value: Option<&String>) -> Markup {
    html! {
        @match value {
            Some(v) => code { (v) },
            None => span.none { "—" },
        }
    }
}

/// The page of one event.
pub(super) fn event(e: &StoredEvent, head: Option<u64>) -> Markup {
    let p = e.event.position.get();
    let event = &e.event.event;
    let m = event.metadata();
    let recomputed = match opossum_fs::chain_hash(&e.previous_hash, &e.line) {
        Some(h) if h == e.hash => Recomputed::Matches,
        Some(h) => Recomputed::Differs(h),
        None => Recomputed::Impossible,
    };
    let next = head.filter(|h| p < *h).map(|_| p + 1);
    html! {
        nav.crumbs { a href="/" { "← All events" } }
        h1 { "Event " (p) " " span.type { (event.event_type().as_str()) } }
        nav.neighbours {
            @if p > 1 {
                a rel="prev" id="previous" href=(event_href(p - 1)) { "‹ Previous event (" (p - 1) ")" }
            }
            @if let Some(n) = next {
                a rel="next" id="next" href=(event_href(n)) { "Next event (" (n) ") ›" }
            }
        }
        section {
            h2 { "Event" }
            dl.facts {
                dt { "Position" } dd { (p) }
                dt { "Type" } dd { code { (event.event_type().as_str()) } }
                dt { "Time" } dd { (m.timestamp) }
                dt { "Tags" }
                dd {
                    @if event.tags().is_empty() { span.none { "none" } }
                    @for t in event.tags() { (tag(t)) " " }
                }
            }
        }
        section {
            h2 { "Metadata" }
            dl.facts {
                dt { "Timestamp" } dd { (m.timestamp) }
                dt { "Correlation id" } dd { (field(m.correlation_id.as_ref())) }
                dt { "Causation id" } dd { (field(m.causation_id.as_ref())) }
                dt { "Operation id" } dd { (field(m.operation_id.as_ref())) }
                dt { "User id" } dd { (field(m.user_id.as_ref())) }
            }
        }
        section {
            h2 { "Chain" }
            dl.facts {
                dt { "Hash" } dd { code.hash id="hash" { (e.hash) } }
                dt { "Predecessor's hash" }
                dd {
                    code.hash id="previous-hash" { (e.previous_hash) }
                    br;
                    @if p > 1 {
                        "the hash of "
                        a href=(event_href(p - 1)) { "event " (p - 1) }
                    } @else {
                        "64 zeros: the start of the chain"
                    }
                }
                dt { "Recomputed" }
                dd {
                    @match &recomputed {
                        Recomputed::Matches => span.good id="recomputed" {
                            "matches: SHA-256 over the predecessor's hash and this line gives the stored hash"
                        },
                        Recomputed::Differs(h) => span.bad id="recomputed" {
                            "DOES NOT MATCH: the predecessor's hash and this line give "
                            code.hash { (h) }
                            " — the line was changed after it was written"
                        },
                        Recomputed::Impossible => span.bad id="recomputed" {
                            "cannot be recomputed: the line holds no hash field, or the predecessor's hash is not 64 hex digits"
                        },
                    }
                }
                dt { "Stored in" }
                dd { code { (e.file.display()) } " at byte " (e.offset) }
            }
        }
        section {
            h2 { "Payload" }
            pre.json id="payload" { (pretty_json(event.payload().as_json(), 0)) }
        }
        section {
            h2 { "Stored line" }
            p.note { "Exactly as the log stores it, byte for byte (without its line break)." }
            pre.line id="stored-line" { (e.line) }
        }
    }
}
