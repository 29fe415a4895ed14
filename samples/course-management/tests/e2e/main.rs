//! End-to-end tests over real HTTP: each test starts the API on a fresh store in a temporary
//! folder, on a real TCP port, with a manual clock, and talks to it with an HTTP client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod aggregate;
mod announcements;
mod binary;
mod course_books;
mod courses;
mod dcb;
mod docs;
mod enrollment;
mod exam_tokens;
mod forget;
mod http;
mod invoices;
mod live_feed;
mod openapi;
mod paging;
mod records;
mod rules;
mod students;
mod support;

/// This run's servers keep their events in their folder store.
pub(crate) const POSTGRES: bool = false;
