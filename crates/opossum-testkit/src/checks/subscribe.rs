//! Subscriptions: catch-up, then every new event, in order, once, until dropped.

use std::sync::Arc;

use futures_util::StreamExt;
use opossum_core::stream::{self, STREAM_BATCH};
use opossum_core::{EventStore, EventStream, Query, ReadOptions, SequencedEvent};

use super::seed_course_history;
use crate::fixtures::{
    event, event_with_payload, pos, positions, records, tags_query, types_query,
};
use crate::probe::Probe;
use crate::streams::{guarded, next_event, take_events, until_true};

/// Takes `n` events from `stream` on a task of its own, so that it waits while others append.
fn consume(
    mut stream: EventStream<'static>,
    n: usize,
    what: &'static str,
) -> tokio::task::JoinHandle<Vec<SequencedEvent>> {
    tokio::spawn(async move { take_events(&mut stream, n, what).await })
}

/// A subscription from the start returns every stored event (as `read` returns them), then
/// each event appended later, whether appended while it is not being polled or while it waits.
pub async fn subscription_catches_up_then_follows_appends<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let stored = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let mut live = store.subscribe_all(None);
    let caught_up = take_events(&mut live, 10, "the stored events").await;
    assert_eq!(records(&caught_up), records(&stored), "catch-up = read");

    // Appended between two polls.
    let two = vec![event("Later", &[]), event("Later", &[])];
    store.append(two, None).await.expect("append");
    store
        .append(vec![event("Later", &[])], None)
        .await
        .expect("append");
    let later = take_events(&mut live, 3, "events appended after the catch-up").await;
    assert_eq!(positions(&later), [11, 12, 13]);

    // Appended while the subscription waits for them.
    let (waited, ()) = tokio::join!(
        take_events(&mut live, 2, "events appended while waiting"),
        async {
            for _ in 0..2 {
                tokio::task::yield_now().await;
                store
                    .append(vec![event("Live", &[])], None)
                    .await
                    .expect("append");
            }
        }
    );
    assert_eq!(positions(&waited), [14, 15]);
    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let mut seen = caught_up;
    seen.extend(later);
    seen.extend(waited);
    assert_eq!(
        records(&seen),
        records(&all),
        "what the subscription returned"
    );
}

/// Four tasks append batches of 1 to 3 events concurrently while two subscriptions follow
/// the store — one to everything, one to a single writer's tag. Each returns exactly the events
/// `read` returns afterwards, in position order, with no gap and no duplicate; an event
/// appended after all the others comes next, proving nothing was left over.
pub async fn subscription_sees_concurrent_appends_once_each_in_order<S: EventStore + 'static>(
    store: S,
) {
    const WRITERS: u64 = 4;
    const APPENDS_PER_WRITER: u64 = 25;
    let size = |writer: u64, i: u64| 1 + (writer + i) % 3;
    let store = Arc::new(store);
    let before = (0..5).map(|_| event("Before", &[])).collect();
    store.append(before, None).await.expect("append");

    let mine = tags_query(&[("writer", "2")]);
    let mut all_events = stream::subscribe(Arc::clone(&store), Query::all(), None);
    let writer_two = stream::subscribe(Arc::clone(&store), mine.clone(), None);
    let caught_up = take_events(&mut all_events, 5, "the stored events").await;
    assert_eq!(positions(&caught_up), [1, 2, 3, 4, 5]);

    let appended: u64 = (0..WRITERS)
        .flat_map(|w| (0..APPENDS_PER_WRITER).map(move |i| size(w, i)))
        .sum();
    let appended_by_two: u64 = (0..APPENDS_PER_WRITER).map(|i| size(2, i)).sum();
    let count = |n: u64| usize::try_from(n).expect("small");
    // Both end on the sentinel, which carries writer 2's tag.
    let all_task = consume(all_events, count(appended + 1), "every event");
    let two_task = consume(writer_two, count(appended_by_two + 1), "writer 2's events");

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS_PER_WRITER {
                let events = (0..size(writer, i))
                    .map(|k| {
                        let payload = format!(r#"{{"writer":{writer},"i":{i},"k":{k}}}"#);
                        event_with_payload("Written", &[("writer", &writer.to_string())], &payload)
                    })
                    .collect();
                store.append(events, None).await.expect("append");
                tokio::task::yield_now().await;
            }
        }));
    }
    for writer in writers {
        guarded("a writer", writer)
            .await
            .expect("a writer task panicked");
    }
    let sentinel = event("Sentinel", &[("writer", "2")]);
    let last = store.append(vec![sentinel], None).await.expect("append");
    assert_eq!(last.get(), 5 + appended + 1, "positions are contiguous");

    let got_all = guarded("the subscription to everything", all_task)
        .await
        .expect("the subscriber task panicked");
    let stored = store
        .read(&Query::all(), ReadOptions::new().after(pos(5)))
        .await
        .expect("read");
    assert_eq!(
        positions(&got_all),
        (6..=last.get()).collect::<Vec<_>>(),
        "every position once, in order"
    );
    assert_eq!(records(&got_all), records(&stored), "the events as stored");

    let got_two = guarded("the subscription to writer 2", two_task)
        .await
        .expect("the subscriber task panicked");
    let stored_two = store.read(&mine, ReadOptions::new()).await.expect("read");
    assert_eq!(
        records(&got_two),
        records(&stored_two),
        "writer 2's events, once each, in order, then the sentinel"
    );
}

