//! `/invoices`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::CreateInvoice;
use super::projection::{GetInvoice, Invoice, ListInvoices};
use crate::error::AppResult;
use crate::http::{
    ApiJson, ApiPage, ApiPath, ApiQuery, AppState, Conflict, Invalid, Missing, PageQuery,
    Unavailable, created,
};
use crate::money::Money;
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (CreateInvoice, ListInvoices, GetInvoice);

/// The invoices' routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one))
}

/// The operations' tag in the OpenAPI document.
const TAG: &str = "Invoices";

/// An invoice to create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateInvoice, example = json!({
    "customerId": "6f1c2a7e-0b8d-4c2e-9d4f-5e1b9f302a7c", "amount": 120.5
}))]
struct CreateRequest {
    /// A registered student.
    customer_id: Uuid,
    /// Above zero.
    amount: Money,
}

/// The new invoice's number.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = InvoiceCreated)]
struct Created {
    /// The next number after the last invoice's: no gaps, no repeats.
    invoice_number: u64,
}

/// Create an invoice
///
/// With the next gap-free number (the invoice-number example). The customer must be a
/// registered student (404 otherwise), checked in the numbering decision itself.
#[utoipa::path(post, path = "/invoices", tag = TAG, operation_id = "createInvoice",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created", body = Created,
            headers(("Location" = String, description = "the invoice's URL"))),
        Invalid, Missing, Conflict,
    ))]
async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> AppResult<Response> {
    let invoice_number = state
        .send(CreateInvoice {
            customer_id: request.customer_id,
            amount: request.amount,
        })
        .await?;
    Ok(created(
        format!("/invoices/{invoice_number}"),
        Created { invoice_number },
    ))
}

/// The filter of the invoices' list.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only this customer's invoices.
    customer_id: Option<Uuid>,
}

/// A page of the invoices
///
/// In number order, optionally only one customer's.
#[utoipa::path(get, path = "/invoices", tag = TAG, operation_id = "listInvoices",
    params(ListFilter, PageQuery),
    responses(
        (status = 200, description = "One page", body = Listing<Invoice>),
        Invalid, Unavailable,
    ))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ListFilter>,
    ApiPage(page): ApiPage,
) -> AppResult<Json<Listing<Invoice>>> {
    Ok(Json(
        state
            .send(ListInvoices {
                customer_id: filter.customer_id,
                page,
            })
            .await?,
    ))
}

/// One invoice
#[utoipa::path(get, path = "/invoices/{invoiceNumber}", tag = TAG, operation_id = "getInvoice",
    params(("invoiceNumber" = u64, Path, description = "The invoice's number")),
    responses(
        (status = 200, description = "The invoice", body = Invoice),
        Invalid, Missing, Unavailable,
    ))]
async fn one(
    State(state): State<AppState>,
    ApiPath(invoice_number): ApiPath<u64>,
) -> AppResult<Json<Invoice>> {
    Ok(Json(state.send(GetInvoice { invoice_number }).await?))
}
