//! Reads: every option, every kind of query, and the empty store.

use opossum_core::{EventStore, Query, ReadOptions};

use super::seed_course_history;
use crate::fixtures::{
    EventRecord, item, items_query, pos, positions, records, tags_query, types_query,
};

/// Reads `query` with `options` and returns the positions, panicking on a store error.
async fn read_positions<S: EventStore>(store: &S, query: &Query, options: ReadOptions) -> Vec<u64> {
    let events = store.read(query, options).await.expect("read");
    positions(&events)
}

/// Reading everything returns every event, oldest first, exactly as appended.
pub async fn read_all_returns_every_event_in_order<S: EventStore>(store: S) {
    let history = seed_course_history(&store).await;
    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let expected: Vec<EventRecord> = (1..)
        .zip(&history)
        .map(|(p, e)| EventRecord::expected(p, e))
        .collect();
    assert_eq!(records(&all), expected);
}

/// `after` returns only positions greater than it; at or beyond the head it returns nothing.
pub async fn read_after_skips_up_to_and_including_the_position<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let after = |p| ReadOptions::new().after(pos(p));
    assert_eq!(
        read_positions(&store, &all, after(1)).await,
        (2..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        read_positions(&store, &all, after(4)).await,
        (5..=10).collect::<Vec<_>>()
    );
    assert_eq!(read_positions(&store, &all, after(9)).await, [10]);
    assert!(
        read_positions(&store, &all, after(10)).await.is_empty(),
        "after = head"
    );
    assert!(
        read_positions(&store, &all, after(11)).await.is_empty(),
        "after > head"
    );
    assert!(
        read_positions(&store, &all, after(1_000_000))
            .await
            .is_empty(),
        "far beyond head"
    );
}

/// `limit` caps the number of events; 0 returns none; a limit above the count returns all.
pub async fn read_limit_caps_the_result<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let limit = |n| ReadOptions::new().limit(n);
    assert_eq!(read_positions(&store, &all, limit(3)).await, [1, 2, 3]);
    assert_eq!(read_positions(&store, &all, limit(1)).await, [1]);
    assert!(
        read_positions(&store, &all, limit(0)).await.is_empty(),
        "limit 0"
    );
    assert_eq!(read_positions(&store, &all, limit(10)).await.len(), 10);
    assert_eq!(
        read_positions(&store, &all, limit(usize::MAX)).await.len(),
        10
    );
    let zero_descending = ReadOptions::new().descending().limit(0);
    assert!(
        read_positions(&store, &all, zero_descending)
            .await
            .is_empty()
    );
}

/// Descending returns newest first; with a limit of N it returns the **newest** N.
pub async fn read_descending_returns_newest_first<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let descending = ReadOptions::new().descending();
    assert_eq!(
        read_positions(&store, &all, descending).await,
        (1..=10).rev().collect::<Vec<_>>(),
        "all events, newest first"
    );
    assert_eq!(
        read_positions(&store, &all, descending.limit(3)).await,
        [10, 9, 8]
    );
    assert_eq!(
        read_positions(&store, &all, descending.limit(1)).await,
        [10]
    );
}

/// `after` means "greater than" in both directions, and combines with `limit`.
pub async fn read_after_combines_with_direction_and_limit<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let after6 = ReadOptions::new().after(pos(6));
    assert_eq!(
        read_positions(&store, &all, after6.descending()).await,
        [10, 9, 8, 7]
    );
    assert_eq!(
        read_positions(&store, &all, after6.descending().limit(2)).await,
        [10, 9]
    );
    assert_eq!(read_positions(&store, &all, after6.limit(2)).await, [7, 8]);
    let beyond = ReadOptions::new().after(pos(10)).descending();
    assert!(read_positions(&store, &all, beyond).await.is_empty());
}

