//! The students' events.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Tier;

/// A student registered. Tagged `studentId` and `studentEmailHash` (the SHA-256 of the
/// lower-cased email; stores written before it carry `studentEmail`, the lower-cased email).
///
/// The names and the email are the student's personal data: a shredding store seals them
/// under the student's own key, and once the student is forgotten they read as erased — absent
/// from the payload, so they decode to empty strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentRegistered {
    /// The new student's id: the data subject.
    pub student_id: Uuid,
    /// First name (empty once erased).
    #[serde(default)]
    pub first_name: String,
    /// Last name (empty once erased).
    #[serde(default)]
    pub last_name: String,
    /// Email, as given (empty once erased).
    #[serde(default)]
    pub email: String,
}

impl DomainEvent for StudentRegistered {
    const EVENT_TYPE: &'static str = "StudentRegistered";
    const PERSONAL_FIELDS: &'static [&'static str] = &["firstName", "lastName", "email"];

    fn data_subject(&self) -> Option<String> {
        Some(self.student_id.to_string())
    }
}

/// A student changed subscription tier. Tagged `studentId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentSubscriptionUpdated {
    /// The student.
    pub student_id: Uuid,
    /// The new tier.
    pub enrollment_tier: Tier,
}

impl DomainEvent for StudentSubscriptionUpdated {
    const EVENT_TYPE: &'static str = "StudentSubscriptionUpdated";
}
