//! Tests of the testkit itself: the model harness accepts a correct store and catches broken
//! ones, and conformance checks fail on stores that break the rule they guard.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a test failure"
)]

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, Direction, Error, EventStore, EventStream, InMemoryEventStore, NewEvent,
    Payload, Position, Query, ReadOptions, SequencedEvent,
};
use opossum_testkit::checks;
use opossum_testkit::model::{BlockingStore, Op, check_sequence, config, operations};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};

/// The way a [`Faulty`] store breaks the DCB rules.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Appends as if no condition were given.
    IgnoreConditions,
    /// Checks conditions against the whole store, ignoring `after`.
    IgnoreConditionAfter,
    /// Reads oldest first whatever the direction.
    IgnoreDescending,
    /// Reads up to the head whatever `until` says.
    IgnoreUntil,
    /// Stores payloads re-encoded by serde_json instead of verbatim.
    ReencodePayloads,
    /// Checks the condition, lets other tasks run, then appends: not atomic.
    RacyConditions,
    /// Loses the newest event when reopened.
    LoseNewestOnReopen,
}

/// The in-memory store with one deliberate bug.
struct Faulty {
    inner: InMemoryEventStore,
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault) -> Faulty {
        Faulty {
            inner: InMemoryEventStore::new(),
            fault,
        }
    }

    fn reencode(event: NewEvent) -> NewEvent {
        let value: serde_json::Value = event.payload().decode().unwrap();
        NewEvent::from_parts(
            event.event_type().clone(),
            event.tags().to_vec(),
            Payload::from_value(&value).unwrap(),
            event.metadata().clone(),
        )
        .unwrap()
    }

    /// The synchronous append with the fault applied (all faults but the racy one).
    fn append_faulty(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        match self.fault {
            Fault::IgnoreConditions => self.inner.append_blocking(events, None),
            Fault::IgnoreConditionAfter => self
                .inner
                .append_blocking(events, condition.map(|c| c.after(None))),
            Fault::ReencodePayloads => {
                let events = events.into_iter().map(Faulty::reencode).collect();
                self.inner.append_blocking(events, condition)
            }
            _ => self.inner.append_blocking(events, condition),
        }
    }

    fn read_faulty(&self, query: &Query, mut options: ReadOptions) -> Vec<SequencedEvent> {
        match self.fault {
            Fault::IgnoreDescending => options.direction = Direction::Ascending,
            Fault::IgnoreUntil => options.until = None,
            _ => {}
        }
        self.inner.read_blocking(query, options).unwrap_or_default()
    }
}

#[async_trait]
impl EventStore for Faulty {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        if let (Fault::RacyConditions, Some(c)) = (self.fault, &condition) {
            let mut options = ReadOptions::new().limit(1);
            options.after = c.after;
            if !self
                .inner
                .read_blocking(&c.fail_if_events_match, options)?
                .is_empty()
            {
                return Err(Error::ConditionFailed { after: c.after });
            }
            tokio::task::yield_now().await;
            return self.inner.append_blocking(events, None);
        }
        self.append_faulty(events, condition)
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        Ok(self.read_faulty(query, options))
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.inner.read_last_blocking(query)
    }
}

impl BlockingStore for Faulty {
    fn append_blocking(
        &mut self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.append_faulty(events, condition)
    }

    fn read_blocking(
        &mut self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        Ok(self.read_faulty(query, options))
    }

    fn read_last_blocking(&mut self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.inner.read_last_blocking(query)
    }