/// A type query returns the events of that type; several types in one item are alternatives.
pub async fn read_by_type<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let no = ReadOptions::new();
    assert_eq!(
        read_positions(&store, &types_query(&["StudentEnrolled"]), no).await,
        [3, 5, 7, 9]
    );
    assert_eq!(
        read_positions(&store, &types_query(&["CourseRenamed"]), no).await,
        [8]
    );
    assert_eq!(
        read_positions(
            &store,
            &types_query(&["CourseCreated", "CourseRenamed"]),
            no
        )
        .await,
        [1, 4, 8, 10],
        "types in one item are OR"
    );
    assert!(
        read_positions(&store, &types_query(&["Unknown"]), no)
            .await
            .is_empty()
    );
    assert!(
        read_positions(&store, &types_query(&["courseCreated"]), no)
            .await
            .is_empty(),
        "type names are case-sensitive"
    );
}

/// A tag query returns the events carrying the tag; several tags in one item must all be
/// present.
pub async fn read_by_tag<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let no = ReadOptions::new();
    assert_eq!(
        read_positions(&store, &tags_query(&[("course", "c1")]), no).await,
        [1, 3, 7, 8]
    );
    assert_eq!(
        read_positions(&store, &tags_query(&[("student", "s1")]), no).await,
        [2, 3, 5]
    );
    assert_eq!(
        read_positions(
            &store,
            &tags_query(&[("course", "c1"), ("student", "s2")]),
            no
        )
        .await,
        [7],
        "tags in one item are AND"
    );
    assert!(
        read_positions(
            &store,
            &tags_query(&[("course", "c3"), ("student", "s1")]),
            no
        )
        .await
        .is_empty()
    );
    assert!(
        read_positions(&store, &tags_query(&[("course", "c9")]), no)
            .await
            .is_empty()
    );
    assert!(
        read_positions(&store, &tags_query(&[("student", "c1")]), no)
            .await
            .is_empty(),
        "a value under another key is another tag"
    );
}

/// An item with types and tags needs one of the types **and** all of the tags.
pub async fn read_by_type_and_tag<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let no = ReadOptions::new();
    let enrolled_c2 = items_query([item(&["StudentEnrolled"], &[("course", "c2")])]);
    assert_eq!(read_positions(&store, &enrolled_c2, no).await, [5, 9]);
    let course_c1 = items_query([item(
        &["CourseCreated", "CourseRenamed"],
        &[("course", "c1")],
    )]);
    assert_eq!(read_positions(&store, &course_c1, no).await, [1, 8]);
    let narrow = items_query([item(
        &["StudentEnrolled"],
        &[("course", "c1"), ("student", "s2")],
    )]);
    assert_eq!(read_positions(&store, &narrow, no).await, [7]);
    let wrong_type = items_query([item(&["StudentRegistered"], &[("course", "c1")])]);
    assert!(read_positions(&store, &wrong_type, no).await.is_empty());
}

/// A query with several items returns events matching any of them, once each, in order.
pub async fn read_query_items_are_alternatives<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let no = ReadOptions::new();
    let either = items_query([
        item(&["CourseCreated"], &[("course", "c3")]),
        item(&[], &[("student", "s1")]),
    ]);
    assert_eq!(read_positions(&store, &either, no).await, [2, 3, 5, 10]);
    let overlapping = items_query([
        item(&["StudentEnrolled"], &[]),
        item(&[], &[("course", "c1")]),
    ]);
    assert_eq!(
        read_positions(&store, &overlapping, no).await,
        [1, 3, 5, 7, 8, 9],
        "an event matching two items is returned once"
    );
    assert_eq!(
        read_positions(&store, &overlapping, no.descending().limit(3)).await,
        [9, 8, 7]
    );
}

/// `after`, `limit` and direction count matching events only, not the events skipped over.
pub async fn read_options_apply_to_matching_events<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let c1 = tags_query(&[("course", "c1")]);
    let opts = ReadOptions::new();
    assert_eq!(
        read_positions(&store, &c1, opts.after(pos(3)).limit(1)).await,
        [7]
    );
    assert_eq!(
        read_positions(&store, &c1, opts.descending().limit(2)).await,
        [8, 7]
    );
    assert_eq!(
        read_positions(&store, &c1, opts.after(pos(1)).descending()).await,
        [8, 7, 3]
    );
    assert_eq!(
        read_positions(&store, &c1, opts.after(pos(2)).limit(2)).await,
        [3, 7]
    );
    assert!(
        read_positions(&store, &c1, opts.after(pos(8)))
            .await
            .is_empty()
    );
}

