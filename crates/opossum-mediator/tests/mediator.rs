//! The mediator's rules: typed dispatch, constructor-injected dependencies, and a clear error
//! for a missing handler, a duplicate handler and a timeout. Timeouts run on Tokio's paused
//! clock, so they cost no real time and cannot flake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::type_name;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opossum_mediator::{Handler, Mediator, MediatorError, Message};

/// The repository the handlers below share, injected through their constructors.
#[derive(Clone, Default)]
struct Students(Arc<Mutex<Vec<String>>>);

struct RegisterStudent {
    email: String,
}
impl Message for RegisterStudent {
    type Output = Result<usize, String>;
}

struct ListStudents;
impl Message for ListStudents {
    type Output = Vec<String>;
}

struct CountStudents;
impl Message for CountStudents {
    type Output = usize;
}

struct RegisterStudentHandler {
    students: Students,
}
impl Handler<RegisterStudent> for RegisterStudentHandler {
    async fn handle(&self, command: RegisterStudent) -> Result<usize, String> {
        let mut students = self.students.0.lock().unwrap();
        if students.contains(&command.email) {
            return Err(format!("{} is already registered", command.email));
        }
        students.push(command.email);
        Ok(students.len())
    }
}

/// One handler type answering two queries.
struct StudentQueries {
    students: Students,
}
impl Handler<ListStudents> for StudentQueries {
    async fn handle(&self, _: ListStudents) -> Vec<String> {
        self.students.0.lock().unwrap().clone()
    }
}
impl Handler<CountStudents> for StudentQueries {
    async fn handle(&self, _: CountStudents) -> usize {
        self.students.0.lock().unwrap().len()
    }
}

fn school() -> Mediator {
    let students = Students::default();
    Mediator::builder()
        .handler(RegisterStudentHandler {
            students: students.clone(),
        })
        .handler::<ListStudents, _>(StudentQueries {
            students: students.clone(),
        })
        .handler::<CountStudents, _>(StudentQueries { students })
        .build()
        .unwrap()
}

fn register(email: &str) -> RegisterStudent {
    RegisterStudent {
        email: email.to_owned(),
    }
}

#[tokio::test]
async fn send_returns_the_handlers_typed_output() {
    let mediator = school();
    let registered: Result<usize, String> = mediator.send(register("ada@x.org")).await.unwrap();
    assert_eq!(registered, Ok(1));
    assert_eq!(
        mediator.send(register("ada@x.org")).await.unwrap(),
        Err("ada@x.org is already registered".to_owned())
    );
    let list: Vec<String> = mediator.send(ListStudents).await.unwrap();
    assert_eq!(list, ["ada@x.org"]);
}

#[tokio::test]
async fn handlers_share_the_dependencies_they_were_constructed_with() {
    let mediator = school();
    for email in ["a@x.org", "b@x.org", "c@x.org"] {
        mediator.send(register(email)).await.unwrap().unwrap();
    }
    // Written by one handler, read by another: they hold the same repository.
    assert_eq!(mediator.send(CountStudents).await.unwrap(), 3);

    // A second mediator built with its own repository shares nothing with the first.
    assert_eq!(school().send(CountStudents).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unregistered_message_is_a_clear_error() {
    let mediator = Mediator::builder()
        .handler(RegisterStudentHandler {
            students: Students::default(),
        })
        .build()
        .unwrap();
    assert!(!mediator.handles::<ListStudents>());
    let err = mediator.send(ListStudents).await.unwrap_err();
    assert_eq!(
        err,
        MediatorError::NoHandler {
            message: type_name::<ListStudents>()
        }
    );
    assert!(err.to_string().contains("ListStudents"), "{err}");

    let empty = Mediator::builder().build().unwrap();
    assert!(matches!(
        empty.send(CountStudents).await,
        Err(MediatorError::NoHandler { .. })
    ));
}

struct OtherCounter;
impl Handler<CountStudents> for OtherCounter {
    async fn handle(&self, _: CountStudents) -> usize {
        usize::MAX
    }
}

#[test]
fn a_second_handler_for_a_message_fails_the_build() {
    let students = Students::default();
    let err = Mediator::builder()
        .handler::<CountStudents, _>(StudentQueries {
            students: students.clone(),
        })
        .handler(RegisterStudentHandler {
            students: students.clone(),
        })
        .handler(OtherCounter)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        MediatorError::DuplicateHandler {
            message: type_name::<CountStudents>(),
            first: type_name::<StudentQueries>(),
            second: type_name::<OtherCounter>(),
        }
    );

    // The same handler type twice is just as ambiguous.
    let err = Mediator::builder()
        .handler(OtherCounter)
        .handler(OtherCounter)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, MediatorError::DuplicateHandler { .. }),
        "{err}"
    );
}

