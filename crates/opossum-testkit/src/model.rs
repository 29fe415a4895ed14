//! Model-based comparison: random operation sequences must give identical results on a store
//! under test and on a reference store.
//!
//! [`operations`] generates sequences of appends (1 to 4 events from a small pool of types and
//! look-alike tags, with or without a condition), reads with random options (`after`, `until`,
//! limit, direction), `read_last`s and reopens. [`check_sequence`] applies each operation to both stores through [`BlockingStore`]
//! and fails the case on the first difference: appends must give the same position or the same
//! error, reads the same [`EventRecord`]s. Positions in conditions and reads are drawn relative
//! to the current head ([`AfterSpec`], [`UntilSpec`]), so they land before, at and beyond it.
//!
//! In a test file, put the body below in a `proptest! { #[test] fn …(ops in operations(1..40)) }`
//! with `#![proptest_config(config(48))]`; driven by hand it reads:
//!
//! ```
//! use opossum_core::InMemoryEventStore;
//! use opossum_testkit::model::{check_sequence, config, operations};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::new(config(8));
//! let result = runner.run(&operations(1..30), |ops| {
//!     let mut reference = InMemoryEventStore::new();
//!     let mut subject = InMemoryEventStore::new(); // the store under test
//!     check_sequence(&ops, &mut reference, &mut subject)
//! });
//! assert!(result.is_ok(), "{result:?}");
//! ```

use opossum_core::{
    AppendCondition, Direction, Error, InMemoryEventStore, Metadata, NewEvent, Payload, Position,
    Query, QueryItem, ReadOptions, SequencedEvent, Timestamp,
};
use proptest::collection::{SizeRange, vec};
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::test_runner::TestCaseError;

use crate::fixtures::{EventRecord, records, tag};

