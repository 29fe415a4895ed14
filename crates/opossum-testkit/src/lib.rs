//! Shared tests for every Opossum event store: a DCB conformance suite, fixtures, and a
//! model-based property harness.
//!
//! - [`dcb_conformance_tests!`] expands into one `#[test]` per case of [`checks`], run against
//!   fresh stores from a factory you give. Every case drives the store through
//!   [`opossum_core::EventStore`] only, so any store — in memory, on files, on a database — is
//!   held to the same DCB rules.
//! - [`fixtures`] builds events, tags and queries tersely and turns stored events into
//!   comparable [`EventRecord`]s.
//! - [`model`] generates random operation sequences with `proptest` and checks that a store
//!   gives the same answers as a reference (normally [`opossum_core::InMemoryEventStore`]),
//!   including across close and reopen.
//! - [`streams`] takes events from streams and subscriptions under a hang guard, and [`Probe`]
//!   counts the calls a stream makes to its store.
//!
//! # Example
//!
//! In `tests/conformance.rs` of a store crate:
//!
//! ```
//! use opossum_core::InMemoryEventStore;
//!
//! // The factory is called once per case, inside the case's tokio runtime.
//! opossum_testkit::dcb_conformance_tests!(InMemoryEventStore::new);
//! # fn main() {}
//! ```
//!
//! A store that needs something kept alive beside it (a temporary folder) is wrapped in
//! [`Guarded`].

// A failed expectation in a test helper is a failed test: panicking with a message is exactly
// what these helpers are for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test-support crate: a panic is a test failure"
)]

pub mod checks;
pub mod fixtures;
mod guarded;
pub mod model;
mod probe;
pub mod streams;

pub use fixtures::{
    EventRecord, event, event_with_payload, item, items_query, numbered, pos, positions, records,
    tag, tags_query, types_query,
};
pub use guarded::Guarded;
pub use probe::Probe;

use std::future::Future;

/// Runs `future` to completion on a fresh multi-threaded tokio runtime (4 workers, all drivers
/// enabled), the way [`dcb_conformance_tests!`] runs each case.
///
/// # Panics
/// When the runtime cannot be built, or when `future` panics.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// Expands into one `#[test]` per DCB conformance case in [`checks`].
///
/// The argument is a factory — anything callable as `factory()` that returns a fresh, empty
/// store implementing [`opossum_core::EventStore`] + `'static`: a function path such as
/// `InMemoryEventStore::new`, or a closure. It is called once per case, inside the case's
/// runtime (see [`block_on`]), and the store is dropped inside that runtime too.
///
/// The tests are named after the checks, so invoke the macro inside a module of its own when
/// the file holds other tests.
///
/// ```
/// mod dcb {
///     use opossum_core::InMemoryEventStore;
///     opossum_testkit::dcb_conformance_tests!(|| InMemoryEventStore::new());
/// }
/// # fn main() {}
/// ```
///
/// A store that needs something outside the test (a database server) takes a second argument,
/// `when = available`: a function called before each case, which returns false to skip it (and
/// says so). It decides, for example, that a missing server is a skip on a developer's machine
/// but a failure in CI.
///
/// ```
/// mod dcb_when_available {
///     use opossum_core::InMemoryEventStore;
///     fn available() -> bool { true }
///     opossum_testkit::dcb_conformance_tests!(InMemoryEventStore::new, when = available);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! dcb_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::dcb_conformance_tests!($factory, when = || true);
    };
    ($factory:expr, when = $when:expr $(,)?) => {
        $crate::__dcb_case_tests! { $factory; $when;
            append_returns_the_last_position,
            positions_are_contiguous_across_appends,
            failed_condition_appends_none_of_a_batch,
            a_batch_is_not_checked_against_itself,
            empty_append_is_rejected,
            read_all_returns_every_event_in_order,
            read_after_skips_up_to_and_including_the_position,
            read_limit_caps_the_result,
            read_descending_returns_newest_first,
            read_after_combines_with_direction_and_limit,
            read_by_type,
            read_by_tag,
            read_by_type_and_tag,
            read_query_items_are_alternatives,
            read_options_apply_to_matching_events,
            read_of_an_empty_store_is_empty,
            read_until_includes_the_position,
            read_until_combines_with_after_direction_and_limit,
            read_last_returns_the_newest_match,
            read_last_without_a_match_is_none,
            condition_with_after_passes_without_newer_matches,
            condition_with_after_fails_on_a_newer_match,
            condition_without_after_fails_on_any_match,
            condition_on_all_without_after_passes_only_when_empty,
            condition_on_all_after_head_passes,
            unrelated_write_does_not_invalidate_a_condition,
            related_write_invalidates_a_condition,
            condition_failure_is_reported_as_such,
            look_alike_tags_never_collide,
            awkward_tag_text_round_trips,
            event_type_names_are_exact,
            payloads_round_trip_byte_for_byte,
            metadata_round_trips,
            event_with_a_thousand_tags_is_found_by_each,
            three_megabyte_payload_round_trips,
            concurrent_conditional_appends_are_gap_free,
            concurrent_batches_stay_whole,
        }
        $crate::subscription_conformance_tests!($factory, when = $when);
    };
}

/// Expands into one `#[test]` per case of [`checks`] about heads, streaming reads and
/// subscriptions — a part of [`dcb_conformance_tests!`], which already includes it. Use it on
/// its own to run these cases again on a store configured differently (for example a file store
/// that polls for changes instead of watching), in a module of its own.
///
/// ```
/// mod polling {
///     use opossum_core::InMemoryEventStore;
///     opossum_testkit::subscription_conformance_tests!(InMemoryEventStore::new);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! subscription_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::subscription_conformance_tests!($factory, when = || true);
    };
    ($factory:expr, when = $when:expr $(,)?) => {
        $crate::__dcb_case_tests! { $factory; $when;
            head_is_the_position_of_the_last_event,
            wait_for_append_returns_once_the_head_passes,
            read_stream_returns_what_read_returns,
            read_stream_refuses_a_descending_read,
            read_stream_of_a_large_store_reads_in_batches,
            read_stream_ends_at_the_head_it_started_at,
            subscription_catches_up_then_follows_appends,
            subscription_sees_concurrent_appends_once_each_in_order,
            subscription_after_a_position_starts_after_it,
            slow_subscriber_misses_nothing,
            dropping_a_subscription_stops_its_work,
            subscription_to_a_query_gets_only_matching_events,
        }
    };
}

/// Implementation detail of [`dcb_conformance_tests!`]: one `#[test]` per named check.
#[doc(hidden)]
#[macro_export]
macro_rules! __dcb_case_tests {
    ($factory:expr; $when:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if !($when)() {
                    return;
                }
                $crate::block_on(async {
                    let store = ($factory)();
                    $crate::checks::$case(store).await;
                });
            }
        )*
    };
}
