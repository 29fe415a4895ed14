//! Append workloads on the file store: single events with and without flush, batches of 1,000,
//! 16 concurrent tasks (group commit) and the gap-free invoice pattern with DCB conditions.
//!
//! The durable workloads are drivers that [`super::paired`] runs in turns with their baselines;
//! [`no_flush`] is measured on its own.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opossum_benches::{invoice_event, invoices_query, next_invoice_number, sample_event};
use opossum_core::{AppendCondition, EventStore, NewEvent, Query};
use opossum_fs::{FileEventStore, StoreOptions};
use tokio::runtime::Runtime;

use super::measure::{self, Rate};
use super::report::Figures;
use super::{CONCURRENT_WRITERS, Plan};

/// Events per call in the batch scenario.
const BATCH: u64 = 1_000;

/// Appends made before the clock starts, so that creating files is not measured.
pub(crate) const WARM_UP: u64 = 16;

/// Whether appends wait for stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `Durability::Immediate`: `append` returns after `fdatasync`.
    Flush,
    /// `Durability::Eventual`: `append` returns once the OS has the bytes.
    NoFlush,
}

/// Opens (creating) the store `dir/name`.
pub(crate) fn open_store(dir: &Path, name: &str, durability: Durability) -> Result<FileEventStore> {
    let options = StoreOptions::new().durability(match durability {
        Durability::Flush => opossum_core::Durability::Immediate,
        Durability::NoFlush => opossum_core::Durability::Eventual,
    });
    FileEventStore::open_with(dir.join(name), options)
        .with_context(|| format!("open the store {}", dir.join(name).display()))
}

/// Records `no_flush_append_per_s`: one writer, one event per append, flush off.
pub(crate) fn no_flush(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let mut no_flush = Single::open(dir, "no-flush", Durability::NoFlush)?;
    let rate = measure::for_duration(plan.serial_run, |_| no_flush.append())?;
    no_flush.close()?;
    figures.record("no_flush_append_per_s", rate.per_second());
    Ok(())
}

/// One writer appending one event per call.
#[derive(Debug)]
pub(crate) struct Single {
    store: FileEventStore,
    appended: u64,
}

impl Single {
    /// Opens a fresh store and makes the warm-up appends.
    pub(crate) fn open(dir: &Path, name: &str, durability: Durability) -> Result<Single> {
        let mut single = Single {
            store: open_store(dir, name, durability)?,
            appended: 0,
        };
        for _ in 0..WARM_UP {
            single.append()?;
        }
        Ok(single)
    }

    /// Appends one event; returns the events appended (one).
    pub(crate) fn append(&mut self) -> Result<u64> {
        self.store
            .append_blocking(vec![sample_event(self.appended)?], None)
            .context("append one event")?;
        self.appended += 1;
        Ok(1)
    }

    /// Checks the event count and closes the store.
    pub(crate) fn close(self) -> Result<()> {
        let stored = self.store.stats()?.event_count;
        ensure!(
            stored == self.appended,
            "the store holds {stored} events, expected {}",
            self.appended
        );
        self.store.close().context("close the store")
    }
}

/// One writer appending 1,000 events per call, durably.
#[derive(Debug)]
pub(crate) struct Batches {
    store: FileEventStore,
    appended: u64,
}

impl Batches {
    /// Opens a fresh store and appends a first batch.
    pub(crate) fn open(dir: &Path) -> Result<Batches> {
        let mut batches = Batches {
            store: open_store(dir, "batch1000", Durability::Flush)?,
            appended: 0,
        };
        batches.append()?;
        Ok(batches)
    }

    /// Appends one batch; returns the events appended (1,000).
    pub(crate) fn append(&mut self) -> Result<u64> {
        let batch = (self.appended..self.appended + BATCH)
            .map(sample_event)
            .collect::<Result<Vec<NewEvent>, _>>()?;
        self.store
            .append_blocking(batch, None)
            .context("append a batch of 1,000 events")?;
        self.appended += BATCH;
        Ok(BATCH)
    }

    /// Checks the event count and closes the store.
    pub(crate) fn close(self) -> Result<()> {
        let stored = self.store.stats()?.event_count;
        ensure!(
            stored == self.appended,
            "the batch store holds {stored} events, expected {}",
            self.appended
        );
        self.store.close().context("close the store")
    }
}

