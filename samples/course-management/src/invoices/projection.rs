//! The invoice list.

use opossum::{
    AppContext, BoxError, DomainEvent, Handler, Message, Page, Projection, ReadModel,
    SequencedEvent, Tag, Timestamp,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::InvoiceCreated;
use crate::error::{AppError, AppResult};
use crate::money::Money;
use crate::paging::Listing;
use crate::store::state_tags;
use crate::tags::{CUSTOMER_ID, INVOICE_NUMBER};

/// The name of the invoice projection.
pub const INVOICES: &str = "Invoices";

/// One invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    /// Its number.
    pub invoice_number: u64,
    /// The customer.
    pub customer_id: Uuid,
    /// The amount.
    pub amount: Money,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The key of invoice `number`: the number zero-padded to 20 digits (every `u64` fits), so that
/// the projection's key order — the order its pages follow — is number order.
#[must_use]
pub fn invoice_key(number: u64) -> String {
    format!("{number:020}")
}

/// The invoices, one instance per number (keyed by [`invoice_key`]), tagged `customerId`.
#[derive(Debug)]
pub struct InvoicesProjection;

impl Projection for InvoicesProjection {
    type State = Invoice;

    fn name(&self) -> &str {
        INVOICES
    }

    fn event_types(&self) -> Vec<&str> {
        vec![InvoiceCreated::EVENT_TYPE]
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        // The sample tags every invoice with its number; a tag that is no number (written by
        // something else) keeps its text rather than losing the invoice.
        let number = event.event.tag_value(INVOICE_NUMBER)?;
        Some(
            number
                .parse()
                .map_or_else(|_| number.to_owned(), invoice_key),
        )
    }

    fn apply(
        &self,
        _state: Option<Invoice>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<Invoice>, BoxError> {
        let created = event.decode::<InvoiceCreated>()?;
        Ok(Some(Invoice {
            invoice_number: created.invoice_number,
            customer_id: created.customer_id,
            amount: created.amount,
            created_at: event.event.metadata().timestamp,
        }))
    }

    fn tags(&self, invoice: &Invoice) -> Vec<Tag> {
        state_tags(&[(CUSTOMER_ID, &invoice.customer_id)])
    }
}

/// One page of the invoices in number order (the projection's key order, which the page's
/// cursor follows), optionally of one customer (a tag of the projection, so a customer's page is
/// read from the tag index).
#[derive(Clone, Debug)]
pub struct ListInvoices {
    /// Only this customer's invoices.
    pub customer_id: Option<Uuid>,
    /// Which page.
    pub page: Page,
}

impl Message for ListInvoices {
    type Output = AppResult<Listing<Invoice>>;
}

/// One invoice by number.
#[derive(Clone, Copy, Debug)]
pub struct GetInvoice {
    /// The number.
    pub invoice_number: u64,
}

impl Message for GetInvoice {
    type Output = AppResult<Invoice>;
}

/// Handles the invoice queries.
#[derive(Clone)]
pub struct InvoiceQueries {
    invoices: ReadModel<Invoice>,
}

impl InvoiceQueries {
    /// The read model of the app being built.
    ///
    /// # Errors
    /// When the projection is not registered.
    pub fn from_context(app: &AppContext) -> Result<InvoiceQueries, opossum::Error> {
        Ok(InvoiceQueries {
            invoices: app.read_model::<InvoicesProjection>()?,
        })
    }
}

impl Handler<ListInvoices> for InvoiceQueries {
    async fn handle(&self, query: ListInvoices) -> AppResult<Listing<Invoice>> {
        let customer = query.customer_id.map(|c| state_tags(&[(CUSTOMER_ID, &c)]));
        let page = query.page;
        let invoices = self
            .invoices
            .read(move |store| match customer {
                Some(tags) => store.query_by_tags(&tags, &page),
                None => store.list(&page),
            })
            .await?;
        Ok(invoices.into())
    }
}

impl Handler<GetInvoice> for InvoiceQueries {
    async fn handle(&self, query: GetInvoice) -> AppResult<Invoice> {
        let key = invoice_key(query.invoice_number);
        self.invoices
            .read(move |store| store.get(&key))
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("Invoice {} does not exist.", query.invoice_number))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_keys_sort_in_number_order() {
        let mut keys: Vec<String> = [10, 2, 1, u64::MAX, 100, 9].map(invoice_key).into();
        keys.sort();
        let numbers: Vec<u64> = keys.iter().map(|k| k.parse().unwrap()).collect();
        assert_eq!(numbers, [1, 2, 9, 10, 100, u64::MAX]);
        assert!(keys.iter().all(|k| k.len() == 20), "{keys:?}");
    }
}
