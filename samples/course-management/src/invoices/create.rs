//! Creating invoices with gap-free numbers.

use opossum::{
    AppendCondition, DomainEvent, EventStore, EventStoreError, Handler, Message, Query,
    execute_decision_with,
};
use uuid::Uuid;

use super::InvoiceCreated;
use crate::error::{AppError, AppResult};
use crate::money::Money;
use crate::store::{Writer, retry_policy};
use crate::tags::{CUSTOMER_ID, INVOICE_NUMBER};

/// Bill a customer: the invoice gets the next number.
#[derive(Clone, Copy, Debug)]
pub struct CreateInvoice {
    /// The customer.
    pub customer_id: Uuid,
    /// The amount, above zero.
    pub amount: Money,
}

impl Message for CreateInvoice {
    type Output = AppResult<u64>;
}

/// One invoice of a batch (see [`create_invoices`]).
pub type NewInvoice = CreateInvoice;

/// Handles [`CreateInvoice`].
#[derive(Clone)]
pub struct InvoiceCommands(pub Writer);

impl Handler<CreateInvoice> for InvoiceCommands {
    async fn handle(&self, command: CreateInvoice) -> AppResult<u64> {
        let numbers = create_invoices(&self.0, &[command]).await?;
        numbers
            .first()
            .copied()
            .ok_or_else(|| AppError::invalid("no invoice to create"))
    }
}

/// Creates `invoices` with consecutive numbers after the last invoice, in one atomic append,
/// and returns their numbers. The seed uses it for batches; a single invoice is a batch of one.
///
/// The boundary is every `InvoiceCreated` event: the condition fails when any invoice was
/// created after the one read (or, for the very first, when any invoice exists at all), and
/// the decision runs again with the new last number.
///
/// # Errors
/// [`AppError::Invalid`] for an empty batch or an amount not above zero; a 409-mapped
/// condition failure when every retry met another invoice.
pub async fn create_invoices(writer: &Writer, invoices: &[NewInvoice]) -> AppResult<Vec<u64>> {
    if invoices.is_empty() {
        return Err(AppError::invalid("no invoice to create"));
    }
    if let Some(bad) = invoices.iter().find(|i| !i.amount.is_positive()) {
        return Err(AppError::invalid(format!(
            "amount must be above zero, not {}.",
            bad.amount
        )));
    }
    // Not `decide`: its model would fold every invoice ever created to find the last number,
    // where `read_last` reads one event; so this decision reads, and guards, by hand.
    let numbers =
        execute_decision_with(writer.store.as_ref(), retry_policy(), |store| async move {
            let all_invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])?;
            let last = store.read_last(&all_invoices).await?;
            let after = match &last {
                Some(event) => event.decode::<InvoiceCreated>()?.invoice_number,
                None => 0,
            };
            let mut events = Vec::with_capacity(invoices.len());
            let mut numbers = Vec::with_capacity(invoices.len());
            for (offset, invoice) in (1..).zip(invoices) {
                let invoice_number = after + offset;
                events.push(
                    writer
                        .event(&InvoiceCreated {
                            invoice_number,
                            customer_id: invoice.customer_id,
                            amount: invoice.amount,
                        })
                        .tag(INVOICE_NUMBER, invoice_number.to_string())
                        .tag(CUSTOMER_ID, invoice.customer_id.to_string())
                        .build()?,
                );
                numbers.push(invoice_number);
            }
            let guard = AppendCondition::new(all_invoices).after(last.map(|e| e.position));
            store.append(events, Some(guard)).await?;
            Ok::<_, EventStoreError>(numbers)
        })
        .await?;
    Ok(numbers)
}
