//! `/course-books`, `/students/{studentId}/course-books`, `/courses/{courseId}/book-buyers`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Book, ChangeBookPrice, CourseBuyers, DefineCourseBook, GetBook, GetCourseBuyers,
    GetStudentPurchases, ListBooks, OrderBooks, OrderItem, PurchaseBook, StudentPurchases,
};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPage, ApiPath, ApiQuery, AppState, created};
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
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/course-books", get(list).post(define))
        .route("/course-books/orders", post(order))
        .route("/course-books/{book_id}", get(one))
        .route("/course-books/{book_id}/price", patch(change_price))
        .route("/course-books/{book_id}/purchases", post(purchase))
        .route(
            "/students/{student_id}/course-books",
            get(student_purchases),
        )
        .route("/courses/{course_id}/book-buyers", get(course_buyers))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefineRequest {
    course_id: Uuid,
    title: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    isbn: String,
    price: Money,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Defined {
    book_id: Uuid,
}

/// `POST /course-books`: a title of 1 to 200 characters, an author and an ISBN of at most 200,
/// each on one line (400 invalid-request naming the field otherwise).
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFilter {
    course_id: Option<Uuid>,
}

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

async fn one(
    State(state): State<AppState>,
    ApiPath(book_id): ApiPath<Uuid>,
) -> AppResult<Json<Book>> {
    Ok(Json(state.send(GetBook { book_id }).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PriceRequest {
    new_price: Money,
}

/// `PATCH /course-books/{id}/price`: the current price again answers 200 and changes nothing
/// (idempotent).
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseRequest {
    student_id: Uuid,
    displayed_price: Money,
}

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderItemRequest {
    book_id: Uuid,
    displayed_price: Money,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderRequest {
    student_id: Uuid,
    items: Vec<OrderItemRequest>,
}

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

async fn student_purchases(
    State(state): State<AppState>,
    ApiPath(student_id): ApiPath<Uuid>,
) -> AppResult<Json<StudentPurchases>> {
    Ok(Json(state.send(GetStudentPurchases { student_id }).await?))
}

async fn course_buyers(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<Uuid>,
) -> AppResult<Json<CourseBuyers>> {
    Ok(Json(state.send(GetCourseBuyers { course_id }).await?))
}
