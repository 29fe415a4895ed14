//! The PostgreSQL store (`--backend postgres`): the durable append workloads of the rounds and
//! the catalog queries, on a server given by `--database-url` (or `OPOSSUM_BENCH_DATABASE_URL`),
//! each run in a schema of its own that is dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opossum_benches::{
    catalog_event, customer_query, invoice_event, invoices_query, next_invoice_number, sample_event,
};
use opossum_core::{AppendCondition, NewEvent, Query, ReadOptions};
use opossum_postgres::{PgEventStore, PgOptions};

use super::fs_append::WARM_UP;
use super::measure::Rate;
use super::paired::{Catalog, QueryKeys};
use super::{BULK_BATCH, CONCURRENT_WRITERS, QUERY_STORE_EVENTS};

/// A store in a new schema of the server at `url`.
fn connect(url: &str, name: &str) -> Result<PgEventStore> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!("bench_{name}_{}_{nanos}", std::process::id());
    PgEventStore::connect_blocking(url, PgOptions::new().schema(schema))
        .with_context(|| format!("connect to PostgreSQL at {url}"))
}

/// Drops the store's schema.
fn drop_store(store: PgEventStore) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start a runtime")?;
    runtime
        .block_on(store.drop_schema())
        .context("drop the benchmark schema")
}

/// The append workloads on PostgreSQL: single appends, the invoice clerk, 16 concurrent
/// writers on one store (group commit).
pub(crate) struct Appenders {
    single: PgEventStore,
    single_count: u64,
    clerk: PgEventStore,
    invoices: Query,
    issued: u64,
    concurrent: Arc<PgEventStore>,
    appended: u64,
}

impl Appenders {
    /// Three stores with their warm-up appends.
    pub(crate) fn open(url: &str) -> Result<Appenders> {
        let single = connect(url, "single")?;
        let clerk = connect(url, "conditional")?;
        let concurrent = connect(url, "concurrent16")?;
        for i in 0..WARM_UP {
            single.append_blocking(vec![sample_event(i)?], None)?;
            concurrent.append_blocking(vec![sample_event(i)?], None)?;
        }
        let mut appenders = Appenders {
            single,
            single_count: WARM_UP,
            clerk,
            invoices: invoices_query()?,
            issued: 0,
            concurrent: Arc::new(concurrent),
            appended: WARM_UP,
        };
        for _ in 0..WARM_UP {
            appenders.issue_next()?;
        }
        Ok(appenders)
    }

    /// One durable single-event append.
    pub(crate) fn append(&mut self) -> Result<u64> {
        self.single
            .append_blocking(vec![sample_event(self.single_count)?], None)?;
        self.single_count += 1;
        Ok(1)
    }

    /// One `read_last` and one conditional append of the next invoice.
    pub(crate) fn issue_next(&mut self) -> Result<u64> {
        let last = self.clerk.read_last_blocking(&self.invoices)?;
        let number = next_invoice_number(last.as_ref())?;
        let guard = AppendCondition::new(self.invoices.clone()).after(last.map(|e| e.position));
        match self
            .clerk
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

    /// [`CONCURRENT_WRITERS`] threads appending single events to one store, `per_writer` each
    /// or fewer if `cap` passes first.
    pub(crate) fn round(&mut self, per_writer: u64, cap: Duration) -> Result<Rate> {
        let first = self.appended;
        let started = Instant::now();
        let deadline = started + cap;
        let writers: Vec<_> = (0..CONCURRENT_WRITERS as u64)
            .map(|writer| {
                let store = Arc::clone(&self.concurrent);
                std::thread::spawn(move || {
                    let mut done = 0;
                    while done < per_writer && Instant::now() < deadline {
                        let event = sample_event(first + writer * per_writer + done)?;
                        store.append_blocking(vec![event], None)?;
                        done += 1;
                    }
                    anyhow::Ok(done)
                })
            })
            .collect();
        let mut events = 0;
        for writer in writers {
            events += writer
                .join()
                .map_err(|_| anyhow::anyhow!("an append thread panicked"))??;
        }
        self.appended += events;
        Ok(Rate {
            events,
            elapsed: started.elapsed(),
        })
    }

    /// Checks the counts, and drops the schemas.
    pub(crate) fn close(self) -> Result<()> {
        let last = self.clerk.read_last_blocking(&self.invoices)?;
        ensure!(
            next_invoice_number(last.as_ref())? - 1 == self.issued,
            "the PostgreSQL invoices have a gap"
        );
        let stored = self
            .concurrent
            .read_last_blocking(&Query::all())?
            .map_or(0, |e| e.position.get());
        ensure!(
            stored == self.appended,
            "the concurrent PostgreSQL store holds {stored} events, expected {}",
            self.appended
        );
        drop_store(self.single)?;
        drop_store(self.clerk)?;
        let concurrent = Arc::try_unwrap(self.concurrent)
            .map_err(|_| anyhow::anyhow!("the concurrent store is still shared"))?;
        drop_store(concurrent)
    }
}

/// The catalog of the query scenarios, in PostgreSQL.
pub(crate) struct PgCatalog {
    store: PgEventStore,
    by_type: Query,
}

impl PgCatalog {
    /// Loads the catalog of [`QUERY_STORE_EVENTS`] events in batches of [`BULK_BATCH`].
    pub(crate) fn build(url: &str, by_type: Query) -> Result<PgCatalog> {
        let store = connect(url, "catalog")?;
        let mut start = 0;
        while start < QUERY_STORE_EVENTS {
            let end = (start + BULK_BATCH).min(QUERY_STORE_EVENTS);
            let batch = (start..end)
                .map(catalog_event)
                .collect::<Result<Vec<NewEvent>, _>>()?;
            store.append_blocking(batch, None)?;
            start = end;
        }
        Ok(PgCatalog { store, by_type })
    }
}

impl Catalog for PgCatalog {
    fn keys(&self) -> QueryKeys {
        QueryKeys {
            tag: "pg_tag_query_100k_us",
            by_type: "pg_type_query_10k_us",
            last: "pg_read_last_us",
        }
    }

    fn customer_read(&self, customer: u64) -> Result<usize> {
        Ok(self
            .store
            .read_blocking(&customer_query(customer)?, ReadOptions::new())?
            .len())
    }

    fn type_read(&self) -> Result<usize> {
        Ok(self
            .store
            .read_blocking(&self.by_type, ReadOptions::new())?
            .len())
    }

    fn has_last_of_type(&self) -> Result<bool> {
        Ok(self.store.read_last_blocking(&self.by_type)?.is_some())
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop_store(self.store)
    }
}
