//! The invoice list.

use opossum::{
    AppContext, BoxError, DomainEvent, Handler, Message, Projection, ReadModel, SequencedEvent,
    Tag, Timestamp,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::InvoiceCreated;
use crate::error::{AppError, AppResult};
use crate::money::Money;
use crate::store::state_tags;
use crate::tags::{CUSTOMER_ID, INVOICE_NUMBER};

/// The name of the invoice projection.
pub const INVOICES: &str = "Invoices";

/// One invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The invoices, one instance per number, tagged `customerId`.
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
        event.event.tag_value(INVOICE_NUMBER).map(str::to_owned)
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

/// The invoices in number order, optionally of one customer.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListInvoices {
    /// Only this customer's invoices.
    pub customer_id: Option<Uuid>,
}

impl Message for ListInvoices {
    type Output = AppResult<Vec<Invoice>>;
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
    async fn handle(&self, query: ListInvoices) -> AppResult<Vec<Invoice>> {
        let customer = query.customer_id.map(|c| state_tags(&[(CUSTOMER_ID, &c)]));
        let mut invoices = self
            .invoices
            .read(move |store| match customer {
                Some(tags) => store.query_by_tags(&tags),
                None => store.get_all(),
            })
            .await?;
        invoices.sort_by_key(|i| i.invoice_number);
        Ok(invoices)
    }
}

impl Handler<GetInvoice> for InvoiceQueries {
    async fn handle(&self, query: GetInvoice) -> AppResult<Invoice> {
        let key = query.invoice_number.to_string();
        self.invoices
            .read(move |store| store.get(&key))
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("Invoice {} does not exist.", query.invoice_number))
            })
    }
}
