//! Creating invoices with gap-free numbers.

use opossum::{
    AppendCondition, DomainEvent, EventStore, EventStoreError, Handler, Message, Position, Query,
    execute_decision_with,
};
use uuid::Uuid;

use super::InvoiceCreated;
use crate::error::{AppError, AppResult};
use crate::money::Money;
use crate::store::{Writer, query, retry_policy};
use crate::students::StudentRegistered;
use crate::tags::{CUSTOMER_ID, INVOICE_NUMBER, STUDENT_ID};

/// Bill a customer, a registered student: the invoice gets the next number.
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
/// [`AppError::Invalid`] for an empty batch or an amount not above zero;
/// [`AppError::NotFound`] when a customer is not a registered student; a 409-mapped
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
    // Every customer billed must be a registered student. Registrations are read first and
    // guarded with the invoices, so the customer's existence is part of the decision.
    let mut customers: Vec<Uuid> = invoices.iter().map(|i| i.customer_id).collect();
    customers.sort_unstable();
    customers.dedup();
    let registrations = customers
        .iter()
        .map(|customer| query(&[StudentRegistered::EVENT_TYPE], &[(STUDENT_ID, customer)]))
        .collect::<Result<Vec<_>, _>>()?;
    let (customers, registrations) = (&customers, &registrations);
    // Not `decide`: its model would fold every invoice ever created to find the last number,
    // where `read_last` reads one event; so this decision reads, and guards, by hand.
    let decided =
        execute_decision_with(writer.store.as_ref(), retry_policy(), |store| async move {
            let all_invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])?;
            // The registrations are read before the last invoice, so every event of the
            // boundary at or below the highest position seen was seen: an invoice below a
            // registration read was appended before that read, hence before the invoices'.
            let mut boundary = all_invoices.clone();
            let mut seen: Option<Position> = None;
            for (customer, registration) in customers.iter().zip(registrations) {
                match store.read_last(registration).await? {
                    Some(event) => seen = seen.max(Some(event.position)),
                    None => return Ok(Err(*customer)),
                }
                boundary = boundary.union(registration);
            }
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
            let read_up_to = seen.max(last.map(|e| e.position));
            let guard = AppendCondition::new(boundary).after(read_up_to);
            store.append(events, Some(guard)).await?;
            Ok::<_, EventStoreError>(Ok(numbers))
        })
        .await?;
    let numbers = decided.map_err(|customer| {
        AppError::not_found(format!(
            "Student {customer} does not exist (an invoice's customer is a registered student)."
        ))
    })?;
    Ok(numbers)
}