/// Every read of an empty store is empty, whatever the query and options.
pub async fn read_of_an_empty_store_is_empty<S: EventStore>(store: S) {
    let queries = [
        Query::all(),
        types_query(&["A"]),
        tags_query(&[("k", "v")]),
        items_query([item(&["A"], &[("k", "v")])]),
    ];
    let options = [
        ReadOptions::new(),
        ReadOptions::new().descending(),
        ReadOptions::new().limit(5),
        ReadOptions::new().descending().limit(1),
        ReadOptions::new().after(pos(1)),
        ReadOptions::new().after(pos(3)).descending(),
    ];
    for query in &queries {
        for o in options {
            let events = store.read(query, o).await.expect("read");
            assert!(events.is_empty(), "{query:?} with {o:?} on an empty store");
        }
        let last = store.read_last(query).await.expect("read_last");
        assert!(last.is_none(), "read_last({query:?}) on an empty store");
    }
}

/// `until` returns only positions at or before it; at or beyond the head it bounds nothing.
pub async fn read_until_includes_the_position<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let until = |p| ReadOptions::new().until(pos(p));
    assert_eq!(
        read_positions(&store, &all, until(1)).await,
        [1],
        "until bounds the read"
    );
    assert_eq!(
        read_positions(&store, &all, until(5)).await,
        (1..=5).collect::<Vec<_>>(),
        "until is inclusive"
    );
    assert_eq!(
        read_positions(&store, &all, until(10)).await,
        (1..=10).collect::<Vec<_>>(),
        "until = head"
    );
    assert_eq!(
        read_positions(&store, &all, until(11)).await,
        (1..=10).collect::<Vec<_>>(),
        "until > head"
    );
    assert_eq!(
        read_positions(&store, &all, until(u64::MAX)).await,
        (1..=10).collect::<Vec<_>>(),
        "until at the largest position"
    );
    let c1 = tags_query(&[("course", "c1")]);
    assert_eq!(
        read_positions(&store, &c1, until(7)).await,
        [1, 3, 7],
        "a match at `until` is included"
    );
    assert_eq!(read_positions(&store, &c1, until(6)).await, [1, 3]);
    assert!(
        read_positions(&store, &types_query(&["CourseRenamed"]), until(7))
            .await
            .is_empty(),
        "the only match lies beyond until"
    );
}

/// `until` combines with `after` (a window), with a limit and with either direction: a
/// descending read with `until` starts at `until`, not at the head.
pub async fn read_until_combines_with_after_direction_and_limit<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let all = Query::all();
    let window = ReadOptions::new().after(pos(3)).until(pos(7));
    assert_eq!(read_positions(&store, &all, window).await, [4, 5, 6, 7]);
    assert_eq!(
        read_positions(&store, &all, window.descending()).await,
        [7, 6, 5, 4]
    );
    assert_eq!(read_positions(&store, &all, window.limit(2)).await, [4, 5]);
    assert_eq!(
        read_positions(&store, &all, window.descending().limit(2)).await,
        [7, 6],
        "descending with until and a limit: the newest up to until"
    );
    let until = ReadOptions::new().until(pos(8));
    assert_eq!(
        read_positions(&store, &all, until.descending().limit(3)).await,
        [8, 7, 6]
    );
    let enrolled = types_query(&["StudentEnrolled"]);
    assert_eq!(
        read_positions(&store, &enrolled, until.descending().limit(1)).await,
        [7]
    );
    let same = ReadOptions::new().after(pos(6)).until(pos(6));
    assert!(
        read_positions(&store, &all, same).await.is_empty(),
        "after = until: nothing is greater than after and at most until"
    );
    let crossed = ReadOptions::new().after(pos(7)).until(pos(3));
    assert!(read_positions(&store, &all, crossed).await.is_empty());
    assert!(
        read_positions(&store, &all, crossed.descending())
            .await
            .is_empty()
    );
    assert!(
        read_positions(&store, &all, window.limit(0))
            .await
            .is_empty(),
        "limit 0"
    );
}