/// The gap-free invoice pattern: read the last invoice of the series, then append the next one
/// on condition that no invoice was appended after it.
#[derive(Debug)]
pub(crate) struct InvoiceClerk {
    store: FileEventStore,
    invoices: Query,
    issued: u64,
}

impl InvoiceClerk {
    /// Opens a fresh store and issues the warm-up invoices.
    pub(crate) fn open(dir: &Path) -> Result<InvoiceClerk> {
        let mut clerk = InvoiceClerk {
            store: open_store(dir, "conditional", Durability::Flush)?,
            invoices: invoices_query()?,
            issued: 0,
        };
        for _ in 0..WARM_UP {
            clerk.issue_next()?;
        }
        Ok(clerk)
    }

    /// One `read_last` and one durable conditional append; returns the events appended (one).
    pub(crate) fn issue_next(&mut self) -> Result<u64> {
        let last = self.store.read_last_blocking(&self.invoices)?;
        let number = next_invoice_number(last.as_ref())?;
        let guard = AppendCondition::new(self.invoices.clone()).after(last.map(|e| e.position));
        match self
            .store
            .append_blocking(vec![invoice_event(number)?], Some(guard))
        {
            Ok(_) => {
                self.issued += 1;
                Ok(1)
            }
            Err(e) if e.is_condition_failed() => {
                bail!("invoice {number}: the condition failed although nobody else appends")
            }
            Err(e) => Err(e).context("append an invoice"),
        }
    }

    /// Checks that the invoice numbers have no gap, and closes the store.
    pub(crate) fn close(self) -> Result<()> {
        let last = self.store.read_last_blocking(&self.invoices)?;
        let numbered = next_invoice_number(last.as_ref())? - 1;
        ensure!(
            numbered == self.issued,
            "the last invoice is number {numbered}, expected {}",
            self.issued
        );
        self.store.close().context("close the store")
    }
}

/// [`CONCURRENT_WRITERS`] tokio tasks appending single durable events to one store through the
/// async API.
#[derive(Debug)]
pub(crate) struct Concurrent {
    runtime: Runtime,
    store: Arc<FileEventStore>,
    appended: u64,
}

impl Concurrent {
    /// Opens a fresh store, makes the warm-up appends and starts a multi-threaded runtime.
    pub(crate) fn open(dir: &Path) -> Result<Concurrent> {
        let store = open_store(dir, "concurrent16", Durability::Flush)?;
        for i in 0..WARM_UP {
            store.append_blocking(vec![sample_event(i)?], None)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .build()
            .context("start the tokio runtime")?;
        Ok(Concurrent {
            runtime,
            store: Arc::new(store),
            appended: WARM_UP,
        })
    }

    /// Each task appends `per_writer` events, or fewer if `cap` passes first.
    pub(crate) fn round(&mut self, per_writer: u64, cap: Duration) -> Result<Rate> {
        let first = self.appended;
        let rate = self.runtime.block_on(async {
            let started = Instant::now();
            let deadline = started + cap;
            let tasks: Vec<_> = (0..CONCURRENT_WRITERS as u64)
                .map(|writer| {
                    let store = Arc::clone(&self.store);
                    tokio::spawn(async move {
                        let mut done = 0;
                        while done < per_writer && Instant::now() < deadline {
                            let event = sample_event(first + writer * per_writer + done)?;
                            store.append(vec![event], None).await?;
                            done += 1;
                        }
                        anyhow::Ok(done)
                    })
                })
                .collect();
            let mut events = 0;
            for task in tasks {
                events += task.await.context("an append task panicked")??;
            }
            anyhow::Ok(Rate {
                events,
                elapsed: started.elapsed(),
            })
        })?;
        self.appended += rate.events;
        Ok(rate)
    }

    /// Checks the event count and closes the store.
    pub(crate) fn close(self) -> Result<()> {
        drop(self.runtime);
        let stored = self.store.stats()?.event_count;
        ensure!(
            stored == self.appended,
            "the concurrent store holds {stored} events, expected {}",
            self.appended
        );
        match Arc::try_unwrap(self.store) {
            Ok(store) => store.close().context("close the store"),
            Err(_) => bail!("an append task still holds the store"),
        }
    }
}
