//! Course announcements: the "prevent record duplication" example. The client sends an
//! idempotency token with each announcement; a retried request with the same token is refused,
//! and retracting the announcement frees the token again. Requests with different tokens never
//! contend: each decision's boundary is its own token (plus the course's existence).

mod commands;
mod events;
mod projection;
mod routes;

pub use commands::{AnnouncementCommands, PostAnnouncement, RetractAnnouncement, token_was_used};
pub use events::{AnnouncementPosted, AnnouncementRetracted};
pub use projection::{
    Announcement, AnnouncementQueries, COURSE_ANNOUNCEMENTS, CourseAnnouncementsProjection,
    ListAnnouncements,
};
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the announcements' projection and handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    let commands = |app: &opossum::AppContext| Writer::from_context(app).map(AnnouncementCommands);
    builder
        .projection(CourseAnnouncementsProjection)
        .handler_with::<PostAnnouncement, _, _>(commands)
        .handler_with::<RetractAnnouncement, _, _>(commands)
        .handler_with(AnnouncementQueries::from_context)
}