/// `after = Some(p)` starts after `p`: below the head it catches up from there; at the head it
/// returns the next append first; beyond the head it skips the appends up to `p`.
pub async fn subscription_after_a_position_starts_after_it<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    seed_course_history(&*store).await;

    let mut from_four = store.subscribe_all(Some(pos(4)));
    let tail = take_events(&mut from_four, 6, "events after 4").await;
    assert_eq!(positions(&tail), [5, 6, 7, 8, 9, 10]);
    drop(from_four);

    let at_head = consume(
        stream::subscribe(Arc::clone(&store), Query::all(), Some(pos(10))),
        1,
        "the event after the head",
    );
    let beyond = consume(
        stream::subscribe(Arc::clone(&store), Query::all(), Some(pos(13))),
        1,
        "the first event after 13",
    );
    for _ in 0..4 {
        store
            .append(vec![event("More", &[])], None)
            .await
            .expect("append");
        tokio::task::yield_now().await;
    }
    let next = guarded("the subscription at the head", at_head)
        .await
        .expect("the subscriber task panicked");
    assert_eq!(
        positions(&next),
        [11],
        "after = head: the next append comes first"
    );
    let skipped = guarded("the subscription beyond the head", beyond)
        .await
        .expect("the subscriber task panicked");
    assert_eq!(
        positions(&skipped),
        [14],
        "after beyond the head: nothing up to it"
    );

    let mut with_query = store.subscribe(&types_query(&["StudentEnrolled"]), Some(pos(3)));
    let enrolled = take_events(&mut with_query, 3, "enrolments after 3").await;
    assert_eq!(positions(&enrolled), [5, 7, 9]);
}

