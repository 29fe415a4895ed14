//! `execute_decision`: which errors are retried, how many attempts, how long between them, and
//! what cancellation leaves behind. Backoffs run on Tokio's paused clock, so the waits are
//! exact and cost no real time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use opossum_core::{EventStore, InMemoryEventStore, Query, ReadOptions};
use opossum_decision::{
    ConditionFailure, DecisionProjection, Error, Jitter, RetryPolicy, build_decision_model,
    execute_decision, execute_decision_with,
};
use opossum_testkit::{event, types_query};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// One decision: count the "Tick" events, then append the next one under the model's
/// condition. Before appending, a concurrent writer slips in a "Tick" on each of the first
/// `conflicts` attempts, so those appends fail their condition.
async fn tick(store: &InMemoryEventStore, calls: &AtomicU32, conflicts: u32) -> Result<u32, Error> {
    let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
    let ticks = DecisionProjection::new(0_u32, types_query(&["Tick"]), |n, _| n + 1);
    let model = build_decision_model(store, ticks).await?;
    if call <= conflicts {
        store
            .append(vec![event("Tick", &[("by", "other")])], None)
            .await?;
    }
    store
        .append(
            vec![event("Tick", &[("by", "decision")])],
            Some(model.condition().clone()),
        )
        .await?;
    Ok(model.state + 1)
}

async fn ticks_by_the_decision(store: &InMemoryEventStore) -> usize {
    let query = Query::from_tags([opossum_testkit::tag("by", "decision")]).unwrap();
    store.read(&query, ReadOptions::new()).await.unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn a_failed_condition_is_retried_until_the_decision_succeeds() {
    let store = InMemoryEventStore::new();
    let calls = AtomicU32::new(0);
    let n = execute_decision(&store, |s| tick(s, &calls, 2))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "default policy: 3 attempts"
    );
    // The successful attempt read both concurrent ticks and decided on them.
    assert_eq!(n, 3);
    assert_eq!(store.len(), 3);
    assert_eq!(ticks_by_the_decision(&store).await, 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_stop_at_the_configured_limit_with_the_condition_failure() {
    for (policy, expected) in [
        (RetryPolicy::default(), 3),
        (RetryPolicy::default().max_attempts(5), 5),
        (RetryPolicy::no_retry(), 1),
    ] {
        let store = InMemoryEventStore::new();
        let calls = AtomicU32::new(0);
        let err = execute_decision_with(&store, policy, |s| tick(s, &calls, u32::MAX))
            .await
            .unwrap_err();
        assert!(err.is_condition_failed(), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), expected);
        assert_eq!(ticks_by_the_decision(&store).await, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn other_errors_are_returned_at_once() {
    let store = InMemoryEventStore::new();
    store.append(vec![event("Tick", &[])], None).await.unwrap();

    // A store error that is not a condition failure.
    let calls = AtomicU32::new(0);
    let err = execute_decision(&store, |s| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { s.append(Vec::new(), None).await.map_err(Error::from) }
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Store(opossum_core::Error::EmptyAppend)),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A fold that rejects an event.
    let calls = AtomicU32::new(0);
    let err = execute_decision(&store, |s| {
        calls.fetch_add(1, Ordering::SeqCst);
        let strict = DecisionProjection::try_new((), Query::all(), |(), _| {
            Err(opossum_core::Error::EmptyQuery)
        });
        async move { build_decision_model(s, strict).await.map(|m| m.state) }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Fold { .. }), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A domain error type of the kind applications write.
#[derive(Debug)]
enum TickError {
    TooMany,
    Store(opossum_core::Error),
}

impl From<opossum_core::Error> for TickError {
    fn from(e: opossum_core::Error) -> Self {
        TickError::Store(e)
    }
}

impl ConditionFailure for TickError {
    fn is_condition_failure(&self) -> bool {
        matches!(self, TickError::Store(e) if e.is_condition_failed())
    }
}

#[tokio::test(start_paused = true)]
async fn a_domain_error_type_decides_what_is_retried() {
    let store = InMemoryEventStore::new();

    let calls = AtomicU32::new(0);
    let err = execute_decision(&store, |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(TickError::TooMany) }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, TickError::TooMany));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a domain rejection is final"
    );

    let calls = AtomicU32::new(0);
    let err = execute_decision(&store, |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<(), _>(TickError::from(opossum_core::Error::ConditionFailed {
                after: None,
            }))
        }
    })
    .await
    .unwrap_err();
    assert!(err.is_condition_failure());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a wrapped condition failure is retried"
    );
}

/// Runs a decision whose every attempt fails its condition, and returns the paused-clock
/// instants at which the attempts started, relative to the first.
async fn attempt_times(policy: RetryPolicy) -> Vec<Duration> {
    let store = InMemoryEventStore::new();
    let start = Instant::now();
    let mut times = Vec::new();
    let result = execute_decision_with(&store, policy, |_| {
        times.push(start.elapsed());
        async { Err::<(), _>(opossum_core::Error::ConditionFailed { after: None }) }
    })
    .await;
    assert!(result.is_err());
    times
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_from_the_initial_delay_up_to_the_cap() {
    let exact = RetryPolicy::default().max_attempts(5).jitter(Jitter::None);
    assert_eq!(
        attempt_times(exact.clone()).await,
        [Duration::ZERO, 50 * MS, 150 * MS, 350 * MS, 750 * MS],
        "default initial backoff 50 ms, doubling"
    );
    let capped = exact.initial_backoff(10 * MS).max_backoff(30 * MS);
    assert_eq!(
        attempt_times(capped).await,
        [Duration::ZERO, 10 * MS, 30 * MS, 60 * MS, 90 * MS]
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_backoff_is_jittered_within_its_bounds() {
    let mut first_waits = Vec::new();
    for _ in 0..20 {
        let times = attempt_times(RetryPolicy::default()).await;
        assert_eq!(times.len(), 3);
        let (first, second) = (times[1] - times[0], times[2] - times[1]);
        assert!((25 * MS..=50 * MS).contains(&first), "{first:?}");
        assert!((50 * MS..=100 * MS).contains(&second), "{second:?}");
        first_waits.push(first);
    }
    first_waits.sort();
    first_waits.dedup();
    assert!(
        first_waits.len() > 1,
        "twenty decisions all waited {first_waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_decision_during_backoff_leaves_nothing_half_done() {
    let store = InMemoryEventStore::new();
    let calls = AtomicU32::new(0);
    let policy = RetryPolicy::default()
        .initial_backoff(Duration::from_secs(10))
        .max_backoff(Duration::from_secs(10))
        .jitter(Jitter::None);

    // The first attempt fails its condition; the decision then backs off for 10 s, and is
    // dropped by the timeout 1 s into that wait.
    let outcome = tokio::time::timeout(
        Duration::from_secs(1),
        execute_decision_with(&store, policy, |s| tick(s, &calls, u32::MAX)),
    )
    .await;
    assert!(
        outcome.is_err(),
        "the timeout must have cancelled the decision"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Long after the backoff would have ended, nothing else ran and nothing was appended: the
    // only event is the concurrent writer's.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.len(), 1);
    assert_eq!(ticks_by_the_decision(&store).await, 0);

    // The store is fully usable: a fresh decision succeeds on what is there.
    let calls = AtomicU32::new(0);
    let n = execute_decision(&store, |s| tick(s, &calls, 0))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(ticks_by_the_decision(&store).await, 1);
}
