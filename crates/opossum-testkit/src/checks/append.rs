//! Appends: positions, batches, atomicity and input errors.

use opossum_core::{AppendCondition, Error, EventStore, NewEvent, Query, ReadOptions};

use crate::fixtures::{EventRecord, event, numbered, positions, records, types_query};

/// `append` returns the position of the last event it wrote, counting on from earlier appends.
pub async fn append_returns_the_last_position<S: EventStore>(store: S) {
    let first = store
        .append(vec![event("A", &[])], None)
        .await
        .expect("append");
    assert_eq!(
        first.get(),
        1,
        "the first event of a store is at position 1"
    );

    let batch = vec![event("A", &[]), event("B", &[]), event("C", &[])];
    let last = store.append(batch, None).await.expect("append");
    assert_eq!(
        last.get(),
        4,
        "a batch of 3 after 1 event ends at position 4"
    );

    let last = store
        .append(vec![event("B", &[]), event("C", &[])], None)
        .await
        .expect("append");
    assert_eq!(last.get(), 6);
}

/// Positions run 1..=N without gaps across appends of different sizes, each event at the
/// position its order of appending gives it.
pub async fn positions_are_contiguous_across_appends<S: EventStore>(store: S) {
    let mut appended: Vec<NewEvent> = Vec::new();
    let mut n = 0;
    for (batch_no, size) in [1, 3, 2, 5, 1, 4].into_iter().enumerate() {
        let batch_tag = batch_no.to_string();
        let batch: Vec<NewEvent> = (0..size)
            .map(|_| {
                n += 1;
                numbered("Counted", &[("batch", &batch_tag)], n)
            })
            .collect();
        let last = store.append(batch.clone(), None).await.expect("append");
        appended.extend(batch);
        assert_eq!(last.get(), n, "batch {batch_no} must end at position {n}");
    }

    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let expected: Vec<EventRecord> = (1..)
        .zip(&appended)
        .map(|(p, e)| EventRecord::expected(p, e))
        .collect();
    assert_eq!(records(&all), expected);
}

/// A batch whose condition fails writes none of its events and uses up no positions.
pub async fn failed_condition_appends_none_of_a_batch<S: EventStore>(store: S) {
    store
        .append(vec![event("Seen", &[("k", "1")])], None)
        .await
        .expect("append");

    let batch = (1..=3).map(|n| numbered("Blocked", &[], n)).collect();
    let condition = AppendCondition::new(types_query(&["Seen"]));
    let err = store
        .append(batch, Some(condition))
        .await
        .expect_err("an event of type Seen exists, so the condition must fail");
    assert!(err.is_condition_failed(), "unexpected error: {err:?}");

    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(
        positions(&all),
        [1],
        "no event of the failed batch may be stored"
    );
    let blocked = store
        .read(&types_query(&["Blocked"]), ReadOptions::new())
        .await
        .expect("read");
    assert!(blocked.is_empty());

    let next = store
        .append(vec![event("Next", &[])], None)
        .await
        .expect("append");
    assert_eq!(next.get(), 2, "a failed append must not consume positions");
}

/// A condition is checked against the events already stored, never against the batch being
/// appended: a batch may contain events its own condition would match.
pub async fn a_batch_is_not_checked_against_itself<S: EventStore>(store: S) {
    let condition = AppendCondition::new(types_query(&["Claimed"]));
    let batch = vec![numbered("Claimed", &[], 1), numbered("Claimed", &[], 2)];
    let last = store
        .append(batch, Some(condition.clone()))
        .await
        .expect("nothing matching is stored yet, so the condition passes");
    assert_eq!(last.get(), 2);

    let err = store
        .append(vec![numbered("Claimed", &[], 3)], Some(condition))
        .await
        .expect_err("now matching events are stored");
    assert!(err.is_condition_failed(), "unexpected error: {err:?}");
}

/// Appending no events is [`Error::EmptyAppend`], with or without a condition, and changes
/// nothing.
pub async fn empty_append_is_rejected<S: EventStore>(store: S) {
    let err = store
        .append(Vec::new(), None)
        .await
        .expect_err("empty append");
    assert!(
        matches!(err, Error::EmptyAppend),
        "unexpected error: {err:?}"
    );
    assert!(!err.is_condition_failed());

    let guarded = Some(AppendCondition::new(Query::all()));
    let err = store
        .append(Vec::new(), guarded)
        .await
        .expect_err("empty append");
    assert!(
        matches!(err, Error::EmptyAppend),
        "unexpected error: {err:?}"
    );

    let last = store.read_last(&Query::all()).await.expect("read_last");
    assert!(last.is_none(), "a rejected append must store nothing");
    let first = store
        .append(vec![event("A", &[])], None)
        .await
        .expect("append");
    assert_eq!(
        first.get(),
        1,
        "a rejected append must not consume positions"
    );
}
