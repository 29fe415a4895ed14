//! Reading the students' read models.

use opossum::{AppContext, Handler, Message, Page, ReadModel};
use uuid::Uuid;

use super::{
    StudentDetails, StudentDetailsProjection, StudentShortInfo, StudentShortInfoProjection, Tier,
};
use crate::error::{AppError, AppResult};
use crate::paging::Listing;
use crate::store::state_tags;

/// One page of the students, optionally only those of one tier and/or whether they reached
/// their limit, ordered by student id (the projection's key, which the page's cursor follows).
/// Both filters are tags of the projection, so a filtered page is read from the tag index.
#[derive(Clone, Debug)]
pub struct ListStudents {
    /// Only students of this tier.
    pub tier: Option<Tier>,
    /// Only students who reached (`true`) or did not reach (`false`) their course limit.
    pub is_maxed_out: Option<bool>,
    /// Which page.
    pub page: Page,
}

impl Message for ListStudents {
    type Output = AppResult<Listing<StudentShortInfo>>;
}

/// One student's details.
#[derive(Clone, Debug)]
pub struct GetStudent {
    /// The student.
    pub student_id: Uuid,
}

impl Message for GetStudent {
    type Output = AppResult<StudentDetails>;
}

/// Handles the students' queries from their read models.
#[derive(Clone)]
pub struct StudentQueries {
    short: ReadModel<StudentShortInfo>,
    details: ReadModel<StudentDetails>,
}

impl StudentQueries {
    /// The read models of the app being built.
    ///
    /// # Errors
    /// When a projection is not registered.
    pub fn from_context(app: &AppContext) -> Result<StudentQueries, opossum::Error> {
        Ok(StudentQueries {
            short: app.read_model::<StudentShortInfoProjection>()?,
            details: app.read_model::<StudentDetailsProjection>()?,
        })
    }
}

impl Handler<ListStudents> for StudentQueries {
    async fn handle(&self, query: ListStudents) -> AppResult<Listing<StudentShortInfo>> {
        let tier = query.tier.map(|t| t.to_string());
        let maxed = query.is_maxed_out.map(|m| m.to_string());
        let tags = {
            let mut wanted: Vec<(&str, &dyn std::fmt::Display)> = Vec::new();
            if let Some(tier) = &tier {
                wanted.push(("tier", tier));
            }
            if let Some(maxed) = &maxed {
                wanted.push(("isMaxedOut", maxed));
            }
            state_tags(&wanted)
        };
        let page = query.page;
        let students = self
            .short
            .read(move |store| {
                if tags.is_empty() {
                    store.list(&page)
                } else {
                    store.query_by_tags(&tags, &page)
                }
            })
            .await?;
        Ok(students.into())
    }
}

impl Handler<GetStudent> for StudentQueries {
    async fn handle(&self, query: GetStudent) -> AppResult<StudentDetails> {
        let key = query.student_id.to_string();
        self.details
            .read(move |store| store.get(&key))
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("Student {} does not exist.", query.student_id))
            })
    }
}
