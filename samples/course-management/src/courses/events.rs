//! The courses' events.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A course was created. Tagged `courseId`.
///
/// Version 2 stores the student limit as `capacity`; version 1 called it `maxStudentCount`.
/// Stored version-1 events keep their bytes and are read through the upcaster of
/// [`crate::app::upcasters`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseCreated {
    /// The new course's id.
    pub course_id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is about.
    pub description: String,
    /// How many students it takes (stored as `capacity`).
    #[serde(rename = "capacity")]
    pub max_student_count: u32,
}

impl DomainEvent for CourseCreated {
    const EVENT_TYPE: &'static str = "CourseCreated";
    const VERSION: u32 = 2;
}

/// The upcaster of `CourseCreated` from version 1 to 2: the key `maxStudentCount` becomes
/// `capacity`; everything else stays.
///
/// # Errors
/// A message when the payload is not an object or has no `maxStudentCount`.
pub fn course_created_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let object = payload
        .as_object_mut()
        .ok_or("a CourseCreated version 1 payload is not a JSON object")?;
    let limit = object
        .remove("maxStudentCount")
        .ok_or("a CourseCreated version 1 payload has no maxStudentCount")?;
    object.insert("capacity".to_owned(), limit);
    Ok(payload)
}

/// A course's student limit changed. Tagged `courseId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseStudentLimitModified {
    /// The course.
    pub course_id: Uuid,
    /// The new limit.
    pub new_max_student_count: u32,
}

impl DomainEvent for CourseStudentLimitModified {
    const EVENT_TYPE: &'static str = "CourseStudentLimitModified";
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn version_1_is_renamed_and_decodes_as_version_2() {
        let v1 = json!({"courseId": Uuid::nil(), "name": "Rust", "description": "", "maxStudentCount": 7});
        let v2 = course_created_v1_to_v2(v1).unwrap();
        assert_eq!(v2["capacity"], 7);
        assert!(v2.get("maxStudentCount").is_none());
        let created: CourseCreated = serde_json::from_value(v2).unwrap();
        assert_eq!(created.max_student_count, 7);
        assert!(course_created_v1_to_v2(json!({"name": "x"})).is_err());
        assert!(course_created_v1_to_v2(json!([1])).is_err());
    }
}
