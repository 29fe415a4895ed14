//! Core types of the Opossum event store, with no I/O.
//!
//! This crate holds what every Opossum store and every layer above it share:
//!
//! - the DCB vocabulary: [`Tag`], [`EventType`], [`QueryItem`], [`Query`], [`AppendCondition`],
//!   [`Position`] and [`ReadOptions`];
//! - events: [`NewEvent`] (what you append), [`SequencedEvent`] (what a store returns), typed
//!   events through [`DomainEvent`] and the fluent [`EventBuilder`];
//! - the async [`EventStore`] trait, and [`InMemoryEventStore`] for unit tests;
//! - one [`Error`] type whose validation variants are raised where values are built, and the
//!   [`ErrorKind`] that the error of every Opossum crate reports through its `kind()`;
//! - [`Durability`], the one setting of when a write counts as done.
//!
//! Matching has exactly one definition, [`Query::matches`]: an event matches a [`QueryItem`]
//! when its type is one of the item's types (if any) **and** it carries all of the item's tags
//! (if any); it matches a [`Query`] when it matches any item. An item with neither types nor
//! tags matches everything.
//!
//! For a store that persists to a folder, use the `opossum-fs` crate.
//!
//! # Example
//!
//! ```
//! use opossum_core::{
//!     AppendCondition, DomainEvent, EventStore, InMemoryEventStore, NewEvent, Query, ReadOptions, Tag,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct InvoiceCreated { number: u64 }
//! impl DomainEvent for InvoiceCreated { const EVENT_TYPE: &'static str = "InvoiceCreated"; }
//!
//! # async fn run() -> Result<(), opossum_core::Error> {
//! let store = InMemoryEventStore::new();
//! let invoices = Query::from_event_types([InvoiceCreated::EVENT_TYPE])?;
//!
//! // Decide: the next number follows the last invoice…
//! let last = store.read_last(&invoices).await?;
//! let next = match &last {
//!     Some(e) => e.decode::<InvoiceCreated>()?.number + 1,
//!     None => 1,
//! };
//! // …and the append fails if another invoice was created since that read.
//! let event = NewEvent::from_typed(&InvoiceCreated { number: next })
//!     .tag("invoice", next.to_string())
//!     .build()?;
//! let guard = AppendCondition::new(invoices.clone()).after(last.map(|e| e.position));
//! store.append(vec![event], Some(guard)).await?;
//!
//! let all = store.read(&invoices, ReadOptions::new()).await?;
//! assert_eq!(all[0].decode::<InvoiceCreated>()?.number, 1);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```

mod durability;
mod error;
mod event;
pub mod line;
mod memory;
mod position;
mod query;
pub mod records;
mod required;
mod store;
pub mod stream;
mod tag;
mod upcast;

pub use durability::Durability;
pub use error::{Error, ErrorKind, StorageError};
pub use event::{
    DomainEvent, EventBuilder, Metadata, NewEvent, Payload, PersonalData, SequencedEvent,
};
pub use jiff::Timestamp;
pub use memory::InMemoryEventStore;
pub use position::Position;
pub use query::{AppendCondition, Direction, Query, QueryItem, ReadOptions};
pub use required::RequiredMetadata;
pub use store::{DEFAULT_APPEND_POLL, EventStore, validate_append};
pub use stream::EventStream;
pub use tag::{EventType, Tag};
pub use upcast::Upcasters;
