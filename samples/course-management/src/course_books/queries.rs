//! Reading the books' read models.

use opossum::{AppContext, AppStore, Handler, Message, Page, ReadModel, build_decision_model};
use std::sync::Arc;
use uuid::Uuid;

use super::{
    Book, BookCatalogProjection, CourseBookBuyersProjection, CourseBuyers,
    StudentBookPurchasesProjection, StudentPurchases,
};
use crate::courses::course_exists;
use crate::error::{AppError, AppResult};
use crate::paging::Listing;
use crate::store::state_tags;
use crate::students::registered;
use crate::tags::COURSE_ID;

/// One page of the catalogue, optionally of one course, ordered by book id (the projection's
/// key, which the page's cursor follows). The course is a tag of the projection, so a course's
/// page is read from the tag index.
#[derive(Clone, Debug)]
pub struct ListBooks {
    /// Only this course's books.
    pub course_id: Option<Uuid>,
    /// Which page.
    pub page: Page,
}

impl Message for ListBooks {
    type Output = AppResult<Listing<Book>>;
}

/// One book.
#[derive(Clone, Copy, Debug)]
pub struct GetBook {
    /// The book.
    pub book_id: Uuid,
}

impl Message for GetBook {
    type Output = AppResult<Book>;
}

/// What a student bought.
#[derive(Clone, Copy, Debug)]
pub struct GetStudentPurchases {
    /// The student.
    pub student_id: Uuid,
}

impl Message for GetStudentPurchases {
    type Output = AppResult<StudentPurchases>;
}

/// Who bought a course's books.
#[derive(Clone, Copy, Debug)]
pub struct GetCourseBuyers {
    /// The course.
    pub course_id: Uuid,
}

impl Message for GetCourseBuyers {
    type Output = AppResult<CourseBuyers>;
}

/// Handles the books' queries.
#[derive(Clone)]
pub struct BookQueries {
    catalog: ReadModel<Book>,
    purchases: ReadModel<StudentPurchases>,
    buyers: ReadModel<CourseBuyers>,
    /// To tell "no purchases yet" from "no such student or course".
    store: Arc<AppStore>,
}

impl BookQueries {
    /// The read models of the app being built.
    ///
    /// # Errors
    /// When a projection is not registered.
    pub fn from_context(app: &AppContext) -> Result<BookQueries, opossum::Error> {
        Ok(BookQueries {
            catalog: app.read_model::<BookCatalogProjection>()?,
            purchases: app.read_model::<StudentBookPurchasesProjection>()?,
            buyers: app.read_model::<CourseBookBuyersProjection>()?,
            store: app.store(),
        })
    }
}

impl Handler<ListBooks> for BookQueries {
    async fn handle(&self, query: ListBooks) -> AppResult<Listing<Book>> {
        let tags = query.course_id.map(|c| state_tags(&[(COURSE_ID, &c)]));
        let page = query.page;
        let books = self
            .catalog
            .read(move |store| match tags {
                Some(tags) => store.query_by_tags(&tags, &page),
                None => store.list(&page),
            })
            .await?;
        Ok(books.into())
    }
}

impl Handler<GetBook> for BookQueries {
    async fn handle(&self, query: GetBook) -> AppResult<Book> {
        let key = query.book_id.to_string();
        self.catalog
            .read(move |store| store.get(&key))
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("Course book {} does not exist.", query.book_id))
            })
    }
}

impl Handler<GetStudentPurchases> for BookQueries {
    async fn handle(&self, query: GetStudentPurchases) -> AppResult<StudentPurchases> {
        let key = query.student_id.to_string();
        if let Some(found) = self.purchases.read(move |store| store.get(&key)).await? {
            return Ok(found);
        }
        let exists =
            build_decision_model(self.store.as_ref(), registered(query.student_id)?).await?;
        if exists.state {
            Ok(StudentPurchases {
                student_id: query.student_id,
                ..StudentPurchases::default()
            })
        } else {
            Err(AppError::not_found(format!(
                "Student {} does not exist.",
                query.student_id
            )))
        }
    }
}

impl Handler<GetCourseBuyers> for BookQueries {
    async fn handle(&self, query: GetCourseBuyers) -> AppResult<CourseBuyers> {
        let key = query.course_id.to_string();
        if let Some(found) = self.buyers.read(move |store| store.get(&key)).await? {
            return Ok(found);
        }
        let exists =
            build_decision_model(self.store.as_ref(), course_exists(query.course_id)?).await?;
        if exists.state {
            Ok(CourseBuyers {
                course_id: query.course_id,
                buyers: Vec::new(),
            })
        } else {
            Err(AppError::not_found(format!(
                "Course {} does not exist.",
                query.course_id
            )))
        }
    }
}
