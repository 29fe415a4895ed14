//! Events and projections shared by the integration tests: students and courses, as in the
//! original's sample.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    reason = "test helpers: a failed expectation is a test failure; not every test uses every helper"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opossum_core::{
    DomainEvent, Durability, EventStore, NewEvent, Position, Query, QueryItem, SequencedEvent, Tag,
};
use opossum_projections::{
    BoxError, Projection, ProjectionManager, ProjectionManagerBuilder, ProjectionOptions,
};
use serde::{Deserialize, Serialize};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Serialize, Deserialize)]
pub struct StudentRegistered {
    pub name: String,
}
impl DomainEvent for StudentRegistered {
    const EVENT_TYPE: &'static str = "StudentRegistered";
}

#[derive(Serialize, Deserialize)]
pub struct StudentLeft {}
impl DomainEvent for StudentLeft {
    const EVENT_TYPE: &'static str = "StudentLeft";
}

#[derive(Serialize, Deserialize)]
pub struct CourseCreated {
    pub name: String,
    pub capacity: u32,
}
impl DomainEvent for CourseCreated {
    const EVENT_TYPE: &'static str = "CourseCreated";
}

#[derive(Serialize, Deserialize)]
pub struct StudentEnrolled {
    /// A test hook: projections that know it fail on this event.
    #[serde(default)]
    pub poison: bool,
}
impl DomainEvent for StudentEnrolled {
    const EVENT_TYPE: &'static str = "StudentEnrolled";
}

pub fn registered(student: &str, name: &str) -> NewEvent {
    NewEvent::from_typed(&StudentRegistered { name: name.into() })
        .tag("studentId", student)
        .build()
        .unwrap()
}

pub fn left(student: &str) -> NewEvent {
    NewEvent::from_typed(&StudentLeft {})
        .tag("studentId", student)
        .build()
        .unwrap()
}

pub fn course(course: &str, name: &str, capacity: u32) -> NewEvent {
    NewEvent::from_typed(&CourseCreated {
        name: name.into(),
        capacity,
    })
    .tag("courseId", course)
    .build()
    .unwrap()
}

pub fn enrolled(course: &str, student: &str) -> NewEvent {
    enrolment(course, student, false)
}

pub fn poisoned_enrolment(course: &str, student: &str) -> NewEvent {
    enrolment(course, student, true)
}

fn enrolment(course: &str, student: &str, poison: bool) -> NewEvent {
    NewEvent::from_typed(&StudentEnrolled { poison })
        .tag("courseId", course)
        .tag("studentId", student)
        .build()
        .unwrap()
}

/// One student: name and the number of courses enrolled in. Deleted when the student leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    pub id: String,
    pub name: String,
    pub courses: u32,
}

pub struct Students;

impl Projection for Students {
    type State = Student;

    fn name(&self) -> &str {
        "Students"
    }

    fn event_types(&self) -> Vec<&str> {
        vec![
            StudentRegistered::EVENT_TYPE,
            StudentLeft::EVENT_TYPE,
            StudentEnrolled::EVENT_TYPE,
        ]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("studentId").map(str::to_owned)
    }

    fn apply(
        &self,
        state: Option<Student>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<Student>, BoxError> {
        let id = self.key(event).unwrap_or_default();
        Ok(match event.event.event_type().as_str() {
            StudentRegistered::EVENT_TYPE => Some(Student {
                id,
                name: event.decode::<StudentRegistered>()?.name,
                courses: 0,
            }),
            StudentLeft::EVENT_TYPE => None,
            _ => state.map(|s| Student {
                courses: s.courses + 1,
                ..s
            }),
        })
    }

    fn tags(&self, state: &Student) -> Vec<Tag> {
        vec![Tag::new("active", if state.courses > 0 { "Yes" } else { "No" }).unwrap()]
    }
}

/// One course with the names of its students, found through related events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    pub id: String,
    pub name: String,
    pub capacity: u32,
    pub students: Vec<String>,
}

impl Course {
    pub fn is_full(&self) -> bool {
        self.students.len() >= self.capacity as usize
    }
}

pub struct CourseDetails;

impl Projection for CourseDetails {
    type State = Course;

    fn name(&self) -> &str {
        "CourseDetails"
    }

    fn event_types(&self) -> Vec<&str> {
        vec![CourseCreated::EVENT_TYPE, StudentEnrolled::EVENT_TYPE]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("courseId").map(str::to_owned)
    }

    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        let student = event.event.tag_value("studentId")?;
        Some(
            Query::from_items([QueryItem::of_types([StudentRegistered::EVENT_TYPE])
                .unwrap()
                .with_tag(Tag::new("studentId", student).unwrap())])
            .unwrap(),
        )
    }

    fn apply(
        &self,
        state: Option<Course>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<Course>, BoxError> {
        if event.is::<CourseCreated>() {
            let created = event.decode::<CourseCreated>()?;
            return Ok(Some(Course {
                id: self.key(event).unwrap_or_default(),
                name: created.name,
                capacity: created.capacity,
                students: Vec::new(),
            }));
        }
        let Some(mut course) = state else {
            return Ok(None);
        };
        // The name as registered before the enrolment; "?" when the student registered later.
        let name = match related.last() {
            Some(e) => e.decode::<StudentRegistered>()?.name,
            None => "?".to_owned(),
        };
        course.students.push(name);
        Ok(Some(course))
    }

    fn tags(&self, state: &Course) -> Vec<Tag> {
        vec![
            // Capitalised like .NET's bool.ToString(): queries match values in any case.
            Tag::new("IsFull", if state.is_full() { "True" } else { "False" }).unwrap(),
            Tag::new("size", state.students.len().to_string()).unwrap(),
        ]
    }
}

