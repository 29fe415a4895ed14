//! `read_last`: the highest-position match, or nothing.

use opossum_core::{EventStore, Query};

use super::seed_course_history;
use crate::fixtures::{EventRecord, event, item, items_query, tags_query, types_query};

/// Reads the last match of `query` and returns its position, panicking on a store error.
async fn last_position<S: EventStore>(store: &S, query: &Query) -> Option<u64> {
    let last = store.read_last(query).await.expect("read_last");
    last.map(|e| e.position.get())
}

/// `read_last` returns the highest-position event matching the query, whole.
pub async fn read_last_returns_the_newest_match<S: EventStore>(store: S) {
    let history = seed_course_history(&store).await;

    let newest = store
        .read_last(&Query::all())
        .await
        .expect("read_last")
        .expect("the store holds events");
    assert_eq!(
        EventRecord::of(&newest),
        EventRecord::expected(10, &history[9])
    );

    assert_eq!(
        last_position(&store, &tags_query(&[("student", "s1")])).await,
        Some(5)
    );
    assert_eq!(
        last_position(&store, &tags_query(&[("course", "c1")])).await,
        Some(8)
    );
    assert_eq!(
        last_position(&store, &types_query(&["StudentRegistered"])).await,
        Some(6)
    );
    assert_eq!(
        last_position(
            &store,
            &types_query(&["CourseRenamed", "StudentRegistered"])
        )
        .await,
        Some(8)
    );
    let enrolled_c1 = items_query([item(&["StudentEnrolled"], &[("course", "c1")])]);
    assert_eq!(last_position(&store, &enrolled_c1).await, Some(7));
    let either = items_query([
        item(&["StudentRegistered"], &[]),
        item(&[], &[("course", "c2"), ("student", "s1")]),
    ]);
    assert_eq!(last_position(&store, &either).await, Some(6));

    let registered = store
        .read_last(&types_query(&["StudentRegistered"]))
        .await
        .expect("read_last")
        .expect("a StudentRegistered event exists");
    assert_eq!(
        EventRecord::of(&registered),
        EventRecord::expected(6, &history[5])
    );
}

/// `read_last` is `None` when nothing matches, and follows new appends.
pub async fn read_last_without_a_match_is_none<S: EventStore>(store: S) {
    assert_eq!(
        last_position(&store, &Query::all()).await,
        None,
        "empty store"
    );
    seed_course_history(&store).await;
    assert_eq!(
        last_position(&store, &types_query(&["Unknown"])).await,
        None
    );
    assert_eq!(
        last_position(&store, &tags_query(&[("course", "c9")])).await,
        None
    );
    let disjoint = tags_query(&[("course", "c3"), ("student", "s2")]);
    assert_eq!(last_position(&store, &disjoint).await, None);

    store
        .append(
            vec![event("Unknown", &[("course", "c3"), ("student", "s2")])],
            None,
        )
        .await
        .expect("append");
    assert_eq!(
        last_position(&store, &types_query(&["Unknown"])).await,
        Some(11)
    );
    assert_eq!(last_position(&store, &disjoint).await, Some(11));
    assert_eq!(last_position(&store, &Query::all()).await, Some(11));
}
