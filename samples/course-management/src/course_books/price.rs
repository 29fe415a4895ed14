//! A book's price as a decision projection, with the grace period for old prices.

use std::sync::Arc;
use std::time::Duration;

use opossum::{Clock, DecisionProjection, DomainEvent, EventStoreError};
use uuid::Uuid;

use super::{CourseBookDefined, CourseBookPriceChanged};
use crate::money::Money;
use crate::store::query;
use crate::tags::BOOK_ID;

/// How long a replaced price is still honoured.
pub const GRACE_PERIOD: Duration = Duration::from_secs(30 * 60);

/// What a purchase decision needs to know about a book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookPrice {
    /// The book's course; `None` while the book is not defined.
    pub course_id: Option<Uuid>,
    /// The title.
    pub title: String,
    /// The current price; `None` while the book is not defined.
    pub current: Option<Money>,
    /// Replaced prices still inside their grace period.
    pub still_honoured: Vec<Money>,
}

impl BookPrice {
    /// True when the book was defined.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.current.is_some()
    }

    /// True when a student shown `price` may buy at it: the current price, or a replaced one
    /// within its grace period.
    #[must_use]
    pub fn accepts(&self, price: Money) -> bool {
        self.current == Some(price) || self.still_honoured.contains(&price)
    }
}

/// The price of `book` as of `clock`'s now: a replaced price stays honoured while the change
/// that replaced it is younger than [`GRACE_PERIOD`].
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn book_price(
    book: Uuid,
    clock: Arc<dyn Clock>,
) -> Result<DecisionProjection<BookPrice>, EventStoreError> {
    let events = query(
        &[
            CourseBookDefined::EVENT_TYPE,
            CourseBookPriceChanged::EVENT_TYPE,
        ],
        &[(BOOK_ID, &book)],
    )?;
    Ok(DecisionProjection::try_with_clock(
        BookPrice::default(),
        events,
        clock,
        |mut price: BookPrice, event, clock| {
            if event.is::<CourseBookDefined>() {
                let defined = event.decode::<CourseBookDefined>()?;
                return Ok(BookPrice {
                    course_id: Some(defined.course_id),
                    title: defined.title,
                    current: Some(defined.price),
                    still_honoured: Vec::new(),
                });
            }
            let changed = event.decode::<CourseBookPriceChanged>()?;
            let changed_at = event.event.metadata().timestamp;
            let in_grace = changed_at
                .checked_add(GRACE_PERIOD)
                .is_ok_and(|until| clock.now() < until);
            if let Some(old) = price.current.replace(changed.new_price)
                && in_grace
                && old != changed.new_price
            {
                price.still_honoured.push(old);
            }
            // A price that was replaced longer ago than the grace period is never honoured;
            // and since changes come in time order, neither is anything replaced before it.
            if !in_grace {
                price.still_honoured.clear();
            }
            Ok(price)
        },
    ))
}