/// Counts enrolments per course, and fails (or panics) on a poisoned enrolment.
pub struct Fragile {
    pub panics: bool,
}

impl Projection for Fragile {
    type State = u64;

    fn name(&self) -> &str {
        "Fragile"
    }

    fn event_types(&self) -> Vec<&str> {
        vec![StudentEnrolled::EVENT_TYPE]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("courseId").map(str::to_owned)
    }

    fn apply(
        &self,
        state: Option<u64>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<u64>, BoxError> {
        if event.decode::<StudentEnrolled>()?.poison {
            if self.panics {
                panic!("poisoned enrolment at {}", event.position);
            }
            return Err(format!("poisoned enrolment at {}", event.position).into());
        }
        Ok(Some(state.unwrap_or(0) + 1))
    }
}

/// A projections folder and the options of a test.
#[derive(Clone, Debug)]
pub struct Opts {
    pub root: PathBuf,
    pub options: ProjectionOptions,
}

impl Opts {
    pub fn new(root: impl Into<PathBuf>, options: ProjectionOptions) -> Opts {
        Opts {
            root: root.into(),
            options,
        }
    }

    /// A manager builder for this folder and these options.
    pub fn builder(self, store: Arc<dyn EventStore>) -> ProjectionManagerBuilder {
        ProjectionManager::builder(store, self.root).options(self.options)
    }

    pub fn polling_interval(mut self, interval: std::time::Duration) -> Opts {
        self.options = self.options.polling_interval(interval);
        self
    }

    pub fn batch_size(mut self, events: usize) -> Opts {
        self.options = self.options.batch_size(events);
        self
    }

    pub fn rebuild_batch_size(mut self, events: usize) -> Opts {
        self.options = self.options.rebuild_batch_size(events);
        self
    }

    pub fn rebuild_flush_interval(mut self, events: u64) -> Opts {
        self.options = self.options.rebuild_flush_interval(events);
        self
    }

    pub fn max_concurrent_rebuilds(mut self, rebuilds: usize) -> Opts {
        self.options = self.options.max_concurrent_rebuilds(rebuilds);
        self
    }

    pub fn auto_rebuild(mut self, mode: opossum_projections::AutoRebuild) -> Opts {
        self.options = self.options.auto_rebuild(mode);
        self
    }
}

/// Options for tests: writes not synced (tests do not measure power loss), small batches so
/// that several batches run; the projections folder is `root/projections`.
pub fn options(root: &Path) -> Opts {
    Opts::new(
        root.join("projections"),
        ProjectionOptions::new()
            .durability(Durability::Eventual)
            .batch_size(7)
            .rebuild_batch_size(100)
            .rebuild_flush_interval(100),
    )
}

pub fn manager(store: &Arc<dyn EventStore>, options: Opts) -> ProjectionManager {
    options
        .builder(Arc::clone(store))
        .register(Students)
        .register(CourseDetails)
        .open()
        .unwrap()
}

pub async fn append(store: &Arc<dyn EventStore>, events: Vec<NewEvent>) -> Position {
    store.append(events, None).await.unwrap()
}

/// The names of the files in a projection's folder, sorted.
pub fn projection_files(root: &Path, projection: &str) -> Vec<String> {
    let dir = root.join("projections").join(projection);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The live generation file of a projection.
pub fn live_file(root: &Path, projection: &str) -> PathBuf {
    let generation = live_generation(root, projection).unwrap();
    root.join("projections")
        .join(projection)
        .join(format!("gen-{generation:06}.jsonl"))
}

/// The lines of a projection's live generation file.
pub fn live_lines(root: &Path, projection: &str) -> Vec<String> {
    std::fs::read_to_string(live_file(root, projection))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The live generation number of a projection, from `current.json`.
pub fn live_generation(root: &Path, projection: &str) -> Option<u64> {
    let file = root
        .join("projections")
        .join(projection)
        .join("current.json");
    let bytes = std::fs::read(file).ok()?;
    let current: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    current["generation"].as_u64()
}

/// This test binary run again as a child process: only the test `entry` runs, with `role_var`
/// naming its role and `root_var` the folder it works in; its stdout is piped to the parent.
pub fn child_command(
    entry: &str,
    (role_var, role): (&str, &str),
    (root_var, root): (&str, &Path),
) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(role_var, role)
        .env(root_var, root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    command
}