/// A consumer that sleeps between events, while a writer appends more than a batch of
/// [`STREAM_BATCH`] events, receives every one of them in order: it reads from the log when it
/// gets to them. No step asks the store for more than a batch.
pub async fn slow_subscriber_misses_nothing<S: EventStore + 'static>(store: S) {
    const EVENTS: u64 = 600;
    const PER_APPEND: u64 = 20;
    let probe = Arc::new(Probe::new(store));
    let mut live = stream::subscribe(Arc::clone(&probe), Query::all(), None);
    let writer = {
        let probe = Arc::clone(&probe);
        tokio::spawn(async move {
            for start in (1..=EVENTS).step_by(usize::try_from(PER_APPEND).expect("small")) {
                let events = (start..start + PER_APPEND)
                    .map(|n| event_with_payload("Tick", &[], &format!(r#"{{"n":{n}}}"#)))
                    .collect();
                probe.append(events, None).await.expect("append");
            }
        })
    };
    let mut got = Vec::new();
    for i in 0..EVENTS {
        got.push(next_event(&mut live, &format!("event {} of a slow consumer", i + 1)).await);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    guarded("the writer", writer)
        .await
        .expect("the writer task panicked");
    let stored = probe
        .inner()
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(positions(&got), (1..=EVENTS).collect::<Vec<_>>());
    assert_eq!(records(&got), records(&stored));
    let limit = probe.largest_read_limit();
    assert!(
        limit.is_some_and(|l| l <= STREAM_BATCH),
        "a subscription asks for at most {STREAM_BATCH} events at a time, one asked for {limit:?}"
    );
}

/// Dropping a subscription stops its work: once dropped — while it waits for an append, and
/// half-way through its catch-up — no call it made to the store is still in flight, and it no
/// longer holds the store.
pub async fn dropping_a_subscription_stops_its_work<S: EventStore + 'static>(store: S) {
    let probe = Arc::new(Probe::new(store));
    seed_course_history(&*probe).await;

    let mut waiting = stream::subscribe(Arc::clone(&probe), Query::all(), None);
    take_events(&mut waiting, 10, "the stored events").await;
    // Drive it into its wait for an append; the wait stays inside the stream.
    tokio::select! {
        item = waiting.next() => panic!("nothing was appended, yet the subscription returned {item:?}"),
        () = until_true("the subscription waits for an append", || probe.waits_in_flight() == 1) => {}
    }
    assert_eq!(
        Arc::strong_count(&probe),
        2,
        "the subscription holds the store"
    );
    drop(waiting);
    assert_eq!(
        probe.calls_in_flight(),
        0,
        "a dropped subscription leaves no wait or read running"
    );
    assert_eq!(
        Arc::strong_count(&probe),
        1,
        "a dropped subscription lets go of the store"
    );

    // A subscription dropped half-way through a catch-up of more than a batch.
    let many = (0..STREAM_BATCH + 10).map(|_| event("Many", &[])).collect();
    probe.append(many, None).await.expect("append");
    let mut catching_up = stream::subscribe(Arc::clone(&probe), Query::all(), None);
    next_event(&mut catching_up, "the first event").await;
    drop(catching_up);
    assert_eq!(probe.calls_in_flight(), 0);
    assert_eq!(Arc::strong_count(&probe), 1);

    // The store serves new subscriptions as before.
    let mut again = stream::subscribe(Arc::clone(&probe), Query::all(), Some(pos(10)));
    let first = next_event(&mut again, "the first event after 10").await;
    assert_eq!(first.position, pos(11));
}

/// A subscription to a query returns only the events it matches — stored, and appended later
/// among events it does not match — and waits through appends that match nothing.
pub async fn subscription_to_a_query_gets_only_matching_events<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let c1 = tags_query(&[("course", "c1")]);
    let mut course = store.subscribe(&c1, None);
    let stored = take_events(&mut course, 4, "course c1's stored events").await;
    assert_eq!(positions(&stored), [1, 3, 7, 8]);

    let mut unknown = store.subscribe(&types_query(&["Unknown"]), None);
    let others = vec![
        event("CourseCreated", &[("course", "c2")]),
        event("StudentRegistered", &[("student", "c1")]),
        event("Unrelated", &[]),
    ];
    store.append(others, None).await.expect("append");
    let renamed = event("CourseRenamed", &[("course", "c1")]);
    let last = store.append(vec![renamed], None).await.expect("append");
    assert_eq!(last, pos(14));
    let next = next_event(&mut course, "the next c1 event").await;
    assert_eq!(
        next.position,
        pos(14),
        "the non-matching 11 to 13 are skipped"
    );
    assert_eq!(next.event.event_type().as_str(), "CourseRenamed");

    let unknown_event = event("Unknown", &[]);
    store
        .append(vec![unknown_event], None)
        .await
        .expect("append");
    let first = next_event(&mut unknown, "the first Unknown event").await;
    assert_eq!(first.position, pos(15), "nothing before matched");
}
