//! The Opossum DCB event store on PostgreSQL, for users who outgrow one folder: several sites,
//! a central server, replication and managed backups. [`PgEventStore`] implements
//! [`opossum_core::EventStore`] with the guarantees of the folder store — gap-free positions,
//! atomic appends whose condition check and insert are one step against every other
//! connection, process and server — and keeps **the same event lines and hash chain**, so
//! `verify` gives the same head hash for the same events and an export from either store is
//! the same.
//!
//! The schema is created and upgraded on connect (versioned, in [`PgOptions::schema`]). See
//! `docs/adr/0016-postgresql-store.md` for how appends are made atomic, what they cost, and
//! which choices carry over to distributed PostgreSQL-compatible engines.
//!
//! ```no_run
//! use opossum_core::{AppendCondition, EventStore, NewEvent, Payload, Query};
//! use opossum_postgres::{PgEventStore, PgOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgEventStore::connect("postgres://app@db.example/records", PgOptions::new().schema("billing")).await?;
//! let invoices = Query::from_event_types(["InvoiceCreated"])?;
//! let last = store.read_last(&invoices).await?;
//! let next = NewEvent::builder("InvoiceCreated", Payload::from_json(r#"{"number":1}"#)?).build()?;
//! // Fails with ConditionFailed if another server created an invoice meanwhile.
//! let condition = AppendCondition::new(invoices).after(last.map(|e| e.position));
//! store.append(vec![next], Some(condition)).await?;
//! # Ok(())
//! # }
//! ```

mod error;
mod keys;
mod options;
mod schema;
mod sql;
mod store;

pub use error::Error;
pub use options::PgOptions;
pub use store::{PgEventStore, PgVerifyReport};
