//! Defining a book, changing its price, buying one, and ordering a cart of them.

use std::collections::HashSet;

use opossum::{Decision, Handler, Message, build_decision_model, decide_with};
use serde::Serialize;
use uuid::Uuid;

use super::{
    BookPrice, CourseBookDefined, CourseBookPriceChanged, CourseBookPurchased, book_price,
};
use crate::courses::course_exists;
use crate::error::{AppError, AppResult, MAX_NAME, optional_line, required_line};
use crate::money::Money;
use crate::store::{Writer, retry_policy};
use crate::students::registered;
use crate::tags::{BOOK_ID, COURSE_ID, ORDER_ID, STUDENT_ID};

/// The most books one order may hold.
pub const MAX_ORDER_ITEMS: usize = 50;

/// Add a book to an existing course's reading list.
#[derive(Clone, Debug)]
pub struct DefineCourseBook {
    /// The course.
    pub course_id: Uuid,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// ISBN.
    pub isbn: String,
    /// Price, above zero.
    pub price: Money,
}

impl Message for DefineCourseBook {
    type Output = AppResult<Uuid>;
}

/// Change a book's price. The old price stays honoured for the grace period. The current price
/// again is a no-op that succeeds (idempotent).
#[derive(Clone, Copy, Debug)]
pub struct ChangeBookPrice {
    /// The book.
    pub book_id: Uuid,
    /// The new price, above zero.
    pub new_price: Money,
}

impl Message for ChangeBookPrice {
    type Output = AppResult<()>;
}

/// Buy one book at the price the student was shown.
#[derive(Clone, Copy, Debug)]
pub struct PurchaseBook {
    /// The book.
    pub book_id: Uuid,
    /// The buyer.
    pub student_id: Uuid,
    /// The price the student saw.
    pub displayed_price: Money,
}

impl Message for PurchaseBook {
    type Output = AppResult<Purchase>;
}

/// One book of a cart order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderItem {
    /// The book.
    pub book_id: Uuid,
    /// The price the student saw.
    pub displayed_price: Money,
}

/// Buy several books at once: every price is checked in one decision, and either every book
/// is bought or none.
#[derive(Clone, Debug)]
pub struct OrderBooks {
    /// The buyer.
    pub student_id: Uuid,
    /// The books, each at most once.
    pub items: Vec<OrderItem>,
}

impl Message for OrderBooks {
    type Output = AppResult<OrderReceipt>;
}

/// A recorded purchase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    /// This purchase.
    pub purchase_id: Uuid,
    /// The book.
    pub book_id: Uuid,
    /// The book's course.
    pub course_id: Uuid,
    /// The buyer.
    pub student_id: Uuid,
    /// What was paid.
    pub price_paid: Money,
}

/// A recorded cart order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderReceipt {
    /// The order.
    pub order_id: Uuid,
    /// The buyer.
    pub student_id: Uuid,
    /// One purchase per book, in the order given.
    pub purchases: Vec<Purchase>,
    /// The sum paid.
    pub total: Money,
}

/// Handles the books' commands.
#[derive(Clone)]
pub struct BookCommands(pub Writer);

fn positive(field: &str, price: Money) -> AppResult<Money> {
    if price.is_positive() {
        Ok(price)
    } else {
        Err(AppError::invalid(format!(
            "{field} must be above zero, not {price}."
        )))
    }
}

fn no_book(book_id: Uuid) -> AppError {
    AppError::not_found(format!("Course book {book_id} does not exist."))
}

fn no_student(student_id: Uuid) -> AppError {
    AppError::not_found(format!("Student {student_id} does not exist."))
}

/// The book's course, or why the student may not buy it at `shown`.
fn check_price(book_id: Uuid, price: &BookPrice, shown: Money) -> AppResult<Uuid> {
    let (Some(course_id), Some(current)) = (price.course_id, price.current) else {
        return Err(no_book(book_id));
    };
    if price.accepts(shown) {
        Ok(course_id)
    } else {
        Err(AppError::rule(format!(
            "The price of \"{}\" is {current}, not {shown}; refresh and try again.",
            price.title
        )))
    }
}

impl BookCommands {
    fn purchase_event(
        &self,
        purchase: &Purchase,
        order_id: Option<Uuid>,
    ) -> AppResult<opossum::NewEvent> {
        let mut event = self
            .0
            .event(&CourseBookPurchased {
                purchase_id: purchase.purchase_id,
                order_id,
                book_id: purchase.book_id,
                course_id: purchase.course_id,
                student_id: purchase.student_id,
                price_paid: purchase.price_paid,
            })
            .tag(BOOK_ID, purchase.book_id.to_string())
            .tag(COURSE_ID, purchase.course_id.to_string())
            .tag(STUDENT_ID, purchase.student_id.to_string());
        if let Some(order_id) = order_id {
            event = event.tag(ORDER_ID, order_id.to_string());
        }
        Ok(event.build()?)
    }
}

