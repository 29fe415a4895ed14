//! The students' events.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Tier;

/// A student registered. Tagged `studentId` and `studentEmail` (lower-cased).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentRegistered {
    /// The new student's id.
    pub student_id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email, as given.
    pub email: String,
}

impl DomainEvent for StudentRegistered {
    const EVENT_TYPE: &'static str = "StudentRegistered";
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
