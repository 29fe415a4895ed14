//! Decisions racing on the file store: invariants hold under real concurrency.
//!
//! Attempt limits are set from a bound, not a guess: a decision's attempt fails only when an
//! event matching its query was committed after its read, and its next attempt reads that
//! event, so each failure is caused by a different committed event. With at most N such events
//! in a test, N + 1 attempts always reach an answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use opossum_core::{DomainEvent, EventStore, NewEvent, Query, ReadOptions};
use opossum_decision::{
    DecisionProjection, Error, RetryPolicy, build_decision_model, execute_decision_with,
};
use opossum_fs::FileEventStore;
use opossum_testkit::{item, items_query, types_query};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// Only a hang guard: every test here finishes in well under a second.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn open_store(dir: &tempfile::TempDir) -> Arc<FileEventStore> {
    Arc::new(FileEventStore::open(dir.path().join("store")).unwrap())
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(20))
}

#[derive(Serialize, Deserialize)]
struct CourseCreated {
    capacity: u32,
}
impl DomainEvent for CourseCreated {
    const EVENT_TYPE: &'static str = "CourseCreated";
}

#[derive(Serialize, Deserialize)]
struct StudentRegistered {
    max_courses: u32,
}
impl DomainEvent for StudentRegistered {
    const EVENT_TYPE: &'static str = "StudentRegistered";
}

#[derive(Serialize, Deserialize)]
struct StudentEnrolled {}
impl DomainEvent for StudentEnrolled {
    const EVENT_TYPE: &'static str = "StudentEnrolled";
}

/// `(capacity, enrolled)` of a course; `None` until it is created.
fn course_capacity(course: &str) -> DecisionProjection<Option<(u32, u32)>> {
    DecisionProjection::try_new(
        None,
        items_query([item(
            &["CourseCreated", "StudentEnrolled"],
            &[("course", course)],
        )]),
        |state, e| {
            Ok(match state {
                None => Some((e.decode::<CourseCreated>()?.capacity, 0)),
                Some((capacity, n)) => Some((capacity, n + 1)),
            })
        },
    )
}

/// `(max_courses, enrolled_in)` of a student; `None` until registered.
fn student_limit(student: &str) -> DecisionProjection<Option<(u32, u32)>> {
    DecisionProjection::try_new(
        None,
        items_query([item(
            &["StudentRegistered", "StudentEnrolled"],
            &[("student", student)],
        )]),
        |state, e| {
            Ok(match state {
                None => Some((e.decode::<StudentRegistered>()?.max_courses, 0)),
                Some((max, n)) => Some((max, n + 1)),
            })
        },
    )
}