impl Handler<DefineCourseBook> for BookCommands {
    async fn handle(&self, command: DefineCourseBook) -> AppResult<Uuid> {
        let title = required_line("title", &command.title, MAX_NAME)?;
        let author = optional_line("author", &command.author, MAX_NAME)?;
        let isbn = optional_line("isbn", &command.isbn, MAX_NAME)?;
        let price = positive("price", command.price)?;
        let writer = &self.0;
        let course = course_exists(command.course_id)?;
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            course,
            |course_exists| -> AppResult<Decision<Uuid>> {
                if !course_exists {
                    return Err(AppError::not_found(format!(
                        "Course {} does not exist.",
                        command.course_id
                    )));
                }
                let book_id = Uuid::new_v4();
                let event = writer
                    .event(&CourseBookDefined {
                        book_id,
                        course_id: command.course_id,
                        title: title.clone(),
                        author: author.clone(),
                        isbn: isbn.clone(),
                        price,
                    })
                    .tag(BOOK_ID, book_id.to_string())
                    .tag(COURSE_ID, command.course_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]).returning(book_id))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<ChangeBookPrice> for BookCommands {
    async fn handle(&self, command: ChangeBookPrice) -> AppResult<()> {
        let new_price = positive("newPrice", command.new_price)?;
        let writer = &self.0;
        // The fold reads the clock, so every attempt sees the grace periods as of its own read.
        let price = book_price(command.book_id, writer.clock.clone())?;
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            price,
            |price| -> AppResult<Decision> {
                if !price.exists() {
                    return Err(no_book(command.book_id));
                }
                if price.current == Some(new_price) {
                    return Ok(Decision::nothing());
                }
                let event = writer
                    .event(&CourseBookPriceChanged {
                        book_id: command.book_id,
                        new_price,
                    })
                    .tag(BOOK_ID, command.book_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]))
            },
        )
        .await?;
        Ok(())
    }
}

impl Handler<PurchaseBook> for BookCommands {
    async fn handle(&self, command: PurchaseBook) -> AppResult<Purchase> {
        let writer = &self.0;
        let facts = (
            book_price(command.book_id, writer.clock.clone())?,
            registered(command.student_id)?,
        );
        // A price change after the read fails the append, and the decision runs again against
        // the new price (and the grace period).
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            facts,
            |(price, student_exists)| -> AppResult<Decision<Purchase>> {
                if !price.exists() {
                    return Err(no_book(command.book_id));
                }
                if !student_exists {
                    return Err(no_student(command.student_id));
                }
                let course_id = check_price(command.book_id, &price, command.displayed_price)?;
                let purchase = Purchase {
                    purchase_id: Uuid::new_v4(),
                    book_id: command.book_id,
                    course_id,
                    student_id: command.student_id,
                    price_paid: command.displayed_price,
                };
                let event = self.purchase_event(&purchase, None)?;
                Ok(Decision::append(vec![event]).returning(purchase))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<OrderBooks> for BookCommands {
    async fn handle(&self, command: OrderBooks) -> AppResult<OrderReceipt> {
        if command.items.is_empty() || command.items.len() > MAX_ORDER_ITEMS {
            return Err(AppError::invalid(format!(
                "items must hold 1 to {MAX_ORDER_ITEMS} books, not {}.",
                command.items.len()
            )));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = command.items.iter().find(|i| !seen.insert(i.book_id)) {
            return Err(AppError::invalid(format!(
                "book {} is in the order twice; list each book once.",
                twice.book_id
            )));
        }
        let writer = &self.0;
        // Registrations are never undone, so the student's existence is checked once, outside
        // the decision: it cannot become false, and so needs no place in the condition.
        let student =
            build_decision_model(writer.store.as_ref(), registered(command.student_id)?).await?;
        if !student.state {
            return Err(no_student(command.student_id));
        }
        // One read for every book; prices[i] belongs to items[i].
        let prices = command
            .items
            .iter()
            .map(|item| book_price(item.book_id, writer.clock.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            prices,
            |prices| -> AppResult<Decision<OrderReceipt>> {
                let order_id = Uuid::new_v4();
                let mut purchases = Vec::with_capacity(command.items.len());
                for (item, price) in command.items.iter().zip(&prices) {
                    let course_id = check_price(item.book_id, price, item.displayed_price)?;
                    purchases.push(Purchase {
                        purchase_id: Uuid::new_v4(),
                        book_id: item.book_id,
                        course_id,
                        student_id: command.student_id,
                        price_paid: item.displayed_price,
                    });
                }
                // All or nothing: one atomic append, guarded over every book in the cart.
                let events = purchases
                    .iter()
                    .map(|p| self.purchase_event(p, Some(order_id)))
                    .collect::<AppResult<Vec<_>>>()?;
                let total = purchases
                    .iter()
                    .fold(Money::default(), |sum, p| sum.plus(p.price_paid));
                Ok(Decision::append(events).returning(OrderReceipt {
                    order_id,
                    student_id: command.student_id,
                    purchases,
                    total,
                }))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}
