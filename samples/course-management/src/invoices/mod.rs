//! Invoices: the "invoice number" example. Numbers are consecutive without gaps: the next one
//! follows the last invoice found with `read_last`, and the append fails if any invoice was
//! created after that read — in this process or another.

mod create;
mod events;
mod projection;
mod routes;

pub use create::{CreateInvoice, InvoiceCommands, NewInvoice, create_invoices};
pub use events::InvoiceCreated;
pub use projection::{
    GetInvoice, INVOICES, Invoice, InvoiceQueries, InvoicesProjection, ListInvoices, invoice_key,
};
pub use routes::{RouteMessages, routes};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the invoices' projection and handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    builder
        .projection(InvoicesProjection)
        .handler_with(|app| Writer::from_context(app).map(InvoiceCommands))
        .handler_with::<projection::ListInvoices, _, _>(projection::InvoiceQueries::from_context)
        .handler_with::<projection::GetInvoice, _, _>(projection::InvoiceQueries::from_context)
}
