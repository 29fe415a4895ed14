//! `build_decision_model`: one read over the union, per-projection folds in position order, one
//! append condition that is exactly as wide as the projections — on the in-memory store and on
//! the file store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use opossum_core::{
    AppendCondition, EventStore, InMemoryEventStore, NewEvent, Position, Query, ReadOptions,
    SequencedEvent,
};
use opossum_decision::{
    DecisionModel, DecisionProjection, Error, build_decision_model, build_decision_model_many,
};
use opossum_fs::FileEventStore;
use opossum_testkit::{Guarded, event, item, items_query, types_query};
use tempfile::TempDir;

fn file_store() -> Guarded<FileEventStore, TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("decisions")).unwrap();
    Guarded::new(store, dir)
}

/// Events of a course: created and enrolments, tagged with the course.
fn course(id: &str) -> DecisionProjection<u32> {
    DecisionProjection::new(
        0,
        items_query([item(
            &["CourseCreated", "StudentEnrolled"],
            &[("course", id)],
        )]),
        |n, _| n + 1,
    )
}

/// Events of a student, tagged with the student.
fn student(id: &str) -> DecisionProjection<u32> {
    DecisionProjection::new(
        0,
        items_query([item(
            &["StudentRegistered", "StudentEnrolled"],
            &[("student", id)],
        )]),
        |n, _| n + 1,
    )
}

/// Whether a student is enrolled in a course.
fn enrolled(course: &str, student: &str) -> DecisionProjection<bool> {
    DecisionProjection::new(
        false,
        items_query([item(
            &["StudentEnrolled"],
            &[("course", course), ("student", student)],
        )]),
        |_, _| true,
    )
}

fn enrolment(course: &str, student: &str) -> NewEvent {
    event(
        "StudentEnrolled",
        &[("course", course), ("student", student)],
    )
}

async fn seed(store: &dyn EventStore) {
    store
        .append(
            vec![
                event("CourseCreated", &[("course", "c1")]),
                event("StudentRegistered", &[("student", "s1")]),
                event("CourseCreated", &[("course", "c2")]),
                event("StudentRegistered", &[("student", "s2")]),
            ],
            None,
        )
        .await
        .unwrap();
}

async fn count(store: &dyn EventStore) -> usize {
    store
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap()
        .len()
}

/// Writes outside the union — other courses, other students, other event types on the same
/// course — leave the decision's condition intact.
async fn writes_outside_the_union_do_not_fail_the_append(store: &dyn EventStore) {
    seed(store).await;
    let (state, condition) =
        build_decision_model(store, (course("c1"), student("s1"), enrolled("c1", "s1")))
            .await
            .unwrap()
            .into_parts();
    assert_eq!(state, (1, 1, false));

    // Another decision, on other entities, commits in between.
    store
        .append(
            vec![
                enrolment("c2", "s2"),
                event("CourseRenamed", &[("course", "c1")]),
                event("Unrelated", &[]),
            ],
            None,
        )
        .await
        .unwrap();

    store
        .append(vec![enrolment("c1", "s1")], Some(condition))
        .await
        .expect("writes outside the union must not fail the append");
    assert_eq!(count(store).await, 8);
}

/// A write matching any one of the projections fails the append, and nothing is appended.
async fn a_write_inside_the_union_fails_the_append(store: &dyn EventStore) {
    seed(store).await;
    let concurrent_writes = [
        event("StudentEnrolled", &[("course", "c1"), ("student", "s9")]), // course only
        event("StudentRegistered", &[("student", "s1")]),                 // student only
        enrolment("c1", "s1"),                                            // all three
    ];
    for write in concurrent_writes {
        let model =
            build_decision_model(store, (course("c1"), student("s1"), enrolled("c1", "s1")))
                .await
                .unwrap();
        let before = count(store).await;
        store.append(vec![write.clone()], None).await.unwrap();
        let err = store
            .append(vec![enrolment("c1", "s1")], Some(model.condition().clone()))
            .await
            .expect_err("a write inside the union must fail the append");
        assert!(err.is_condition_failed(), "{err}");
        assert_eq!(
            count(store).await,
            before + 1,
            "nothing appended by {write:?}"
        );
    }
}

