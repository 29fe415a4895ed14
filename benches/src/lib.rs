//! Workloads shared by Opossum's criterion micro-benchmarks (`benches/benches/`) and by
//! `cargo xtask bench`, so both measure the same events.
//!
//! - [`catalog_event`] builds the events of the *catalog* store used for query figures: ten event
//!   types in turn, and a `customer` tag whose every value is carried by exactly
//!   [`EVENTS_PER_CUSTOMER`] consecutive events.
//! - [`sample_event`] is the event the append scenarios write: about 200 bytes of JSON payload.
//! - [`invoice_event`], [`invoices_query`] and [`next_invoice_number`] are the gap-free invoice pattern of the conditional
//!   scenario.
//!
//! ```
//! use opossum_benches::{EVENTS_PER_CUSTOMER, catalog_event, customer_query};
//!
//! let event = catalog_event(12)?;
//! assert!(customer_query(12 / EVENTS_PER_CUSTOMER)?.matches(&event));
//! # Ok::<(), opossum_core::Error>(())
//! ```

use opossum_core::{DomainEvent, Error, NewEvent, Payload, Query, QueryItem, SequencedEvent, Tag};
use serde::{Deserialize, Serialize};

/// The event types of the catalog store, used in turn: event `i` has type `EVENT_TYPES[i % 10]`.
pub const EVENT_TYPES: [&str; 10] = [
    "OrderPlaced",
    "OrderConfirmed",
    "PaymentReceived",
    "OrderPacked",
    "OrderShipped",
    "OrderDelivered",
    "InvoiceIssued",
    "ReturnRequested",
    "RefundIssued",
    "OrderClosed",
];

/// How many catalog events carry each `customer` tag value.
pub const EVENTS_PER_CUSTOMER: u64 = 10;

/// The tag key every catalog event carries, with [`EVENTS_PER_CUSTOMER`] events per value.
pub const CUSTOMER_TAG: &str = "customer";

/// The `customer` tag value of catalog customer number `customer`.
#[must_use]
pub fn customer_id(customer: u64) -> String {
    format!("C-{customer:07}")
}

/// Catalog event number `i` (0-based): type `EVENT_TYPES[i % 10]`, tags
/// `customer = customer_id(i / EVENTS_PER_CUSTOMER)` and a unique `order`, and a payload of about
/// 120 bytes.
///
/// # Errors
/// Never for these fixed names; the `Result` is the builder's.
pub fn catalog_event(i: u64) -> Result<NewEvent, Error> {
    let event_type = EVENT_TYPES[usize::try_from(i % 10).unwrap_or(0)];
    let payload = Payload::from_json(&format!(
        r#"{{"order":{i},"amount_cents":{},"currency":"EUR","lines":3,"note":"catalog event for the query benchmarks"}}"#,
        1_000 + (i * 37) % 90_000
    ))?;
    NewEvent::builder(event_type, payload)
        .tag(CUSTOMER_TAG, customer_id(i / EVENTS_PER_CUSTOMER))
        .tag("order", format!("O-{i:08}"))
        .build()
}

/// The query for every catalog event of customer number `customer` (≤ 10 events).
///
/// # Errors
/// Never; the `Result` is the tag constructor's.
pub fn customer_query(customer: u64) -> Result<Query, Error> {
    Query::from_tags([Tag::new(CUSTOMER_TAG, customer_id(customer))?])
}

/// The query for every catalog event of one type (a tenth of the store).
///
/// # Errors
/// Never; the `Result` is the type constructor's.
pub fn type_query(event_type: &str) -> Result<Query, Error> {
    Query::from_event_types([event_type])
}

/// The event type of [`sample_event`].
pub const SAMPLE_TYPE: &str = "SensorReading";

/// The JSON payload text of [`sample_event`] `i`: the bytes a store that takes opaque payloads
/// is given for the same event.
#[must_use]
pub fn sample_payload(i: u64) -> String {
    format!(
        r#"{{"reading":{i},"sensor":"S-{:04}","celsius":{}.{},"operator":"line-3","note":"durable append benchmark payload, about two hundred bytes of JSON text in all, like a raw fsync record"}}"#,
        i % 64,
        18 + i % 7,
        i % 10
    )
}

