//! `/course-books`, `/students/{studentId}/course-books`, `/courses/{courseId}/book-buyers`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    Book, ChangeBookPrice, CourseBuyers, DefineCourseBook, GetBook, GetCourseBuyers,
    GetStudentPurchases, ListBooks, OrderBooks, OrderItem, OrderReceipt, Purchase, PurchaseBook,
    StudentPurchases,
};
use crate::error::AppResult;
use crate::http::{
    ApiJson, ApiPage, ApiPath, ApiQuery, AppState, Conflict, Invalid, Missing, PageQuery,
    Unavailable, created,
};
use crate::money::Money;
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (
    DefineCourseBook,
    ListBooks,
    GetBook,
    ChangeBookPrice,
    PurchaseBook,
    OrderBooks,
    GetStudentPurchases,
    GetCourseBuyers,
);

/// The books' routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, define))
        .routes(routes!(order))
        .routes(routes!(one))
        .routes(routes!(change_price))
        .routes(routes!(purchase))
        .routes(routes!(student_purchases))
        .routes(routes!(course_buyers))
}

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Course books";

/// The path parameter of a book.
const BOOK: &str = "The book's id";

/// A book to define for a course.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DefineBook, example = json!({
    "courseId": "6f1c2a7e-0b8d-4c2e-9d4f-5e1b9f302a7c", "title": "Understanding Event Sourcing",
    "author": "Alexey Zimarev", "isbn": "978-1-80107-060-0", "price": 39.99
}))]
struct DefineRequest {
    /// An existing course.
    course_id: Uuid,
    /// One line (no control characters), trimmed.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// One line (no control characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    author: String,
    /// One line (no control characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    isbn: String,
    /// Above zero.
    price: Money,
}

/// The defined book's id.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BookCreated)]
struct Defined {
    /// The book's id.
    book_id: Uuid,
}

/// Define a book for a course
#[utoipa::path(post, path = "/course-books", tag = TAG, operation_id = "defineBook",
    request_body = DefineRequest,
    responses(
        (status = 201, description = "Defined", body = Defined,
            headers(("Location" = String, description = "the book's URL"))),
        Invalid, Missing, Conflict,
    ))]
async fn define(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DefineRequest>,
) -> AppResult<Response> {
    let book_id = state
        .send(DefineCourseBook {
            course_id: request.course_id,
            title: request.title,
            author: request.author,
            isbn: request.isbn,
            price: request.price,
        })
        .await?;
    Ok(created(
        format!("/course-books/{book_id}"),
        Defined { book_id },
    ))
}

/// The filter of the book catalogue.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only this course's books.
    course_id: Option<Uuid>,
}

/// A page of the book catalogue
///
/// In id order, optionally only one course's books.
#[utoipa::path(get, path = "/course-books", tag = TAG, operation_id = "listBooks",
    params(ListFilter, PageQuery),
    responses(
        (status = 200, description = "One page", body = Listing<Book>),
        Invalid, Unavailable,
    ))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ListFilter>,
    ApiPage(page): ApiPage,
) -> AppResult<Json<Listing<Book>>> {
    Ok(Json(
        state
            .send(ListBooks {
                course_id: filter.course_id,
                page,
            })
            .await?,
    ))
}

/// One book
#[utoipa::path(get, path = "/course-books/{bookId}", tag = TAG, operation_id = "getBook",
    params(("bookId" = Uuid, Path, description = BOOK)),
    responses(
        (status = 200, description = "The book", body = Book),
        Invalid, Missing, Unavailable,
    ))]
async fn one(
    State(state): State<AppState>,
    ApiPath(book_id): ApiPath<Uuid>,
) -> AppResult<Json<Book>> {
    Ok(Json(state.send(GetBook { book_id }).await?))
}

/// A book's new price.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NewPrice, example = json!({"newPrice": 34.5}))]
struct PriceRequest {
    /// Above zero.
    new_price: Money,
}

/// Change a book's price
///
/// The old price is honoured for 30 minutes; the current price again answers 200 and changes
/// nothing.
#[utoipa::path(patch, path = "/course-books/{bookId}/price", tag = TAG,
    operation_id = "changeBookPrice",
    params(("bookId" = Uuid, Path, description = BOOK)),
    request_body = PriceRequest,
    responses(
        (status = 200, description = "The book with its new price", body = Book),
        Invalid, Missing, Conflict,
    ))]
