//! Property: rebuilding a projection from the log gives exactly the states (and tag index) that
//! incremental updates built, whatever the events, the batch sizes, the flush points and the
//! restarts in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Tag};
use proptest::prelude::*;
use support::*;

#[derive(Clone, Debug)]
enum Op {
    Register { student: u8, name: u8 },
    Leave { student: u8 },
    Create { course: u8, capacity: u8 },
    Enrol { course: u8, student: u8 },
}

impl Op {
    fn event(&self) -> NewEvent {
        match *self {
            Op::Register { student, name } => {
                registered(&format!("s-{student}"), &format!("Name {name}"))
            }
            Op::Leave { student } => left(&format!("s-{student}")),
            Op::Create { course, capacity } => {
                support::course(&format!("c-{course}"), "Course", u32::from(capacity))
            }
            Op::Enrol { course, student } => {
                enrolled(&format!("c-{course}"), &format!("s-{student}"))
            }
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..12_u8, 0..4_u8).prop_map(|(student, name)| Op::Register { student, name }),
        1 => (0..12_u8).prop_map(|student| Op::Leave { student }),
        1 => (0..4_u8, 0..4_u8).prop_map(|(course, capacity)| Op::Create { course, capacity }),
        4 => (0..4_u8, 0..12_u8).prop_map(|(course, student)| Op::Enrol { course, student }),
    ]
}

/// A chunk of operations appended together, then caught up with `batch` events per step,
/// optionally after reopening the manager.
#[derive(Clone, Debug)]
struct Chunk {
    ops: Vec<Op>,
    batch: usize,
    reopen: bool,
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (
        prop::collection::vec(op(), 1..40),
        1..20_usize,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ops, batch, reopen)| Chunk { ops, batch, reopen })
}

/// Every instance of both projections, and the results of some tag queries.
type Snapshot = (
    Vec<(String, Student)>,
    Vec<(String, Course)>,
    Vec<Vec<String>>,
);

fn snapshot(manager: &opossum_projections::ProjectionManager) -> Snapshot {
    use opossum_projections::Page;
    let students = manager.store::<Students>().unwrap();
    let courses = manager.store::<CourseDetails>().unwrap();
    let by_tag = ["True", "false"]
        .iter()
        .map(|v| {
            courses
                .query_by_tag(&Tag::new("IsFull", *v).unwrap(), &Page::all())
                .unwrap()
                .into_states()
                .into_iter()
                .map(|c| c.id)
                .collect()
        })
        .chain(["yes", "No"].iter().map(|v| {
            students
                .query_by_tag(&Tag::new("active", *v).unwrap(), &Page::all())
                .unwrap()
                .into_states()
                .into_iter()
                .map(|s| s.id)
                .collect()
        }))
        .collect();
    (
        students.entries().unwrap(),
        courses.entries().unwrap(),
        by_tag,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_rebuild_equals_the_incremental_updates(
        chunks in prop::collection::vec(chunk(), 1..8),
        rebuild_batch in 100..150_usize,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let mut manager = manager(&store, options(dir.path()));
            for chunk in &chunks {
                append(&store, chunk.ops.iter().map(Op::event).collect()).await;
                if chunk.reopen {
                    drop(manager);
                    manager = support::manager(&store, options(dir.path()).batch_size(chunk.batch));
                }
                let report = manager.catch_up().await;
                prop_assert!(report.is_success(), "{:?}", report);
            }
            let incremental = snapshot(&manager);
            drop(manager);

            let options = options(dir.path()).rebuild_batch_size(rebuild_batch);
            let manager = support::manager(&store, options);
            let report = manager.rebuilder().rebuild_all().await;
            prop_assert!(report.is_success(), "{:?}", report);
            let rebuilt = snapshot(&manager);
            prop_assert_eq!(incremental, rebuilt);
            Ok(())
        })?;
    }
}
