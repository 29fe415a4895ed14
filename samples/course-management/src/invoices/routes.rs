//! `/invoices`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CreateInvoice;
use super::projection::{GetInvoice, Invoice, ListInvoices};
use crate::error::AppResult;
use crate::http::{ApiJson, ApiPage, ApiPath, ApiQuery, AppState, created};
use crate::money::Money;
use crate::paging::Listing;

/// Every message these routes send; `http::require_handlers` makes the app's build fail when
/// one of them has no handler.
pub type RouteMessages = (CreateInvoice, ListInvoices, GetInvoice);

/// The invoices' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/invoices", get(list).post(create))
        .route("/invoices/{invoice_number}", get(one))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    customer_id: Uuid,
    amount: Money,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    invoice_number: u64,
}

/// `POST /invoices`: the customer must be a registered student (404 otherwise), checked in
/// the numbering decision itself.
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFilter {
    customer_id: Option<Uuid>,
}

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

async fn one(
    State(state): State<AppState>,
    ApiPath(invoice_number): ApiPath<u64>,
) -> AppResult<Json<Invoice>> {
    Ok(Json(state.send(GetInvoice { invoice_number }).await?))
}
