//! The DCB conformance checks, one `async fn` per case.
//!
//! Each check takes a fresh, empty store, drives it through the [`EventStore`] trait only, and
//! panics with a message naming the broken rule. [`crate::dcb_conformance_tests!`] turns every
//! check into its own `#[test]`; call a check directly to run one case by hand.

mod append;
mod concurrency;
mod conditions;
mod data;
mod head;
mod read;
mod read_last;
mod read_stream;
mod subscribe;

pub use append::*;
pub use concurrency::*;
pub use conditions::*;
pub use data::*;
pub use head::*;
pub use read::*;
pub use read_last::*;
pub use read_stream::*;
pub use subscribe::*;

use opossum_core::{EventStore, NewEvent};

use crate::fixtures::numbered;

/// Appends the ten events of a small course-enrolment history in four batches and returns them
/// in position order (`result[i]` is at position `i + 1`):
///
/// | pos | type | tags |
/// |---|---|---|
/// | 1 | `CourseCreated` | course=c1 |
/// | 2 | `StudentRegistered` | student=s1 |
/// | 3 | `StudentEnrolled` | course=c1, student=s1 |
/// | 4 | `CourseCreated` | course=c2 |
/// | 5 | `StudentEnrolled` | course=c2, student=s1 |
/// | 6 | `StudentRegistered` | student=s2 |
/// | 7 | `StudentEnrolled` | course=c1, student=s2 |
/// | 8 | `CourseRenamed` | course=c1 |
/// | 9 | `StudentEnrolled` | course=c2, student=s2 |
/// | 10 | `CourseCreated` | course=c3 |
///
/// Each payload is `{"n":<position>}`.
///
/// # Panics
/// When the store fails to append or assigns other positions.
pub async fn seed_course_history<S: EventStore + ?Sized>(store: &S) -> Vec<NewEvent> {
    let history = vec![
        numbered("CourseCreated", &[("course", "c1")], 1),
        numbered("StudentRegistered", &[("student", "s1")], 2),
        numbered("StudentEnrolled", &[("course", "c1"), ("student", "s1")], 3),
        numbered("CourseCreated", &[("course", "c2")], 4),
        numbered("StudentEnrolled", &[("course", "c2"), ("student", "s1")], 5),
        numbered("StudentRegistered", &[("student", "s2")], 6),
        numbered("StudentEnrolled", &[("course", "c1"), ("student", "s2")], 7),
        numbered("CourseRenamed", &[("course", "c1")], 8),
        numbered("StudentEnrolled", &[("course", "c2"), ("student", "s2")], 9),
        numbered("CourseCreated", &[("course", "c3")], 10),
    ];
    let mut start = 0;
    for size in [3, 1, 4, 2] {
        let batch = history[start..start + size].to_vec();
        start += size;
        let last = store.append(batch, None).await.expect("seed append");
        assert_eq!(
            last.get(),
            start as u64,
            "seed batch ends at the wrong position"
        );
    }
    history
}