async fn the_condition_is_the_union_after_the_highest_position_read(store: &dyn EventStore) {
    store
        .append(
            vec![
                event("Other", &[]),                              // 1
                event("CourseCreated", &[("course", "c1")]),      // 2
                event("Other", &[]),                              // 3
                event("StudentRegistered", &[("student", "s1")]), // 4
                event("Other", &[]),                              // 5
            ],
            None,
        )
        .await
        .unwrap();
    let (c, s) = (course("c1"), student("s1"));
    let union = c.query().union(s.query());
    let model = build_decision_model(store, (c, s)).await.unwrap();
    assert_eq!(
        *model.condition(),
        AppendCondition::new(union).after(Some(Position::new(4).unwrap()))
    );

    // Nothing read: no `after`, even though the store is not empty.
    let model = build_decision_model(store, course("nowhere"))
        .await
        .unwrap();
    assert_eq!(model.state, 0);
    assert_eq!(model.condition().after, None);
    assert_eq!(
        &model.condition().fail_if_events_match,
        course("nowhere").query()
    );
}

#[tokio::test]
async fn in_memory_writes_outside_the_union_do_not_fail_the_append() {
    writes_outside_the_union_do_not_fail_the_append(&InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn file_store_writes_outside_the_union_do_not_fail_the_append() {
    writes_outside_the_union_do_not_fail_the_append(&*file_store()).await;
}

#[tokio::test]
async fn in_memory_a_write_inside_the_union_fails_the_append() {
    a_write_inside_the_union_fails_the_append(&InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn file_store_a_write_inside_the_union_fails_the_append() {
    a_write_inside_the_union_fails_the_append(&*file_store()).await;
}

#[tokio::test]
async fn in_memory_the_condition_is_the_union_after_the_highest_position_read() {
    the_condition_is_the_union_after_the_highest_position_read(&InMemoryEventStore::new()).await;
}

#[tokio::test]
async fn file_store_the_condition_is_the_union_after_the_highest_position_read() {
    the_condition_is_the_union_after_the_highest_position_read(&*file_store()).await;
}

/// A store that counts reads and remembers their queries.
#[derive(Default)]
struct CountingStore {
    inner: InMemoryEventStore,
    reads: AtomicUsize,
    queries: Mutex<Vec<Query>>,
}

#[async_trait]
impl EventStore for CountingStore {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        self.inner.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.queries.lock().unwrap().push(query.clone());
        self.inner.read(query, options).await
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_last(query).await
    }
}

#[tokio::test]
async fn three_projections_are_built_from_one_read_of_their_union() {
    let store = CountingStore::default();
    seed(&store).await;
    let set = (course("c1"), student("s1"), enrolled("c1", "s1"));
    let union = set.0.query().union(set.1.query()).union(set.2.query());
    build_decision_model(&store, set).await.unwrap();
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    assert_eq!(*store.queries.lock().unwrap(), [union]);
}

#[tokio::test]
async fn a_list_is_built_from_one_read_of_its_union() {
    let store = CountingStore::default();
    seed(&store).await;
    let model = build_decision_model_many(&store, vec![course("c1"), course("c2"), course("c3")])
        .await
        .unwrap();
    assert_eq!(model.state, [1, 1, 0]);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
}

/// A log shared by several folds, to see the order they run in.
type Log = Arc<Mutex<Vec<(&'static str, u64)>>>;

fn logging(name: &'static str, query: Query, log: &Log) -> DecisionProjection<Vec<u64>> {
    let log = Arc::clone(log);
    DecisionProjection::new(Vec::new(), query, move |mut seen, e| {
        log.lock().unwrap().push((name, e.position.get()));
        seen.push(e.position.get());
        seen
    })
}

#[tokio::test]
async fn events_are_applied_in_position_order_not_projection_order() {
    let store = InMemoryEventStore::new();
    store
        .append(
            ["B", "A", "C", "A", "B", "C"]
                .iter()
                .map(|t| event(t, &[]))
                .collect(),
            None,
        )
        .await
        .unwrap();

    // Pairs and triples: the fold visits each event once, in position order, and hands it to
    // whichever projections match — never all of one projection's events first.
    let log = Log::default();
    let model = build_decision_model(
        &store,
        (
            logging("a", types_query(&["A"]), &log),
            logging("b", types_query(&["B"]), &log),
            logging("c", types_query(&["C"]), &log),
        ),
    )
    .await
    .unwrap();
    assert_eq!(model.state, (vec![2, 4], vec![1, 5], vec![3, 6]));
    assert_eq!(
        *log.lock().unwrap(),
        [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("b", 5), ("c", 6)]
    );

    let log = Log::default();
    let model = build_decision_model_many(
        &store,
        vec![
            logging("c", types_query(&["C"]), &log),
            logging("ab", types_query(&["A", "B"]), &log),
        ],
    )
    .await
    .unwrap();
    assert_eq!(model.state, [vec![3, 6], vec![1, 2, 4, 5]]);
    assert_eq!(
        *log.lock().unwrap(),
        [
            ("ab", 1),
            ("ab", 2),
            ("c", 3),
            ("ab", 4),
            ("ab", 5),
            ("c", 6)
        ]
    );
}

#[tokio::test]
async fn an_event_matching_several_projections_is_folded_by_each() {
    let store = InMemoryEventStore::new();
    seed(&store).await;
    store
        .append(vec![enrolment("c1", "s1")], None)
        .await
        .unwrap();
    let model = build_decision_model(&store, (course("c1"), student("s1"), enrolled("c1", "s1")))
        .await
        .unwrap();
    assert_eq!(model.state, (2, 2, true));
}

#[tokio::test]
async fn one_two_three_and_many_projections_return_their_own_state_types() {
    let store = InMemoryEventStore::new();
    seed(&store).await;

    let one: DecisionModel<u32> = build_decision_model(&store, course("c1")).await.unwrap();
    assert_eq!(one.state, 1);
    let single: DecisionModel<(bool,)> = build_decision_model(&store, (enrolled("c1", "s1"),))
        .await
        .unwrap();
    assert_eq!(single.state, (false,));
    let pair: DecisionModel<(u32, bool)> =
        build_decision_model(&store, (course("c2"), enrolled("c2", "s2")))
            .await
            .unwrap();
    assert_eq!(pair.state, (1, false));
    let many: DecisionModel<Vec<u32>> =
        build_decision_model(&store, vec![student("s1"), student("s2"), student("s3")])
            .await
            .unwrap();
    assert_eq!(many.state, [1, 1, 0]);
    assert_eq!(many.condition().after, Some(Position::new(4).unwrap()));
}

#[tokio::test]
async fn an_empty_list_is_an_error() {
    let store = CountingStore::default();
    let err = build_decision_model_many::<_, u32>(&store, Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoProjections), "{err}");
    assert_eq!(store.reads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_all_query_makes_the_whole_store_the_boundary() {
    let store = InMemoryEventStore::new();
    seed(&store).await;
    let everything = DecisionProjection::new(0, Query::all(), |n, _| n + 1);
    let model = build_decision_model(&store, (course("c1"), everything))
        .await
        .unwrap();
    assert_eq!(model.state, (1, 4));
    assert!(model.condition().fail_if_events_match.is_all());
    assert_eq!(model.condition().after, Some(Position::new(4).unwrap()));

    store
        .append(vec![event("Unrelated", &[])], None)
        .await
        .unwrap();
    let err = store
        .append(vec![enrolment("c1", "s1")], Some(model.condition().clone()))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed());
}

#[tokio::test]
async fn a_fold_that_rejects_an_event_stops_the_build() {
    let store = InMemoryEventStore::new();
    seed(&store).await;
    let strict = DecisionProjection::try_new(0_u64, types_query(&["StudentRegistered"]), |_, e| {
        e.event
            .payload()
            .decode::<u64>()
            .map_err(|source| opossum_core::Error::InvalidPayload { source })
    });
    let err = build_decision_model(&store, (course("c1"), strict))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Fold { position, .. } if position.get() == 2),
        "{err}"
    );
}
