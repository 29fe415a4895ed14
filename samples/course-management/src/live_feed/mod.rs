//! The live feed: `GET /events/stream`, the store's events as Server-Sent Events — those
//! committed from now on, or every one after a position first (`?after=`, or the
//! `Last-Event-ID` a reconnecting client sends) — filtered by event types (any of them) and
//! tags (all of them).
//!
//! It reads through [`opossum::opossum_core::stream::subscribe`], which pulls the events from
//! the log in bounded batches as the client takes them: a slow client makes nothing buffer, and
//! a reconnecting one resumes without a gap or a duplicate. It sends no mediator message: a
//! feed is a read of the log, not of a read model.

mod filter;
mod routes;

pub use filter::{FeedFilter, Start};
pub use routes::{FeedEvent, KEEP_ALIVE, routes};
