//! Reading the students' read models.

use opossum::{AppContext, Handler, Message, ReadModel};
use uuid::Uuid;

use super::{
    StudentDetails, StudentDetailsProjection, StudentShortInfo, StudentShortInfoProjection, Tier,
};
use crate::error::{AppError, AppResult};
use crate::store::state_tags;

/// The students, optionally only those of one tier and/or whether they reached their limit.
#[derive(Clone, Debug, Default)]
pub struct ListStudents {
    /// Only students of this tier.
    pub tier: Option<Tier>,
    /// Only students who reached (`true`) or did not reach (`false`) their course limit.
    pub is_maxed_out: Option<bool>,
}

impl Message for ListStudents {
    type Output = AppResult<Vec<StudentShortInfo>>;
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
    async fn handle(&self, query: ListStudents) -> AppResult<Vec<StudentShortInfo>> {
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
        let mut students = self
            .short
            .read(move |store| {
                if tags.is_empty() {
                    store.get_all()
                } else {
                    store.query_by_tags(&tags)
                }
            })
            .await?;
        students.sort_by(|a, b| {
            (&a.last_name, &a.first_name, a.student_id).cmp(&(
                &b.last_name,
                &b.first_name,
                b.student_id,
            ))
        });
        Ok(students)
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
