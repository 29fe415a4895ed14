//! The invoice event.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// An invoice was created. Tagged `invoiceNumber` and `customerId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceCreated {
    /// Its number: 1, 2, 3, … without gaps.
    pub invoice_number: u64,
    /// The customer billed.
    pub customer_id: Uuid,
    /// The amount.
    pub amount: Money,
}

impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}