    fn reopen(&mut self) -> Result<(), Error> {
        if let Fault::LoseNewestOnReopen = self.fault {
            let mut events = self
                .inner
                .read_blocking(&Query::all(), ReadOptions::new())?;
            events.pop();
            self.inner = InMemoryEventStore::new();
            for e in events {
                self.inner.append_blocking(vec![e.event], None)?;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Two correct stores always agree: the generators produce only valid operations and the
    /// harness compares deterministically.
    #[test]
    fn the_reference_agrees_with_itself(ops in operations(1..40)) {
        let mut reference = InMemoryEventStore::new();
        let mut subject = InMemoryEventStore::new();
        check_sequence(&ops, &mut reference, &mut subject)?;
    }
}

/// Runs the model comparison of `fault` against the reference with a fixed seed.
fn model_run(fault: Fault) -> Result<(), TestError<Vec<Op>>> {
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner.run(&operations(1..40), |ops| {
        let mut reference = InMemoryEventStore::new();
        let mut subject = Faulty::new(fault);
        check_sequence(&ops, &mut reference, &mut subject)
    })
}

fn assert_caught(fault: Fault) {
    match model_run(fault) {
        Err(TestError::Fail(reason, ops)) => {
            assert!(!ops.is_empty(), "{fault:?}: a failing sequence has steps");
            assert!(!reason.message().is_empty());
        }
        other => panic!("the model harness did not catch {fault:?}: {other:?}"),
    }
}

#[test]
fn the_model_catches_ignored_conditions() {
    assert_caught(Fault::IgnoreConditions);
}

#[test]
fn the_model_catches_an_ignored_condition_after() {
    assert_caught(Fault::IgnoreConditionAfter);
}

#[test]
fn the_model_catches_an_ignored_direction() {
    assert_caught(Fault::IgnoreDescending);
}

#[test]
fn the_model_catches_an_ignored_until() {
    assert_caught(Fault::IgnoreUntil);
}

#[test]
fn the_model_catches_reencoded_payloads() {
    assert_caught(Fault::ReencodePayloads);
}

#[test]
fn the_model_catches_events_lost_on_reopen() {
    assert_caught(Fault::LoseNewestOnReopen);
}

#[test]
#[should_panic(expected = "expected ConditionFailed")]
fn the_suite_catches_ignored_conditions() {
    opossum_testkit::block_on(checks::condition_without_after_fails_on_any_match(
        Faulty::new(Fault::IgnoreConditions),
    ));
}

#[test]
#[should_panic(expected = "nothing exists after the head")]
fn the_suite_catches_an_ignored_condition_after() {
    opossum_testkit::block_on(checks::condition_on_all_after_head_passes(Faulty::new(
        Fault::IgnoreConditionAfter,
    )));
}

#[test]
#[should_panic(expected = "all events, newest first")]
fn the_suite_catches_an_ignored_direction() {
    opossum_testkit::block_on(checks::read_descending_returns_newest_first(Faulty::new(
        Fault::IgnoreDescending,
    )));
}

#[test]
#[should_panic(expected = "until bounds the read")]
fn the_suite_catches_an_ignored_until() {
    opossum_testkit::block_on(checks::read_until_includes_the_position(Faulty::new(
        Fault::IgnoreUntil,
    )));
}

/// The streaming read runs over the store's `read`, so it inherits the store's bug.
#[test]
#[should_panic(expected = "must return what read returns")]
fn the_suite_catches_a_streaming_read_that_differs_from_read() {
    opossum_testkit::block_on(checks::read_stream_returns_what_read_returns(
        StreamIgnoresUntil(InMemoryEventStore::new()),
    ));
}

#[test]
#[should_panic(expected = "payload must be stored verbatim")]
fn the_suite_catches_reencoded_payloads() {
    opossum_testkit::block_on(checks::payloads_round_trip_byte_for_byte(Faulty::new(
        Fault::ReencodePayloads,
    )));
}

/// On a single-threaded runtime the racy store's check and write are always interleaved with
/// the other writers', so the duplicate counter values are certain, not a matter of timing.
#[test]
#[should_panic(expected = "counter values in position order")]
fn the_suite_catches_a_non_atomic_condition_check() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(checks::concurrent_conditional_appends_are_gap_free(
        Faulty::new(Fault::RacyConditions),
    ));
}

/// A store whose own streaming read ignores `until` (its `read` is right).
struct StreamIgnoresUntil(InMemoryEventStore);

#[async_trait]
impl EventStore for StreamIgnoresUntil {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.0.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        self.0.read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.0.read_last(query).await
    }

    fn read_stream(&self, query: &Query, mut options: ReadOptions) -> EventStream<'_> {
        options.until = None;
        self.0.read_stream(query, options)
    }
}
