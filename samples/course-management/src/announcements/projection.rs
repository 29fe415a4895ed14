//! The announcements of each course (retracted ones are removed).

use opossum::{
    AppContext, AppStore, BoxError, DomainEvent, Handler, Message, Page, Projection, ReadModel,
    SequencedEvent, Tag, Timestamp, build_decision_model,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use super::{AnnouncementPosted, AnnouncementRetracted};
use crate::courses::course_exists;
use crate::error::{AppError, AppResult};
use crate::paging::Listing;
use crate::store::state_tags;
use crate::tags::{ANNOUNCEMENT_ID, COURSE_ID};

/// The name of the announcements projection.
pub const COURSE_ANNOUNCEMENTS: &str = "CourseAnnouncements";

/// A live announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    /// The announcement.
    pub announcement_id: Uuid,
    /// Its course.
    pub course_id: Uuid,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// The store position of its event: the order announcements were posted in.
    pub position: u64,
}

/// One instance per live announcement, tagged `courseId`; a retraction deletes it.
#[derive(Debug)]
pub struct CourseAnnouncementsProjection;

impl Projection for CourseAnnouncementsProjection {
    type State = Announcement;

    fn name(&self) -> &str {
        COURSE_ANNOUNCEMENTS
    }

    fn event_types(&self) -> Vec<&str> {
        vec![
            AnnouncementPosted::EVENT_TYPE,
            AnnouncementRetracted::EVENT_TYPE,
        ]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value(ANNOUNCEMENT_ID).map(str::to_owned)
    }

    fn apply(
        &self,
        _state: Option<Announcement>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<Announcement>, BoxError> {
        if !event.is::<AnnouncementPosted>() {
            return Ok(None);
        }
        let posted = event.decode::<AnnouncementPosted>()?;
        Ok(Some(Announcement {
            announcement_id: posted.announcement_id,
            course_id: posted.course_id,
            title: posted.title,
            body: posted.body,
            posted_at: event.event.metadata().timestamp,
            position: event.position.get(),
        }))
    }

    fn tags(&self, announcement: &Announcement) -> Vec<Tag> {
        state_tags(&[(COURSE_ID, &announcement.course_id)])
    }
}

/// One page of a course's live announcements, ordered by announcement id (the projection's
/// key, which the page's cursor follows; the course is a tag of the projection, so the page is
/// read from the tag index). The key cannot follow the posting order (a retraction names the
/// announcement, not where it was posted), so each announcement carries its `position`:
/// sort by it for the order they were posted in.
#[derive(Clone, Debug)]
pub struct ListAnnouncements {
    /// The course.
    pub course_id: Uuid,
    /// Which page.
    pub page: Page,
}

impl Message for ListAnnouncements {
    type Output = AppResult<Listing<Announcement>>;
}

/// Handles [`ListAnnouncements`].
#[derive(Clone)]
pub struct AnnouncementQueries {
    announcements: ReadModel<Announcement>,
    store: Arc<AppStore>,
}

impl AnnouncementQueries {
    /// The read model of the app being built.
    ///
    /// # Errors
    /// When the projection is not registered.
    pub fn from_context(app: &AppContext) -> Result<AnnouncementQueries, opossum::Error> {
        Ok(AnnouncementQueries {
            announcements: app.read_model::<CourseAnnouncementsProjection>()?,
            store: app.store(),
        })
    }
}

impl Handler<ListAnnouncements> for AnnouncementQueries {
    async fn handle(&self, query: ListAnnouncements) -> AppResult<Listing<Announcement>> {
        let exists =
            build_decision_model(self.store.as_ref(), course_exists(query.course_id)?).await?;
        if !exists.state {
            return Err(AppError::not_found(format!(
                "Course {} does not exist.",
                query.course_id
            )));
        }
        let tags = state_tags(&[(COURSE_ID, &query.course_id)]);
        let page = query.page;
        let announcements = self
            .announcements
            .read(move |store| store.query_by_tags(&tags, &page))
            .await?;
        Ok(announcements.into())
    }
}