/// A store driven synchronously by the model harness.
///
/// Errors are `opossum_core` errors; a back end with its own error type maps it (typically
/// unwrapping its "core error" variant and boxing anything else into [`Error::Storage`]).
pub trait BlockingStore {
    /// As [`opossum_core::EventStore::append`].
    ///
    /// # Errors
    /// As [`opossum_core::EventStore::append`].
    fn append_blocking(
        &mut self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error>;

    /// As [`opossum_core::EventStore::read`].
    ///
    /// # Errors
    /// As [`opossum_core::EventStore::read`].
    fn read_blocking(
        &mut self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error>;

    /// As [`opossum_core::EventStore::read_last`].
    ///
    /// # Errors
    /// As [`opossum_core::EventStore::read_last`].
    fn read_last_blocking(&mut self, query: &Query) -> Result<Option<SequencedEvent>, Error>;

    /// Closes the store and opens it again from its storage. A store without storage does
    /// nothing, which is the default.
    ///
    /// # Errors
    /// When closing or opening fails.
    fn reopen(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl BlockingStore for InMemoryEventStore {
    fn append_blocking(
        &mut self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        InMemoryEventStore::append_blocking(self, events, condition)
    }

    fn read_blocking(
        &mut self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        InMemoryEventStore::read_blocking(self, query, options)
    }

    fn read_last_blocking(&mut self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        InMemoryEventStore::read_last_blocking(self, query)
    }
}

/// A position chosen relative to the store's head when the operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterSpec {
    /// No position: from the start (reads) or "anywhere" (conditions).
    Start,
    /// The head plus this offset (negative: before the head; positive: beyond it). A result
    /// below 1 means [`AfterSpec::Start`], which is what "after position 0" would mean.
    FromHead(i64),
}

impl AfterSpec {
    /// The position this spec names when the store's head is `head`.
    #[must_use]
    pub fn resolve(self, head: Option<Position>) -> Option<Position> {
        match self {
            AfterSpec::Start => None,
            AfterSpec::FromHead(offset) => {
                let head = head.map_or(0, Position::get);
                let target = head.saturating_add_signed(offset);
                Position::new(target).ok()
            }
        }
    }
}

/// A read's upper bound (`until`), chosen relative to the store's head when the operation
/// runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UntilSpec {
    /// No bound: up to the head.
    Unbounded,
    /// The head plus this offset (negative: before the head; positive: beyond it). A result
    /// below 1 means position 1, the lowest bound there is.
    FromHead(i64),
}

impl UntilSpec {
    /// The bound this spec names when the store's head is `head`.
    #[must_use]
    pub fn resolve(self, head: Option<Position>) -> Option<Position> {
        match self {
            UntilSpec::Unbounded => None,
            UntilSpec::FromHead(offset) => {
                let head = head.map_or(0, Position::get);
                let target = head.saturating_add_signed(offset).max(1);
                Position::new(target).ok()
            }
        }
    }
}

/// An append condition whose `after` is resolved when the operation runs.
#[derive(Clone, Debug)]
pub struct ConditionSpec {
    /// Events that must not exist after `after`.
    pub query: Query,
    /// Where "after" is.
    pub after: AfterSpec,
}

/// Read options whose `after` and `until` are resolved when the operation runs.
#[derive(Clone, Copy, Debug)]
pub struct ReadSpec {
    /// Where reading starts.
    pub after: AfterSpec,
    /// Where reading ends.
    pub until: UntilSpec,
    /// At most this many events.
    pub limit: Option<usize>,
    /// The order.
    pub direction: Direction,
}

impl ReadSpec {
    /// The read options this spec names when the store's head is `head`.
    #[must_use]
    pub fn resolve(self, head: Option<Position>) -> ReadOptions {
        ReadOptions {
            after: self.after.resolve(head),
            until: self.until.resolve(head),
            limit: self.limit,
            direction: self.direction,
        }
    }
}

/// One step of a generated sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// Append these events, with an optional condition.
    Append {
        /// The events, 1 to 4.
        events: Vec<NewEvent>,
        /// The condition, if any.
        condition: Option<ConditionSpec>,
    },
    /// Read with a query and options.
    Read {
        /// What to read.
        query: Query,
        /// How to read.
        options: ReadSpec,
    },
    /// `read_last` of a query.
    ReadLast {
        /// What to look for.
        query: Query,
    },
    /// Close and reopen the store ([`BlockingStore::reopen`]).
    Reopen,
}

/// The event types the generator draws from.
pub const TYPES: &[&str] = &["A", "B", "C"];

/// The tags the generator draws from, including look-alikes that a store must keep apart.
pub const TAGS: &[(&str, &str)] = &[
    ("k", "1"),
    ("k", "2"),
    ("j", "1"),
    ("K", "1"),
    ("a_b", "c"),
    ("a", "b_c"),
    ("p", "x/y"),
];

/// Valid JSON that a store re-encoding payloads would change: spacing, key order, escapes,
/// number spellings.
const UNUSUAL_PAYLOADS: &[&str] = &[
    r#"{"a" : 1 , "b" : [ 1 , 2 ] }"#,
    r#"{"b":1,"a":2}"#,
    r#"{"e":"\u00e9\/"}"#,
    "1E2",
    "-0.0",
    "[ ]",
];

/// A payload: a number, a string with awkward characters, a small array, or an unusual
/// spelling from [`UNUSUAL_PAYLOADS`].
fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        any::<i64>().prop_map(|n| format!(r#"{{"n":{n}}}"#)),
        "[a-zA-Z0-9 /\\\\:.\"äß🦫]{0,12}".prop_map(|s| {
            let text = serde_json::to_string(&s).expect("a string encodes");
            format!(r#"{{"s":{text}}}"#)
        }),
        vec(any::<u8>(), 0..4).prop_map(|v| format!("{v:?}").replace(' ', "")),
        proptest::sample::select(UNUSUAL_PAYLOADS).prop_map(str::to_owned),
    ]
    .prop_map(|text| Payload::from_json(&text).expect("generated payloads are JSON"))
}

/// Metadata with a nanosecond timestamp and optional ids.
fn metadata() -> impl Strategy<Value = Metadata> {
    let id = || proptest::option::of("[a-z0-9-]{1,8}");
    (0i64..4_000_000_000, 0i32..1_000_000_000, id(), id()).prop_map(
        |(second, nanosecond, correlation, user)| Metadata {
            correlation_id: correlation,
            user_id: user,
            ..Metadata::at(Timestamp::new(second, nanosecond).expect("timestamp in range"))
        },
    )
}

/// One event of a [`TYPES`] type with up to three [`TAGS`].
pub fn event() -> impl Strategy<Value = NewEvent> {
    (
        proptest::sample::select(TYPES),
        subsequence(TAGS, 0..=3),
        payload(),
        metadata(),
    )
        .prop_map(|(event_type, tags, payload, metadata)| {
            let builder = NewEvent::builder(event_type, payload)
                .tags(tags.iter().map(|(k, v)| tag(k, v)))
                .metadata(metadata);
            builder.build().expect("generated events are valid")
        })
}

/// A query: usually one or two items of up to two types and two tags, sometimes
/// [`Query::all`].
pub fn query() -> impl Strategy<Value = Query> {
    let item = (subsequence(TYPES, 0..=2), subsequence(TAGS, 0..=2)).prop_map(|(types, tags)| {
        let with_types = QueryItem::of_types(types).expect("generated types are valid");
        tags.iter()
            .fold(with_types, |i, (k, v)| i.with_tag(tag(k, v)))
    });
    prop_oneof![
        1 => Just(Query::all()),
        5 => vec(item, 1..=2).prop_map(|items| Query::from_items(items).expect("non-empty")),
    ]
}

/// A position around the head: from 4 before it to 2 beyond it, or none.
pub fn after() -> impl Strategy<Value = AfterSpec> {
    prop_oneof![
        1 => Just(AfterSpec::Start),
        3 => (-4i64..=2).prop_map(AfterSpec::FromHead),
    ]
}

/// An upper bound around the head: from 4 before it to 2 beyond it, or none.
pub fn until() -> impl Strategy<Value = UntilSpec> {
    prop_oneof![
        2 => Just(UntilSpec::Unbounded),
        2 => (-4i64..=2).prop_map(UntilSpec::FromHead),
    ]
}

/// Read options: any `after`, any `until` (also below `after`), an optional limit from 0 to 5,
/// either direction.
pub fn read_spec() -> impl Strategy<Value = ReadSpec> {
    (
        after(),
        until(),
        proptest::option::of(0usize..=5),
        prop_oneof![Just(Direction::Ascending), Just(Direction::Descending)],
    )
        .prop_map(|(after, until, limit, direction)| ReadSpec {
            after,
            until,
            limit,
            direction,
        })
}

/// One operation: mostly appends (60 % of them conditional), then reads, `read_last`s and an
/// occasional reopen.
pub fn op() -> impl Strategy<Value = Op> {
    let condition = (query(), after()).prop_map(|(query, after)| ConditionSpec { query, after });
    let append = (
        vec(event(), 1..=4),
        proptest::option::weighted(0.6, condition),
    )
        .prop_map(|(events, condition)| Op::Append { events, condition });
    let read = (query(), read_spec()).prop_map(|(query, options)| Op::Read { query, options });
    let read_last = query().prop_map(|query| Op::ReadLast { query });
    prop_oneof![
        6 => append,
        3 => read,
        2 => read_last,
        1 => Just(Op::Reopen),
    ]
}

/// A sequence of operations whose length is in `len`.
pub fn operations(len: impl Into<SizeRange>) -> impl Strategy<Value = Vec<Op>> {
    vec(op(), len)
}

/// A proptest configuration running `default_cases` cases, or the number in the
/// `PROPTEST_CASES` environment variable when it is set.
#[must_use]
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// How a call ended, in a form two stores' results can be compared in: the value, or the
/// error's debug text (which names the variant and its fields).
type Outcome<T> = Result<T, String>;

fn outcome<T, U>(result: Result<T, Error>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    result.map(f).map_err(|e| format!("{e:?}"))
}

/// The position of the reference store's newest event.
fn head<R: BlockingStore + ?Sized>(reference: &mut R) -> Result<Option<Position>, TestCaseError> {
    let last = reference
        .read_last_blocking(&Query::all())
        .map_err(|e| TestCaseError::fail(format!("the reference store failed: {e:?}")))?;
    Ok(last.map(|e| e.position))
}

/// Applies `op` to both stores and fails when their results differ.
///
/// Relative positions are resolved against the reference's head, which equals the subject's
/// as long as every earlier operation agreed.
///
/// # Errors
/// A failed [`TestCaseError`] describing the difference.
pub fn apply_op<R, S>(op: &Op, reference: &mut R, subject: &mut S) -> Result<(), TestCaseError>
where
    R: BlockingStore + ?Sized,
    S: BlockingStore + ?Sized,
{
    let head = head(reference)?;
    match op {
        Op::Append { events, condition } => {
            let condition = condition
                .as_ref()
                .map(|c| AppendCondition::new(c.query.clone()).after(c.after.resolve(head)));
            let want = outcome(
                reference.append_blocking(events.clone(), condition.clone()),
                Position::get,
            );
            let got = outcome(
                subject.append_blocking(events.clone(), condition),
                Position::get,
            );
            prop_assert_eq!(got, want, "append (head {:?})", head);
        }
        Op::Read { query, options } => {
            let options = options.resolve(head);
            let want = outcome(reference.read_blocking(query, options), |e| records(&e));
            let got = outcome(subject.read_blocking(query, options), |e| records(&e));
            prop_assert_eq!(got, want, "read {:?} (head {:?})", options, head);
        }
        Op::ReadLast { query } => {
            let record = |e: Option<SequencedEvent>| e.as_ref().map(EventRecord::of);
            let want = outcome(reference.read_last_blocking(query), record);
            let got = outcome(subject.read_last_blocking(query), record);
            prop_assert_eq!(got, want, "read_last");
        }
        Op::Reopen => {
            reopen(reference, "reference")?;
            reopen(subject, "subject")?;
        }
    }
    Ok(())
}

fn reopen<S: BlockingStore + ?Sized>(store: &mut S, which: &str) -> Result<(), TestCaseError> {
    store
        .reopen()
        .map_err(|e| TestCaseError::fail(format!("reopening the {which} store failed: {e:?}")))
}

/// Fails unless both stores hold the same events, read forwards and backwards, and agree on the
/// newest one.
///
/// # Errors
/// A failed [`TestCaseError`] describing the difference.
pub fn compare_contents<R, S>(reference: &mut R, subject: &mut S) -> Result<(), TestCaseError>
where
    R: BlockingStore + ?Sized,
    S: BlockingStore + ?Sized,
{
    let all = Query::all();
    for options in [ReadOptions::new(), ReadOptions::new().descending()] {
        let want = outcome(reference.read_blocking(&all, options), |e| records(&e));
        let got = outcome(subject.read_blocking(&all, options), |e| records(&e));
        prop_assert_eq!(got, want, "whole store, {:?}", options.direction);
    }
    let record = |e: Option<SequencedEvent>| e.as_ref().map(EventRecord::of);
    let want = outcome(reference.read_last_blocking(&all), record);
    let got = outcome(subject.read_last_blocking(&all), record);
    prop_assert_eq!(got, want, "newest event");
    Ok(())
}

/// Applies every operation of `ops` to both stores, failing at the first difference (the
/// message names the step), then compares the whole contents, reopens both stores and compares
/// again.
///
/// # Errors
/// A failed [`TestCaseError`] describing the first difference.
pub fn check_sequence<R, S>(
    ops: &[Op],
    reference: &mut R,
    subject: &mut S,
) -> Result<(), TestCaseError>
where
    R: BlockingStore + ?Sized,
    S: BlockingStore + ?Sized,
{
    for (step, op) in ops.iter().enumerate() {
        apply_op(op, reference, subject).map_err(|e| at_step(e, &format!("step {step}")))?;
    }
    compare_contents(reference, subject).map_err(|e| at_step(e, "after the last step"))?;
    reopen(reference, "reference")?;
    reopen(subject, "subject")?;
    compare_contents(reference, subject).map_err(|e| at_step(e, "after a final reopen"))
}

/// Prefixes a failure's message with where it happened.
fn at_step(error: TestCaseError, step: &str) -> TestCaseError {
    match error {
        TestCaseError::Fail(reason) => TestCaseError::fail(format!("{step}: {}", reason.message())),
        other => other,
    }
}