/// The one tag of [`sample_event`] `i`, as key and value.
#[must_use]
pub fn sample_tag(i: u64) -> (&'static str, String) {
    ("sensor", format!("S-{:04}", i % 64))
}

/// The event of the append scenarios: one [`SAMPLE_TYPE`] with a `sensor` tag and about 200 bytes
/// of payload ([`sample_payload`]), like the ~200-byte records of the raw fsync baseline.
///
/// # Errors
/// Never for these fixed names; the `Result` is the builder's.
pub fn sample_event(i: u64) -> Result<NewEvent, Error> {
    let payload = Payload::from_json(&sample_payload(i))?;
    let (key, value) = sample_tag(i);
    NewEvent::builder(SAMPLE_TYPE, payload)
        .tag(key, value)
        .build()
}

/// The tag all invoices of the conditional scenario carry: one numbering series.
pub const INVOICE_SERIES: (&str, &str) = ("series", "2026");

/// The event of the conditional scenario: invoice `number` of the series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCreated {
    /// The invoice number: the previous invoice's plus one, without gaps.
    pub number: u64,
    /// Who is billed.
    pub customer: String,
    /// The amount billed.
    pub total_cents: u64,
}

impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}

/// Invoice number `number` of the series, tagged with [`INVOICE_SERIES`] and `invoice = number`.
///
/// # Errors
/// Never for these fixed names; the `Result` is the builder's.
pub fn invoice_event(number: u64) -> Result<NewEvent, Error> {
    let invoice = InvoiceCreated {
        number,
        customer: customer_id(number % 1_000),
        total_cents: 500 + number % 10_000,
    };
    NewEvent::from_typed(&invoice)
        .tag(INVOICE_SERIES.0, INVOICE_SERIES.1)
        .tag("invoice", number.to_string())
        .build()
}

/// The invoices of the series: type `InvoiceCreated` **and** tag [`INVOICE_SERIES`]. The
/// conditional scenario reads the last match, then appends on condition that nothing matched
/// since.
///
/// # Errors
/// Never; the `Result` is the constructors'.
pub fn invoices_query() -> Result<Query, Error> {
    Query::from_items([QueryItem::of_types([InvoiceCreated::EVENT_TYPE])?
        .with_tag(Tag::new(INVOICE_SERIES.0, INVOICE_SERIES.1)?)])
}

/// The number of the invoice after `last` (the last invoice read), or 1 for the first.
///
/// # Errors
/// [`Error::PayloadDecode`] when `last` is not an `InvoiceCreated`.
pub fn next_invoice_number(last: Option<&SequencedEvent>) -> Result<u64, Error> {
    Ok(match last {
        Some(event) => event.decode::<InvoiceCreated>()?.number + 1,
        None => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_customer_has_ten_events() -> Result<(), Error> {
        let q = customer_query(3)?;
        let matching = (0..100)
            .map(catalog_event)
            .filter(|e| e.as_ref().is_ok_and(|e| q.matches(e)))
            .count();
        assert_eq!(matching, 10);
        Ok(())
    }

    #[test]
    fn sample_events_are_about_two_hundred_bytes() -> Result<(), Error> {
        let len = sample_event(12_345)?.payload().as_json().len();
        assert!((180..=230).contains(&len), "{len}");
        assert_eq!(sample_event(7)?.payload().as_json(), sample_payload(7));
        Ok(())
    }

    #[test]
    fn invoices_carry_their_number() -> Result<(), Error> {
        let e = invoice_event(4_711)?;
        assert!(invoices_query()?.matches(&e));
        let read = SequencedEvent::new(opossum_core::Position::FIRST, e);
        assert_eq!(next_invoice_number(Some(&read))?, 4_712);
        assert_eq!(next_invoice_number(None)?, 1);
        Ok(())
    }
}