async fn change_price(
    State(state): State<AppState>,
    ApiPath(book_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PriceRequest>,
) -> AppResult<Json<Book>> {
    state
        .send(ChangeBookPrice {
            book_id,
            new_price: request.new_price,
        })
        .await?;
    Ok(Json(state.send(GetBook { book_id }).await?))
}

/// A purchase at the price the student was shown.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PurchaseRequest, example = json!({
    "studentId": "6f1c2a7e-0b8d-4c2e-9d4f-5e1b9f302a7c", "displayedPrice": 39.99
}))]
struct PurchaseRequest {
    /// The buyer, a registered student.
    student_id: Uuid,
    /// The price shown: the current one, or one replaced less than 30 minutes ago.
    displayed_price: Money,
}

/// Buy a book
///
/// At the price shown: the current one, or one replaced less than 30 minutes ago (the
/// dynamic-product-price example).
#[utoipa::path(post, path = "/course-books/{bookId}/purchases", tag = TAG,
    operation_id = "purchaseBook",
    params(("bookId" = Uuid, Path, description = BOOK)),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "Bought", body = Purchase,
            headers(("Location" = String, description = "the student's purchases"))),
        Invalid, Missing, Conflict,
    ))]
async fn purchase(
    State(state): State<AppState>,
    ApiPath(book_id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PurchaseRequest>,
) -> AppResult<Response> {
    let purchase = state
        .send(PurchaseBook {
            book_id,
            student_id: request.student_id,
            displayed_price: request.displayed_price,
        })
        .await?;
    Ok(created(
        format!("/students/{}/course-books", purchase.student_id),
        purchase,
    ))
}

/// One book of a cart order.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderItemRequest {
    /// The book.
    book_id: Uuid,
    /// The price shown, as for a single purchase.
    displayed_price: Money,
}

/// A cart of books.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order, example = json!({
    "studentId": "6f1c2a7e-0b8d-4c2e-9d4f-5e1b9f302a7c",
    "items": [{"bookId": "2a7c5e1b-9f30-4b8d-8a3e-6f1c4c2e9d4f", "displayedPrice": 39.99}]
}))]
struct OrderRequest {
    /// The buyer, a registered student.
    student_id: Uuid,
    /// The books, each once.
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<OrderItemRequest>,
}

/// Buy a cart of books
///
/// In one decision: all or none (the dynamic-product-price example with one decision model
/// per book).
#[utoipa::path(post, path = "/course-books/orders", tag = TAG, operation_id = "orderBooks",
    request_body = OrderRequest,
    responses(
        (status = 201, description = "Bought", body = OrderReceipt,
            headers(("Location" = String, description = "the student's purchases"))),
        Invalid, Missing, Conflict,
    ))]
async fn order(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OrderRequest>,
) -> AppResult<Response> {
    let receipt = state
        .send(OrderBooks {
            student_id: request.student_id,
            items: request
                .items
                .into_iter()
                .map(|i| OrderItem {
                    book_id: i.book_id,
                    displayed_price: i.displayed_price,
                })
                .collect(),
        })
        .await?;
    Ok(created(
        format!("/students/{}/course-books", receipt.student_id),
        receipt,
    ))
}

/// The books a student bought
#[utoipa::path(get, path = "/students/{studentId}/course-books", tag = TAG,
    operation_id = "getStudentPurchases",
    params(("studentId" = Uuid, Path, description = "The student's id")),
    responses(
        (status = 200, description = "The purchases", body = StudentPurchases),
        Invalid, Missing, Unavailable,
    ))]
async fn student_purchases(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
) -> AppResult<Json<StudentPurchases>> {
    Ok(Json(state.send(GetStudentPurchases { student_id }).await?))
}

/// Who bought a course's books
#[utoipa::path(get, path = "/courses/{courseId}/book-buyers", tag = TAG,
    operation_id = "getCourseBuyers",
    params(("courseId" = Uuid, Path, description = "The course's id")),
    responses(
        (status = 200, description = "The buyers", body = CourseBuyers),
        Invalid, Missing, Unavailable,
    ))]
async fn course_buyers(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseBuyers>> {
    Ok(Json(state.send(GetCourseBuyers { course_id }).await?))
}
