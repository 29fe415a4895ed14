//! Course books: the "dynamic product price" example. A book has a price that can change;
//! after a change the old price is still honoured for a 30-minute grace period (a decision
//! projection that reads the injected clock), and a cart of N books is decided in one read
//! with one condition over every book (the N-ary decision model).

mod commands;
mod events;
mod price;
mod projections;
mod queries;
mod routes;

pub use commands::{
    BookCommands, ChangeBookPrice, DefineCourseBook, MAX_ORDER_ITEMS, OrderBooks, OrderItem,
    OrderReceipt, Purchase, PurchaseBook,
};
pub use events::{CourseBookDefined, CourseBookPriceChanged, CourseBookPurchased};
pub use price::{BookPrice, GRACE_PERIOD, book_price};
pub use projections::{
    Book, BookCatalogProjection, Buyer, COURSE_BOOK_BUYERS, COURSE_BOOK_CATALOG,
    CourseBookBuyersProjection, CourseBuyers, PurchasedBook, STUDENT_BOOK_PURCHASES,
    StudentBookPurchasesProjection, StudentPurchases,
};
pub use queries::{BookQueries, GetBook, GetCourseBuyers, GetStudentPurchases, ListBooks};
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the books' projections and handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    let commands = |app: &opossum::AppContext| Writer::from_context(app).map(BookCommands);
    builder
        .projection(BookCatalogProjection)
        .projection(StudentBookPurchasesProjection)
        .projection(CourseBookBuyersProjection)
        .handler_with::<DefineCourseBook, _, _>(commands)
        .handler_with::<ChangeBookPrice, _, _>(commands)
        .handler_with::<PurchaseBook, _, _>(commands)
        .handler_with::<OrderBooks, _, _>(commands)
        .handler_with::<ListBooks, _, _>(BookQueries::from_context)
        .handler_with::<GetBook, _, _>(BookQueries::from_context)
        .handler_with::<GetStudentPurchases, _, _>(BookQueries::from_context)
        .handler_with::<GetCourseBuyers, _, _>(BookQueries::from_context)
}
