//! The books' read models: the catalogue, each student's purchases (with titles from related
//! events), and each course's buyers (with names from related events).

use opossum::{BoxError, DomainEvent, Projection, Query, SequencedEvent, Tag, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CourseBookDefined, CourseBookPriceChanged, CourseBookPurchased};
use crate::money::Money;
use crate::store::{query, state_tags};
use crate::students::StudentRegistered;
use crate::tags::{BOOK_ID, COURSE_ID, STUDENT_ID};

/// The name of the catalogue projection.
pub const COURSE_BOOK_CATALOG: &str = "CourseBookCatalog";
/// The name of the purchases-per-student projection.
pub const STUDENT_BOOK_PURCHASES: &str = "StudentBookPurchases";
/// The name of the buyers-per-course projection.
pub const COURSE_BOOK_BUYERS: &str = "CourseBookBuyers";

/// A book in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    /// The book.
    pub book_id: Uuid,
    /// Its course.
    pub course_id: Uuid,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// ISBN.
    pub isbn: String,
    /// The current price.
    pub price: Money,
    /// The price before the last change, if it changed.
    pub previous_price: Option<Money>,
    /// When the price last changed, if it did.
    pub price_changed_at: Option<Timestamp>,
}

/// The catalogue: one instance per book, tagged `courseId`.
#[derive(Debug)]
pub struct BookCatalogProjection;

impl Projection for BookCatalogProjection {
    type State = Book;

    fn name(&self) -> &str {
        COURSE_BOOK_CATALOG
    }

    fn event_types(&self) -> Vec<&str> {
        vec![
            CourseBookDefined::EVENT_TYPE,
            CourseBookPriceChanged::EVENT_TYPE,
        ]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value(BOOK_ID).map(str::to_owned)
    }

    fn apply(
        &self,
        state: Option<Book>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<Book>, BoxError> {
        if event.is::<CourseBookDefined>() {
            let d = event.decode::<CourseBookDefined>()?;
            return Ok(Some(Book {
                book_id: d.book_id,
                course_id: d.course_id,
                title: d.title,
                author: d.author,
                isbn: d.isbn,
                price: d.price,
                previous_price: None,
                price_changed_at: None,
            }));
        }
        let Some(mut book) = state else {
            return Ok(None);
        };
        let changed = event.decode::<CourseBookPriceChanged>()?;
        book.previous_price = Some(book.price);
        book.price = changed.new_price;
        book.price_changed_at = Some(event.event.metadata().timestamp);
        Ok(Some(book))
    }

    fn tags(&self, book: &Book) -> Vec<Tag> {
        state_tags(&[(COURSE_ID, &book.course_id)])
    }
}

/// One book a student bought.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchasedBook {
    /// The purchase.
    pub purchase_id: Uuid,
    /// The cart order, if it was part of one.
    pub order_id: Option<Uuid>,
    /// The book.
    pub book_id: Uuid,
    /// Its title.
    pub title: String,
    /// What was paid.
    pub price_paid: Money,
    /// When.
    pub purchased_at: Timestamp,
}

/// Everything a student bought.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentPurchases {
    /// The student.
    pub student_id: Uuid,
    /// The purchases, oldest first.
    pub purchases: Vec<PurchasedBook>,
    /// The sum paid.
    pub total_spent: Money,
}

fn book_definition(event: &SequencedEvent) -> Option<Query> {
    let book = event.event.tag_value(BOOK_ID)?;
    query(&[CourseBookDefined::EVENT_TYPE], &[(BOOK_ID, &book)]).ok()
}

/// Purchases per student; book titles come from the books' definitions, read as related events.
#[derive(Debug)]
pub struct StudentBookPurchasesProjection;

impl Projection for StudentBookPurchasesProjection {
    type State = StudentPurchases;

    fn name(&self) -> &str {
        STUDENT_BOOK_PURCHASES
    }

    fn event_types(&self) -> Vec<&str> {
        vec![CourseBookPurchased::EVENT_TYPE]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value(STUDENT_ID).map(str::to_owned)
    }

    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        book_definition(event)
    }

    fn apply(
        &self,
        state: Option<StudentPurchases>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<StudentPurchases>, BoxError> {
        let bought = event.decode::<CourseBookPurchased>()?;
        let title = match related.iter().find(|e| e.is::<CourseBookDefined>()) {
            Some(defined) => defined.decode::<CourseBookDefined>()?.title,
            None => String::new(),
        };
        let mut student = state.unwrap_or_else(|| StudentPurchases {
            student_id: bought.student_id,
            ..StudentPurchases::default()
        });
        student.total_spent = student.total_spent.plus(bought.price_paid);
        student.purchases.push(PurchasedBook {
            purchase_id: bought.purchase_id,
            order_id: bought.order_id,
            book_id: bought.book_id,
            title,
            price_paid: bought.price_paid,
            purchased_at: event.event.metadata().timestamp,
        });
        Ok(Some(student))
    }
}

/// A student who bought books of a course.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// The student.
    pub student_id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// True when the student was forgotten: the names are erased (empty).
    #[serde(default)]
    pub personal_data_erased: bool,
    /// How many of the course's books they bought.
    pub books_bought: u32,
}

/// The buyers of a course's books.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseBuyers {
    /// The course.
    pub course_id: Uuid,
    /// The buyers, by first purchase.
    pub buyers: Vec<Buyer>,
}

/// Buyers per course; names come from the students' registrations, read as related events.
#[derive(Debug)]
pub struct CourseBookBuyersProjection;

impl Projection for CourseBookBuyersProjection {
    type State = CourseBuyers;

    fn name(&self) -> &str {
        COURSE_BOOK_BUYERS
    }

    fn event_types(&self) -> Vec<&str> {
        vec![CourseBookPurchased::EVENT_TYPE]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value(COURSE_ID).map(str::to_owned)
    }

    fn related_events(&self, event: &SequencedEvent) -> Option<Query> {
        let student = event.event.tag_value(STUDENT_ID)?;
        query(&[StudentRegistered::EVENT_TYPE], &[(STUDENT_ID, &student)]).ok()
    }

    fn apply(
        &self,
        state: Option<CourseBuyers>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<CourseBuyers>, BoxError> {
        let bought = event.decode::<CourseBookPurchased>()?;
        let mut course = state.unwrap_or_else(|| CourseBuyers {
            course_id: bought.course_id,
            buyers: Vec::new(),
        });
        if let Some(buyer) = course
            .buyers
            .iter_mut()
            .find(|b| b.student_id == bought.student_id)
        {
            buyer.books_bought += 1;
            return Ok(Some(course));
        }
        let registration = related.iter().find(|e| e.is::<StudentRegistered>());
        // A forgotten student's registration reads with the names erased (empty): forgetting a
        // student rebuilds this projection, so no copy of them stays here.
        let personal_data_erased = registration.is_some_and(SequencedEvent::is_erased);
        let (first_name, last_name) = registration
            .map(SequencedEvent::decode::<StudentRegistered>)
            .transpose()?
            .map(|r| (r.first_name, r.last_name))
            .unwrap_or_default();
        course.buyers.push(Buyer {
            student_id: bought.student_id,
            first_name,
            last_name,
            personal_data_erased,
            books_bought: 1,
        });
        Ok(Some(course))
    }
}
