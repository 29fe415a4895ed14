//! The end-to-end tests again, with each server's events in PostgreSQL (a schema of its own in
//! the database `OPOSSUM_TEST_DATABASE_URL` names) and its read models in its own folder: the
//! same requests, the same answers. Without the variable the tests say they skipped; with
//! `CI=true` they fail. The tests of the binary's folder handling, and those that read the
//! store folder's event files (`records`), run on the folder store only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../e2e/admin.rs"]
mod admin;
#[path = "../e2e/aggregate.rs"]
mod aggregate;
#[path = "../e2e/announcements.rs"]
mod announcements;
#[path = "../e2e/course_books.rs"]
mod course_books;
#[path = "../e2e/courses.rs"]
mod courses;
#[path = "../e2e/dcb.rs"]
mod dcb;
#[path = "../e2e/enrollment.rs"]
mod enrollment;
#[path = "../e2e/exam_tokens.rs"]
mod exam_tokens;
#[path = "../e2e/forget.rs"]
mod forget;
#[path = "../e2e/invoices.rs"]
mod invoices;
#[path = "../e2e/live_feed.rs"]
mod live_feed;
#[path = "../e2e/openapi.rs"]
mod openapi;
#[path = "../e2e/paging.rs"]
mod paging;
#[path = "../e2e/rules.rs"]
mod rules;
#[path = "../e2e/students.rs"]
mod students;
#[path = "../e2e/support.rs"]
mod support;

/// This run's servers keep their events in PostgreSQL.
pub(crate) const POSTGRES: bool = true;
