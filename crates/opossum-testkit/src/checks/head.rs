//! `head` and `wait_for_append`: what a subscription relies on.

use std::sync::Arc;

use opossum_core::{AppendCondition, EventStore, Query};

use super::seed_course_history;
use crate::fixtures::{event, pos, tags_query};
use crate::streams::guarded;

/// `head` is `None` for an empty store and the position of the last event after appends; a
/// failed conditional append leaves it where it was.
pub async fn head_is_the_position_of_the_last_event<S: EventStore>(store: S) {
    assert_eq!(store.head().await.expect("head"), None, "an empty store");
    seed_course_history(&store).await;
    assert_eq!(store.head().await.expect("head"), Some(pos(10)));
    let three = vec![event("A", &[]), event("B", &[]), event("C", &[])];
    let last = store.append(three, None).await.expect("append");
    assert_eq!(last, pos(13));
    assert_eq!(
        store.head().await.expect("head"),
        Some(pos(13)),
        "head = the last position of the last append"
    );
    let refused = AppendCondition::new(tags_query(&[("course", "c1")])).after(Some(pos(3)));
    let failed = store.append(vec![event("D", &[])], Some(refused)).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(opossum_core::Error::is_condition_failed),
        "expected ConditionFailed, got {failed:?}"
    );
    assert_eq!(
        store.head().await.expect("head"),
        Some(pos(13)),
        "a failed append does not move the head"
    );
    let last = store
        .read_last(&Query::all())
        .await
        .expect("read_last")
        .map(|e| e.position);
    assert_eq!(
        store.head().await.expect("head"),
        last,
        "head = read_last(all)"
    );
}

/// `wait_for_append(beyond)` returns at once when the head is already past `beyond`, and
/// otherwise once an append moves it past (it may return earlier; it never misses one).
pub async fn wait_for_append_returns_once_the_head_passes<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);

    // An empty store: a waiter for any event is released by the first append.
    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            loop {
                store.wait_for_append(None).await.expect("wait_for_append");
                if store.head().await.expect("head").is_some() {
                    return;
                }
            }
        })
    };
    store
        .append(vec![event("A", &[])], None)
        .await
        .expect("append");
    guarded("a wait for the first event", waiter)
        .await
        .expect("the waiting task panicked");

    let nine = (0..9).map(|_| event("A", &[])).collect();
    assert_eq!(store.append(nine, None).await.expect("append"), pos(10));
    guarded(
        "wait_for_append(None) with events stored",
        store.wait_for_append(None),
    )
    .await
    .expect("wait_for_append");
    guarded(
        "wait_for_append below the head",
        store.wait_for_append(Some(pos(9))),
    )
    .await
    .expect("wait_for_append");

    // At the head: released by the next append, which may come from another task.
    let beyond = store.head().await.expect("head");
    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            loop {
                store
                    .wait_for_append(beyond)
                    .await
                    .expect("wait_for_append");
                let head = store.head().await.expect("head");
                if head > beyond {
                    return head;
                }
            }
        })
    };
    let appender = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.append(vec![event("B", &[])], None).await })
    };
    let appended = appender
        .await
        .expect("the appending task panicked")
        .expect("append");
    let seen = guarded("a wait at the head", waiter)
        .await
        .expect("the waiting task panicked");
    assert_eq!(seen, Some(appended), "the waiter sees the new head");
}
