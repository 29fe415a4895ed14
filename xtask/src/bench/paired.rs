//! Scenarios measured **in turns with their baselines**: on a shared machine the disk's sync
//! rate can swing by an order of magnitude within a minute, and the CPU is shared too, so a
//! figure and its baseline measured a minute apart say little about each other. Here the file
//! store and its baselines take turns — every durable append scenario gets a slice of each round,
//! and every query run times both stores back to back — so that each sees the same conditions.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use opossum_benches::{EVENT_TYPES, EVENTS_PER_CUSTOMER, customer_query, type_query};
use opossum_core::{Query, ReadOptions};
use opossum_fs::FileEventStore;

use super::fs_query::QUERIED_TYPE;
use super::measure::{self, Rate};
use super::raw::RawLog;
use super::report::Figures;
use super::{Plan, QUERY_STORE_EVENTS, fs_append, fs_query, sqlite};

/// Records every durable append figure — `raw_fsync_per_s`, `single_append_per_s`,
/// `batch1000_append_per_s`, `conditional_append_per_s`, `concurrent16_append_per_s` and their
/// SQLite counterparts — in rounds: each round gives every serial scenario one slice of time and
/// each concurrent one a share of its count, so that all of them see the same disk.
pub(crate) fn durable_appends(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let mut raw = RawLog::create(dir)?;
    let mut single = fs_append::Single::open(dir, "single", fs_append::Durability::Flush)?;
    let mut batches = fs_append::Batches::open(dir)?;
    let mut clerk = fs_append::InvoiceClerk::open(dir)?;
    let mut concurrent = fs_append::Concurrent::open(dir)?;
    let mut sqlite_single = sqlite::Single::open(dir)?;
    let mut sqlite_clerk = sqlite::InvoiceClerk::open(dir)?;
    let mut sqlite_concurrent = sqlite::Concurrent::open(dir)?;

    let rounds = plan.rounds;
    let slice = plan.serial_run / rounds;
    let per_writer = (plan.concurrent_per_writer / u64::from(rounds)).max(1);
    let cap = plan.concurrent_cap / rounds;
    let mut rates = Rates::default();
    for _ in 0..rounds {
        rates.raw += measure::for_duration(slice, |_| raw.append())?;
        rates.single += measure::for_duration(slice, |_| single.append())?;
        rates.sqlite_single += measure::for_duration(slice, |_| sqlite_single.append())?;
        rates.batch += measure::for_duration(slice, |_| batches.append())?;
        rates.conditional += measure::for_duration(slice, |_| clerk.issue_next())?;
        rates.sqlite_conditional += measure::for_duration(slice, |_| sqlite_clerk.issue_next())?;
        rates.concurrent += concurrent.round(per_writer, cap)?;
        rates.sqlite_concurrent += sqlite_concurrent.round(per_writer, cap)?;
    }
    single.close()?;
    batches.close()?;
    clerk.close()?;
    concurrent.close()?;
    sqlite_concurrent.close()?;

    figures.record("raw_fsync_per_s", rates.raw.per_second());
    figures.record("single_append_per_s", rates.single.per_second());
    figures.record(
        "sqlite_single_append_per_s",
        rates.sqlite_single.per_second(),
    );
    figures.record("batch1000_append_per_s", rates.batch.per_second());
    figures.record("conditional_append_per_s", rates.conditional.per_second());
    figures.record(
        "sqlite_conditional_append_per_s",
        rates.sqlite_conditional.per_second(),
    );
    figures.record("concurrent16_append_per_s", rates.concurrent.per_second());
    figures.record(
        "sqlite_concurrent16_append_per_s",
        rates.sqlite_concurrent.per_second(),
    );
    Ok(())
}

/// The rates [`durable_appends`] adds up over its rounds.
#[derive(Debug, Default)]
struct Rates {
    raw: Rate,
    single: Rate,
    sqlite_single: Rate,
    batch: Rate,
    conditional: Rate,
    sqlite_conditional: Rate,
    concurrent: Rate,
    sqlite_concurrent: Rate,
}

/// What the query scenarios ask of a store.
trait Catalog {
    /// How many events `query` reads.
    fn read_count(&self, query: &Query) -> Result<usize>;
    /// Whether `read_last` of `query` finds an event.
    fn has_last(&self, query: &Query) -> Result<bool>;
}

impl Catalog for FileEventStore {
    fn read_count(&self, query: &Query) -> Result<usize> {
        Ok(self.read_blocking(query, ReadOptions::new())?.len())
    }

    fn has_last(&self, query: &Query) -> Result<bool> {
        Ok(self.read_last_blocking(query)?.is_some())
    }
}

impl Catalog for sqlite::SqliteStore {
    fn read_count(&self, query: &Query) -> Result<usize> {
        Ok(self.read(query)?.len())
    }

    fn has_last(&self, query: &Query) -> Result<bool> {
        Ok(self.read_last(query)?.is_some())
    }
}

/// Records `tag_query_100k_us`, `type_query_10k_us` and `read_last_us`, and the same three on
/// SQLite, on the same catalog of 100,000 events; each run times the file store and SQLite one
/// after the other on the same query.
pub(crate) fn queries(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let file_store = fs_query::build_catalog(dir)?;
    let sqlite_store = sqlite::build_catalog(dir)?;
    let stores: [&dyn Catalog; 2] = [&file_store, &sqlite_store];

    // Customers spread over the whole catalog, the same ones for both stores.
    let customers = QUERY_STORE_EVENTS / EVENTS_PER_CUSTOMER;
    let customer = |round: usize| (round as u64 * 7_919) % customers;
    let tag_read = |which: usize, round: usize| -> Result<()> {
        let found = stores[which].read_count(&customer_query(customer(round))?)?;
        ensure!(
            found as u64 == EVENTS_PER_CUSTOMER,
            "a customer read returned {found} events, expected {EVENTS_PER_CUSTOMER}"
        );
        Ok(())
    };
    // Warm up the page cache and the indexes before timing.
    measure::medians_in_turns((plan.tag_query_runs / 10).max(1), 2, tag_read)?;
    let micros = measure::medians_in_turns(plan.tag_query_runs, 2, tag_read)?;
    figures.record("tag_query_100k_us", micros[0]);
    figures.record("sqlite_tag_query_100k_us", micros[1]);

    let by_type = type_query(QUERIED_TYPE)?;
    let expected = QUERY_STORE_EVENTS / EVENT_TYPES.len() as u64;
    let type_read = |which: usize, _| -> Result<()> {
        let found = stores[which].read_count(&by_type)?;
        ensure!(
            found as u64 == expected,
            "a type read returned {found} events, expected {expected}"
        );
        Ok(())
    };
    measure::medians_in_turns(1, 2, type_read)?;
    let micros = measure::medians_in_turns(plan.type_query_runs, 2, type_read)?;
    figures.record("type_query_10k_us", micros[0]);
    figures.record("sqlite_type_query_10k_us", micros[1]);

    let read_last = |which: usize, _| -> Result<()> {
        ensure!(
            stores[which].has_last(&by_type)?,
            "read_last found no {QUERIED_TYPE}"
        );
        Ok(())
    };
    let micros = measure::medians_in_turns(plan.read_last_runs, 2, read_last)?;
    figures.record("read_last_us", micros[0]);
    figures.record("sqlite_read_last_us", micros[1]);

    file_store.close().context("close the catalog store")?;
    Ok(())
}
