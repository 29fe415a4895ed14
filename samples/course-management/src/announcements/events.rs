//! The announcements' events, tagged `courseId`, `announcementId` and `idempotency`.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An announcement was posted to a course.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementPosted {
    /// The announcement.
    pub announcement_id: Uuid,
    /// The course.
    pub course_id: Uuid,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// The client's idempotency token.
    pub idempotency_token: Uuid,
}

impl DomainEvent for AnnouncementPosted {
    const EVENT_TYPE: &'static str = "AnnouncementPosted";
}

/// An announcement was retracted; its idempotency token may be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementRetracted {
    /// The announcement.
    pub announcement_id: Uuid,
    /// The course.
    pub course_id: Uuid,
    /// The token it was posted with.
    pub idempotency_token: Uuid,
}

impl DomainEvent for AnnouncementRetracted {
    const EVENT_TYPE: &'static str = "AnnouncementRetracted";
}
