//! Append conditions: `after`, "anywhere", `Query::all()` and narrow consistency boundaries.

use opossum_core::{AppendCondition, Error, EventStore, Position, Query, ReadOptions};

use super::seed_course_history;
use crate::fixtures::{event, item, items_query, pos, positions, tags_query, types_query};

/// The position of the newest event, or `None` for an empty store.
async fn head<S: EventStore>(store: &S) -> Option<u64> {
    let last = store.read_last(&Query::all()).await.expect("read_last");
    last.map(|e| e.position.get())
}

/// Asserts that `result` is [`Error::ConditionFailed`] reporting `after`.
fn assert_condition_failed(result: Result<Position, Error>, after: Option<Position>) {
    match result {
        Err(Error::ConditionFailed { after: reported }) => {
            assert_eq!(
                reported, after,
                "ConditionFailed must report the condition's `after`"
            );
        }
        other => panic!("expected ConditionFailed {{ after: {after:?} }}, got {other:?}"),
    }
}

/// A condition whose query has no match after `after` passes.
pub async fn condition_with_after_passes_without_newer_matches<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    // The last course=c1 event is at 8; events 9 and 10 are about other courses.
    let condition = AppendCondition::new(tags_query(&[("course", "c1")])).after(Some(pos(8)));
    let last = store
        .append(
            vec![event("CourseRenamed", &[("course", "c1")])],
            Some(condition),
        )
        .await
        .expect("no course=c1 event after 8, so the condition passes");
    assert_eq!(last.get(), 11);
}

/// A condition fails when a matching event exists after `after`, and then nothing is written.
pub async fn condition_with_after_fails_on_a_newer_match<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let condition = AppendCondition::new(tags_query(&[("course", "c1")])).after(Some(pos(7)));
    let result = store
        .append(
            vec![event("CourseRenamed", &[("course", "c1")])],
            Some(condition),
        )
        .await;
    assert_condition_failed(result, Some(pos(7)));
    assert_eq!(
        head(&store).await,
        Some(10),
        "a failed append must write nothing"
    );

    // The event exactly at `after` does not count.
    let at = AppendCondition::new(types_query(&["CourseRenamed"])).after(Some(pos(8)));
    let last = store
        .append(vec![event("Other", &[])], Some(at))
        .await
        .expect("the match is at `after`, not after it");
    assert_eq!(last.get(), 11);
}

/// Without `after`, a match at any position fails the condition, however old.
pub async fn condition_without_after_fails_on_any_match<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    // Only event 1 matches, far behind the head.
    let first_course = items_query([item(&["CourseCreated"], &[("course", "c1")])]);
    let result = store
        .append(
            vec![event("CourseCreated", &[("course", "c1")])],
            Some(AppendCondition::new(first_course)),
        )
        .await;
    assert_condition_failed(result, None);
    assert_eq!(
        head(&store).await,
        Some(10),
        "a failed append must write nothing"
    );

    let unseen = AppendCondition::new(tags_query(&[("course", "c9")]));
    let last = store
        .append(
            vec![event("CourseCreated", &[("course", "c9")])],
            Some(unseen),
        )
        .await
        .expect("no course=c9 event exists, so the condition passes");
    assert_eq!(last.get(), 11);
}

/// `Query::all()` without `after` passes only on an empty store.
pub async fn condition_on_all_without_after_passes_only_when_empty<S: EventStore>(store: S) {
    let everything = AppendCondition::new(Query::all());
    let first = store
        .append(vec![event("First", &[])], Some(everything.clone()))
        .await
        .expect("an empty store holds no matching event");
    assert_eq!(first.get(), 1);

    let result = store
        .append(vec![event("Second", &[])], Some(everything))
        .await;
    assert_condition_failed(result, None);
    assert_eq!(head(&store).await, Some(1));
}

/// `Query::all()` with `after` = head passes, and fails once anything is appended after it.
pub async fn condition_on_all_after_head_passes<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let at_head = AppendCondition::new(Query::all()).after(Some(pos(10)));
    let last = store
        .append(vec![event("Next", &[])], Some(at_head.clone()))
        .await
        .expect("nothing exists after the head");
    assert_eq!(last.get(), 11);

    let result = store.append(vec![event("Next", &[])], Some(at_head)).await;
    assert_condition_failed(result, Some(pos(10)));
    assert_eq!(head(&store).await, Some(11));
}

/// A write outside the decision's query (other tag, other type, or the same type with another
/// tag) does not invalidate the decision.
pub async fn unrelated_write_does_not_invalidate_a_condition<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    // Decide about course c1's name: its creation and renames.
    let decision = items_query([item(
        &["CourseCreated", "CourseRenamed"],
        &[("course", "c1")],
    )]);
    let seen = store
        .read(&decision, ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(positions(&seen), [1, 8]);
    let after = seen.last().map(|e| e.position);

    // Meanwhile, other writers touch other things.
    let unrelated = vec![
        event("CourseRenamed", &[("course", "c2")]),
        event("StudentEnrolled", &[("course", "c1"), ("student", "s3")]),
        event("StudentRegistered", &[("student", "s3")]),
    ];
    store.append(unrelated, None).await.expect("append");

    let condition = AppendCondition::new(decision).after(after);
    let last = store
        .append(
            vec![event("CourseRenamed", &[("course", "c1")])],
            Some(condition),
        )
        .await
        .expect("nothing the decision depends on changed");
    assert_eq!(last.get(), 14);
}

/// A write inside the decision's query invalidates it, even among unrelated writes.
pub async fn related_write_invalidates_a_condition<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let decision = items_query([item(
        &["CourseCreated", "CourseRenamed"],
        &[("course", "c1")],
    )]);
    let seen = store
        .read(&decision, ReadOptions::new())
        .await
        .expect("read");
    let after = seen.last().map(|e| e.position);

    let concurrent = vec![
        event("StudentRegistered", &[("student", "s3")]),
        event("CourseRenamed", &[("course", "c1"), ("by", "someone else")]),
    ];
    store.append(concurrent, None).await.expect("append");

    let condition = AppendCondition::new(decision).after(after);
    let result = store
        .append(
            vec![event("CourseRenamed", &[("course", "c1")])],
            Some(condition),
        )
        .await;
    assert_condition_failed(result, after);
    assert_eq!(
        head(&store).await,
        Some(12),
        "a failed append must write nothing"
    );
}

/// [`Error::ConditionFailed`] is the one error for which `is_condition_failed()` is true.
pub async fn condition_failure_is_reported_as_such<S: EventStore>(store: S) {
    store
        .append(vec![event("A", &[])], None)
        .await
        .expect("append");
    let err = store
        .append(
            vec![event("B", &[])],
            Some(AppendCondition::new(types_query(&["A"]))),
        )
        .await
        .expect_err("an A event exists");
    assert!(err.is_condition_failed(), "unexpected error: {err:?}");
    assert!(
        matches!(err, Error::ConditionFailed { after: None }),
        "{err:?}"
    );

    let err = store
        .append(
            vec![event("B", &[])],
            Some(AppendCondition::new(types_query(&["A"])).after(None)),
        )
        .await
        .expect_err("an A event exists");
    assert!(err.is_condition_failed());

    let err = store
        .append(Vec::new(), None)
        .await
        .expect_err("empty append");
    assert!(
        !err.is_condition_failed(),
        "{err:?} is not a condition failure"
    );
}
