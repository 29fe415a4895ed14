//! The Opossum storage engine: a folder as a durable, tamper-evident, multi-process-safe DCB
//! event log.
//!
//! [`FileEventStore`] implements [`opossum_core::EventStore`] on a folder:
//!
//! - **readable** — every event is one line of UTF-8 JSON in `events/*.jsonl`, which an auditor
//!   can open and grep in any editor;
//! - **durable** — with the default [`Durability::Immediate`](opossum_core::Durability),
//!   `append` returns only after its events are on stable storage (one `fdatasync` per group of
//!   concurrent appends);
//! - **crash-safe** — after `kill -9` or a power cut, the next open finds every acknowledged
//!   event; a torn, never-acknowledged write is cut (and its bytes kept under `recovered/`),
//!   never shown, while damage to acknowledged events is refused with a typed error;
//! - **failure-safe** — an append that hits a full disk (of kind
//!   [`ErrorKind::DiskFull`](opossum_core::ErrorKind::DiskFull)), a read-only folder
//!   ([`ErrorKind::ReadOnly`](opossum_core::ErrorKind::ReadOnly)) or any other write error fails
//!   as a whole — every caller of
//!   the failed group commit gets the error — and is never adopted later; the store stays
//!   usable, and appends go on once the cause is fixed;
//! - **tamper-evident** — every line carries a SHA-256 hash chained to the previous one, and
//!   [`FileEventStore::verify`] finds the first edited, missing, reordered or truncated event;
//! - **multi-process** — appends from any number of processes (on one machine or sharing a
//!   network folder) serialize on a lock file, and each checks its DCB condition against
//!   everything committed before it;
//! - **indexed** — type and tag queries, `read_last` and condition checks cost in proportion to
//!   what they match, not to the size of the store.
//!
//! Before putting a store on a folder — a network share especially — [`check_folder`] probes,
//! from this machine, what the folder's file system provides.
//!
//! Errors: opening, verifying and backing up return this crate's [`Error`]; appends and reads —
//! async or blocking — return [`opossum_core::Error`], which carries this crate's error and its
//! kind. Match on `error.kind()` (an [`opossum_core::ErrorKind`]) to decide what to do; use
//! [`Error::of`] for the file and position behind a failed append or read.
//!
//! The on-disk format is specified in `docs/format.md` of the repository.
//!
//! # Example
//!
//! ```
//! use opossum_core::{AppendCondition, ErrorKind, NewEvent, Payload, Query, ReadOptions, Tag};
//! use opossum_fs::FileEventStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let folder = tempfile::tempdir()?;
//! # let path = folder.path().join("records");
//! let store = FileEventStore::open(&path)?; // the store folder, created when missing
//!
//! let serial = Query::from_tags([Tag::new("serial", "SN-1001")?])?;
//! let registered = NewEvent::builder("DeviceRegistered", Payload::from_json(r#"{"model":"X2"}"#)?)
//!     .tag("serial", "SN-1001")
//!     .build()?;
//!
//! // Register the serial number only if nobody registered it before.
//! let guard = AppendCondition::new(serial.clone());
//! store.append_blocking(vec![registered.clone()], Some(guard.clone()))?;
//! let again = store.append_blocking(vec![registered], Some(guard));
//! assert_eq!(again.unwrap_err().kind(), ErrorKind::ConditionFailed);
//!
//! let events = store.read_blocking(&serial, ReadOptions::new())?;
//! assert_eq!(events.len(), 1);
//! assert!(store.verify()?.is_intact());
//! # Ok(())
//! # }
//! ```

mod backup;
mod check;
mod engine;
mod error;
mod head;
mod index;
mod keys;
mod layout;
mod lock;
mod options;
mod record;
mod recovery;
mod segment;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;
mod verify;
mod vfs;
mod writer;

pub use backup::BackupReport;
pub use check::{FileSystemKind, FolderCheck, Outcome, Probe, ProbeName, check_folder};
pub use error::Error;
pub use keys::{FileKeyStore, KEYS_FOLDER};
pub use options::{CHANGE_POLL_INTERVAL, ChangeDetection, StoreOptions, resolve_store_folder};
pub use recovery::{RecoveryReport, Repair};
pub use store::{FileEventStore, StoreStats, StoredEvent, chain_hash};
pub use verify::{BreakKind, ChainBreak, VerifyReport, verify_folder};
