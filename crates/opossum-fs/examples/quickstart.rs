//! Quick start: a store in a local folder, gap-free invoice numbers under a DCB condition,
//! a unique serial number, queries, and a tamper check.
//!
//! Run it with `cargo run -p opossum-fs --example quickstart`; pass a folder to use another
//! location than `./data`. Run it twice: the store keeps its events, and numbering continues.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use opossum_core::{AppendCondition, DomainEvent, EventStore, NewEvent, Query, ReadOptions, Tag};
use opossum_fs::FileEventStore;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct InvoiceCreated {
    number: u64,
    customer: String,
    amount_cents: u64,
}

impl DomainEvent for InvoiceCreated {
    const EVENT_TYPE: &'static str = "InvoiceCreated";
}

#[derive(Serialize, Deserialize)]
struct DeviceRegistered {
    serial: String,
    model: String,
}

impl DomainEvent for DeviceRegistered {
    const EVENT_TYPE: &'static str = "DeviceRegistered";
}

/// Creates the next invoice: read the last number, decide, append only if no invoice was
/// created in between (by this process or any other); on a conflict, decide again.
async fn create_invoice(
    store: &FileEventStore,
    customer: &str,
    amount_cents: u64,
) -> Result<u64, opossum_core::Error> {
    let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])?;
    loop {
        let last = store.read_last(&invoices).await?;
        let number = match &last {
            Some(event) => event.decode::<InvoiceCreated>()?.number + 1,
            None => 1,
        };
        let event = NewEvent::from_typed(&InvoiceCreated {
            number,
            customer: customer.to_owned(),
            amount_cents,
        })
        .tag("invoice", number.to_string())
        .tag("customer", customer)
        .build()?;
        let guard = AppendCondition::new(invoices.clone()).after(last.map(|e| e.position));
        match store.append(vec![event], Some(guard)).await {
            Ok(_) => return Ok(number),
            Err(e) if e.is_condition_failed() => continue,
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "opossum_fs=info".into()),
        )
        .init();

    let root = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir()?.join("data"),
    };
    let root = std::path::absolute(root)?;
    let store = FileEventStore::open(root.join("quickstart"))?;
    println!("store folder: {}", store.path().display());

    // Gap-free invoice numbers, even with several writers at once.
    let (a, b, c) = tokio::join!(
        create_invoice(&store, "ACME", 12_000),
        create_invoice(&store, "Globex", 4_500),
        create_invoice(&store, "ACME", 990),
    );
    println!("created invoices {}, {} and {}", a?, b?, c?);

    // A serial number may be registered once: the condition spans the whole store.
    let serial = format!("SN-{}", store.stats()?.event_count);
    let by_serial = Query::from_tags([Tag::new("serial", serial.as_str())?])?;
    let register = || {
        NewEvent::from_typed(&DeviceRegistered {
            serial: serial.clone(),
            model: "X2".to_owned(),
        })
        .tag("serial", serial.as_str())
        .build()
    };
    store
        .append(
            vec![register()?],
            Some(AppendCondition::new(by_serial.clone())),
        )
        .await?;
    let twice = store
        .append(vec![register()?], Some(AppendCondition::new(by_serial)))
        .await;
    println!(
        "registering {serial} twice: {}",
        match twice {
            Err(e) if e.is_condition_failed() => "refused, as it should be".to_owned(),
            other => format!("unexpected: {other:?}"),
        }
    );

    // Queries use the indexes: by tag, by type, newest first.
    let acme = Query::from_tags([Tag::new("customer", "ACME")?])?;
    let acme_invoices = store.read(&acme, ReadOptions::new()).await?;
    println!("ACME has {} invoice(s)", acme_invoices.len());
    let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])?;
    for event in store
        .read(&invoices, ReadOptions::new().descending().limit(3))
        .await?
    {
        let invoice = event.decode::<InvoiceCreated>()?;
        println!(
            "  #{:<4} {:<8} {:>8.2}  (position {})",
            invoice.number,
            invoice.customer,
            invoice.amount_cents as f64 / 100.0,
            event.position
        );
    }

    let stats = store.stats()?;
    let report = store.verify()?;
    println!(
        "{} events, {} bytes on disk; hash chain intact: {} (head hash {})",
        stats.event_count,
        stats.size_on_disk,
        report.is_intact(),
        report.head_hash.as_deref().unwrap_or("-")
    );
    store.close()?;
    Ok(())
}