fn already_enrolled(course: &str, student: &str) -> DecisionProjection<bool> {
    DecisionProjection::new(
        false,
        items_query([item(
            &["StudentEnrolled"],
            &[("course", course), ("student", student)],
        )]),
        |_, _| true,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Enrolment {
    Enrolled,
    CourseFull,
    NotRegistered,
    AtLimit,
    AlreadyEnrolled,
    NoSuchCourse,
}

async fn enrol(store: &FileEventStore, course: &str, student: &str) -> Result<Enrolment, Error> {
    let model = build_decision_model(
        store,
        (
            course_capacity(course),
            student_limit(student),
            already_enrolled(course, student),
        ),
    )
    .await?;
    let (capacity, limit, enrolled) = model.state;
    let Some((capacity, count)) = capacity else {
        return Ok(Enrolment::NoSuchCourse);
    };
    let Some((max_courses, courses)) = limit else {
        return Ok(Enrolment::NotRegistered);
    };
    if enrolled {
        return Ok(Enrolment::AlreadyEnrolled);
    }
    if count >= capacity {
        return Ok(Enrolment::CourseFull);
    }
    if courses >= max_courses {
        return Ok(Enrolment::AtLimit);
    }
    let event = NewEvent::from_typed(&StudentEnrolled {})
        .tag("course", course)
        .tag("student", student)
        .build()?;
    model.append(store, vec![event]).await?;
    Ok(Enrolment::Enrolled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_enrolments_fill_ten_seats_exactly() {
    const STUDENTS: usize = 20;
    const SEATS: u32 = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    let mut setup = vec![
        NewEvent::from_typed(&CourseCreated { capacity: SEATS })
            .tag("course", "rust-101")
            .build()
            .unwrap(),
    ];
    for s in 0..STUDENTS {
        setup.push(
            NewEvent::from_typed(&StudentRegistered { max_courses: 3 })
                .tag("student", format!("s{s}"))
                .build()
                .unwrap(),
        );
    }
    store.append(setup, None).await.unwrap();

    let mut tasks = JoinSet::new();
    for s in 0..STUDENTS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let student = format!("s{s}");
            // At most SEATS enrolments are ever committed: SEATS + 1 attempts always suffice.
            let outcome = execute_decision_with(&*store, policy(SEATS + 1), |store| {
                enrol(store, "rust-101", &student)
            })
            .await
            .unwrap();
            (student, outcome)
        });
    }
    let outcomes = tokio::time::timeout(HANG_GUARD, tasks.join_all())
        .await
        .expect("hang guard");

    let enrolled: BTreeSet<&str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Enrolment::Enrolled)
        .map(|(s, _)| s.as_str())
        .collect();
    let full = outcomes
        .iter()
        .filter(|(_, o)| *o == Enrolment::CourseFull)
        .count();
    assert_eq!((enrolled.len(), full), (10, 10), "{outcomes:?}");

    // The log agrees with the outcomes: ten enrolment events, one per enrolled student.
    let stored = store
        .read(&types_query(&["StudentEnrolled"]), ReadOptions::new())
        .await
        .unwrap();
    let stored_students: BTreeSet<&str> = stored
        .iter()
        .map(|e| {
            let tag = e
                .event
                .tags()
                .iter()
                .find(|t| t.key() == "student")
                .unwrap();
            tag.value()
        })
        .collect();
    assert_eq!(stored.len(), 10);
    assert_eq!(stored_students, enrolled);
    assert!(store.verify().unwrap().is_intact());
}

#[derive(Serialize, Deserialize)]
struct InvoiceCreated {
    number: u64,
}
impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}

async fn create_invoice(store: &FileEventStore, writer: usize) -> Result<u64, Error> {
    let last = DecisionProjection::try_new(0_u64, types_query(&["InvoiceCreated"]), |last, e| {
        Ok(last.max(e.decode::<InvoiceCreated>()?.number))
    });
    let model = build_decision_model(store, last).await?;
    let number = model.state + 1;
    let event = NewEvent::from_typed(&InvoiceCreated { number })
        .tag("invoice", number.to_string())
        .tag("writer", writer.to_string())
        .build()?;
    model.append(store, vec![event]).await?;
    Ok(number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_invoice_writers_produce_gap_free_numbers() {
    const WRITERS: usize = 10;
    const EACH: usize = 3;
    const TOTAL: u64 = (WRITERS * EACH) as u64;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);

    let mut tasks = JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..EACH {
                // At most TOTAL invoices are ever committed: TOTAL + 1 attempts suffice.
                let policy = policy(u32::try_from(TOTAL).unwrap() + 1);
                let n =
                    execute_decision_with(&*store, policy, |store| create_invoice(store, writer))
                        .await
                        .unwrap();
                mine.push(n);
            }
            mine
        });
    }
    let per_writer = tokio::time::timeout(HANG_GUARD, tasks.join_all())
        .await
        .expect("hang guard");

    let mut returned: Vec<u64> = per_writer.iter().flatten().copied().collect();
    returned.sort_unstable();
    assert_eq!(
        returned,
        (1..=TOTAL).collect::<Vec<_>>(),
        "no duplicates, no gaps"
    );
    for mine in &per_writer {
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
    }

    let stored: Vec<u64> = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap()
        .iter()
        .map(|e| e.decode::<InvoiceCreated>().unwrap().number)
        .collect();
    assert_eq!(stored, (1..=TOTAL).collect::<Vec<_>>(), "in position order");
    assert!(store.verify().unwrap().is_intact());
}
