//! Reading the courses' read models.

use opossum::{AppContext, Handler, Message, Page, ReadModel};
use uuid::Uuid;

use super::{CourseDetails, CourseDetailsProjection, CourseShortInfo, CourseShortInfoProjection};
use crate::error::{AppError, AppResult};
use crate::paging::Listing;
use crate::store::state_tags;

/// One page of the courses, optionally only the full (`true`) or the open (`false`) ones,
/// ordered by course id (the projection's key, which the page's cursor follows). "Is full" is a
/// tag of the projection, so a filtered page is read from the tag index.
#[derive(Clone, Debug)]
pub struct ListCourses {
    /// Filter on "is full".
    pub is_full: Option<bool>,
    /// Which page.
    pub page: Page,
}

impl Message for ListCourses {
    type Output = AppResult<Listing<CourseShortInfo>>;
}

/// One course's details.
#[derive(Clone, Debug)]
pub struct GetCourse {
    /// The course.
    pub course_id: Uuid,
}

impl Message for GetCourse {
    type Output = AppResult<CourseDetails>;
}

/// Handles the courses' queries from their read models.
#[derive(Clone)]
pub struct CourseQueries {
    short: ReadModel<CourseShortInfo>,
    details: ReadModel<CourseDetails>,
}

impl CourseQueries {
    /// The read models of the app being built.
    ///
    /// # Errors
    /// When a projection is not registered.
    pub fn from_context(app: &AppContext) -> Result<CourseQueries, opossum::Error> {
        Ok(CourseQueries {
            short: app.read_model::<CourseShortInfoProjection>()?,
            details: app.read_model::<CourseDetailsProjection>()?,
        })
    }
}

impl Handler<ListCourses> for CourseQueries {
    async fn handle(&self, query: ListCourses) -> AppResult<Listing<CourseShortInfo>> {
        let tags = match query.is_full {
            Some(full) => state_tags(&[("isFull", &full)]),
            None => Vec::new(),
        };
        let page = query.page;
        let courses = self
            .short
            .read(move |store| {
                if tags.is_empty() {
                    store.list(&page)
                } else {
                    store.query_by_tags(&tags, &page)
                }
            })
            .await?;
        Ok(courses.into())
    }
}

impl Handler<GetCourse> for CourseQueries {
    async fn handle(&self, query: GetCourse) -> AppResult<CourseDetails> {
        let key = query.course_id.to_string();
        self.details
            .read(move |store| store.get(&key))
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("Course {} does not exist.", query.course_id))
            })
    }
}
