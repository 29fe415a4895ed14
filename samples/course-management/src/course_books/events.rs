//! The books' events.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// A book was added to a course's reading list. Tagged `bookId` and `courseId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseBookDefined {
    /// The book.
    pub book_id: Uuid,
    /// The course it belongs to.
    pub course_id: Uuid,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// ISBN, as given.
    pub isbn: String,
    /// The first price.
    pub price: Money,
}

impl DomainEvent for CourseBookDefined {
    const EVENT_TYPE: &'static str = "CourseBookDefined";
}

/// A book's price changed. Tagged `bookId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseBookPriceChanged {
    /// The book.
    pub book_id: Uuid,
    /// The new price.
    pub new_price: Money,
}

impl DomainEvent for CourseBookPriceChanged {
    const EVENT_TYPE: &'static str = "CourseBookPriceChanged";
}

/// A student bought a book, alone or as part of a cart order. Tagged `bookId`, `courseId`,
/// `studentId` and, for an order, `orderId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseBookPurchased {
    /// This purchase.
    pub purchase_id: Uuid,
    /// The cart order it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The book.
    pub book_id: Uuid,
    /// The book's course.
    pub course_id: Uuid,
    /// The buyer.
    pub student_id: Uuid,
    /// What was paid: the price the student was shown.
    pub price_paid: Money,
}

impl DomainEvent for CourseBookPurchased {
    const EVENT_TYPE: &'static str = "CourseBookPurchased";
}
