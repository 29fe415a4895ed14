//! [`CourseAggregate`]: plain Rust, no store — state, rules, and the events they record.

use opossum::{Position, SequencedEvent};
use uuid::Uuid;

use crate::courses::{CourseCreated, CourseStudentLimitModified, valid_limit, valid_limit_of};
use crate::enrollment::StudentEnrolledToCourse;
use crate::students::students;

/// A rule of the aggregate was broken; nothing was recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleViolation(pub String);

/// The events a course aggregate records and replays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CourseEvent {
    /// The course was created.
    Created(CourseCreated),
    /// Its limit changed.
    LimitModified(CourseStudentLimitModified),
    /// A student was enrolled.
    Enrolled(StudentEnrolledToCourse),
}

impl CourseEvent {
    /// The course event stored as `event`, or `None` for another type.
    ///
    /// # Errors
    /// When the payload does not decode.
    pub fn from_stored(
        event: &SequencedEvent,
    ) -> Result<Option<CourseEvent>, opossum::EventStoreError> {
        Ok(if event.is::<CourseCreated>() {
            Some(CourseEvent::Created(event.decode()?))
        } else if event.is::<CourseStudentLimitModified>() {
            Some(CourseEvent::LimitModified(event.decode()?))
        } else if event.is::<StudentEnrolledToCourse>() {
            Some(CourseEvent::Enrolled(event.decode()?))
        } else {
            None
        })
    }
}

/// A course, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CourseAggregate {
    course_id: Uuid,
    name: String,
    description: String,
    capacity: u32,
    enrolled: Vec<Uuid>,
    /// The position of the last event loaded: the store-wide position, not a per-course count.
    version: Option<Position>,
    recorded: Vec<CourseEvent>,
}

impl CourseAggregate {
    /// A new course, with its creation recorded.
    ///
    /// # Errors
    /// A [`RuleViolation`] for an empty name or a capacity out of range.
    pub fn create(
        course_id: Uuid,
        name: &str,
        description: &str,
        capacity: u32,
    ) -> Result<CourseAggregate, RuleViolation> {
        if name.trim().is_empty() {
            return Err(RuleViolation("name must not be empty.".to_owned()));
        }
        let capacity = valid_limit(capacity).map_err(|e| RuleViolation(e.to_string()))?;
        let mut course = CourseAggregate::default();
        course.record(CourseEvent::Created(CourseCreated {
            course_id,
            name: name.trim().to_owned(),
            description: description.trim().to_owned(),
            max_student_count: capacity,
        }));
        Ok(course)
    }

    /// Replays `events` (oldest first); `None` when there are none.
    ///
    /// # Errors
    /// When a payload does not decode.
    pub fn reconstitute(
        events: &[SequencedEvent],
    ) -> Result<Option<CourseAggregate>, opossum::EventStoreError> {
        let mut course = CourseAggregate::default();
        for stored in events {
            if let Some(event) = CourseEvent::from_stored(stored)? {
                course.apply(&event);
            }
            course.version = Some(stored.position);
        }
        Ok(course.version.is_some().then_some(course))
    }

    /// Changes the capacity. The current capacity again records nothing and succeeds
    /// (idempotent, like the decision model's student limit).
    ///
    /// # Errors
    /// A [`RuleViolation`] when it is out of range or below the students enrolled.
    pub fn change_capacity(&mut self, capacity: u32) -> Result<(), RuleViolation> {
        let capacity =
            valid_limit_of("newCapacity", capacity).map_err(|e| RuleViolation(e.to_string()))?;
        if capacity == self.capacity {
            return Ok(());
        }
        if (capacity as usize) < self.enrolled.len() {
            return Err(RuleViolation(format!(
                "The capacity cannot drop below the {} enrolled.",
                students(self.enrolled.len() as u32)
            )));
        }
        self.record(CourseEvent::LimitModified(CourseStudentLimitModified {
            course_id: self.course_id,
            new_max_student_count: capacity,
        }));
        Ok(())
    }

    /// Enrols a student.
    ///
    /// # Errors
    /// A [`RuleViolation`] when the student is already enrolled or the course is full.
    pub fn subscribe_student(&mut self, student_id: Uuid) -> Result<(), RuleViolation> {
        if self.enrolled.contains(&student_id) {
            return Err(RuleViolation(
                "The student is already enrolled in this course.".to_owned(),
            ));
        }
        if self.enrolled.len() >= self.capacity as usize {
            return Err(RuleViolation(
                "The course is already fully booked.".to_owned(),
            ));
        }
        self.record(CourseEvent::Enrolled(StudentEnrolledToCourse {
            course_id: self.course_id,
            student_id,
        }));
        Ok(())
    }

    /// Takes the events recorded since the last save.
    pub fn take_recorded(&mut self) -> Vec<CourseEvent> {
        std::mem::take(&mut self.recorded)
    }

    /// Records that the events taken with [`take_recorded`](Self::take_recorded) were stored,
    /// the last at `position`: the aggregate's version is now that position.
    pub fn saved_at(&mut self, position: Position) {
        self.version = Some(position);
    }

    /// The course's id.
    #[must_use]
    pub fn course_id(&self) -> Uuid {
        self.course_id
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Its capacity.
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The students enrolled, in order.
    #[must_use]
    pub fn enrolled(&self) -> &[Uuid] {
        &self.enrolled
    }

    /// The position of the course's last event, loaded or saved (`None` for a new course).
    #[must_use]
    pub fn version(&self) -> Option<Position> {
        self.version
    }

    fn record(&mut self, event: CourseEvent) {
        self.apply(&event);
        self.recorded.push(event);
    }

    fn apply(&mut self, event: &CourseEvent) {
        match event {
            CourseEvent::Created(c) => {
                self.course_id = c.course_id;
                self.name.clone_from(&c.name);
                self.description.clone_from(&c.description);
                self.capacity = c.max_student_count;
            }
            CourseEvent::LimitModified(m) => self.capacity = m.new_max_student_count,
            CourseEvent::Enrolled(e) => self.enrolled.push(e.student_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_hold_without_a_store() {
        let id = Uuid::new_v4();
        let mut course = CourseAggregate::create(id, "Rust", "", 1).unwrap_or_default();
        assert_eq!(course.take_recorded().len(), 1);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(course.subscribe_student(ada).is_ok());
        assert!(course.subscribe_student(ada).is_err());
        assert!(course.subscribe_student(bob).is_err(), "full");
        assert!(course.change_capacity(1).is_ok(), "same capacity: a no-op");
        assert_eq!(course.take_recorded().len(), 1, "the enrolment; no change");
        assert!(course.change_capacity(2).is_ok());
        assert!(course.subscribe_student(bob).is_ok());
        assert!(course.change_capacity(1).is_err(), "below enrolment");
        assert_eq!(course.take_recorded().len(), 2);
        assert_eq!(course.enrolled(), [ada, bob]);
    }
}