/// A handler that takes `work` of (paused) time, and records whether it ran to the end.
struct Slow {
    work: Duration,
    finished: Arc<AtomicBool>,
}

struct Work;
impl Message for Work {
    type Output = &'static str;
}

impl Handler<Work> for Slow {
    async fn handle(&self, _: Work) -> &'static str {
        tokio::time::sleep(self.work).await;
        self.finished.store(true, Ordering::SeqCst);
        "done"
    }
}

fn slow(work: Duration, timeout: Option<Duration>) -> (Mediator, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let builder = Mediator::builder().handler(Slow {
        work,
        finished: Arc::clone(&finished),
    });
    let builder = match timeout {
        Some(t) => builder.timeout(t),
        None => builder,
    };
    (builder.build().unwrap(), finished)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_handler_that_outruns_the_timeout_is_cancelled() {
    let (mediator, finished) = slow(10 * SECOND, Some(SECOND));
    let err = mediator.send(Work).await.unwrap_err();
    assert_eq!(
        err,
        MediatorError::Timeout {
            message: type_name::<Work>(),
            after: SECOND,
        }
    );
    // The handler's future was dropped: it never reaches its end.
    tokio::time::sleep(60 * SECOND).await;
    assert!(!finished.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_handler_within_the_timeout_returns_its_output() {
    let (mediator, finished) = slow(SECOND / 2, Some(SECOND));
    assert_eq!(mediator.send(Work).await.unwrap(), "done");
    assert!(finished.load(Ordering::SeqCst));

    // Without a timeout, a send waits as long as its handler takes.
    let (patient, _) = slow(3_600 * SECOND, None);
    assert_eq!(patient.send(Work).await.unwrap(), "done");
}

#[tokio::test(start_paused = true)]
async fn a_per_call_timeout_overrides_the_builders() {
    let (no_default, _) = slow(10 * SECOND, None);
    assert!(matches!(
        no_default.send_with_timeout(Work, SECOND).await,
        Err(MediatorError::Timeout { after, .. }) if after == SECOND
    ));

    let (short_default, _) = slow(10 * SECOND, Some(SECOND));
    assert_eq!(
        short_default
            .send_with_timeout(Work, 20 * SECOND)
            .await
            .unwrap(),
        "done"
    );
}

struct Increment;
impl Message for Increment {
    type Output = usize;
}
struct Counter(Arc<AtomicUsize>);
impl Handler<Increment> for Counter {
    async fn handle(&self, _: Increment) -> usize {
        tokio::task::yield_now().await;
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mediator_serves_many_tasks() {
    let count = Arc::new(AtomicUsize::new(0));
    let mediator = Mediator::builder()
        .handler(Counter(Arc::clone(&count)))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mediator = mediator.clone();
        tasks.spawn(async move {
            for _ in 0..25 {
                mediator.send(Increment).await.unwrap();
            }
        });
    }
    tasks.join_all().await;
    assert_eq!(count.load(Ordering::SeqCst), 200);
}
