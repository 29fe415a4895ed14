//! Scenarios measured **in turns with their baselines**: on a shared machine the disk's sync
//! rate can swing by an order of magnitude within a minute, and the CPU is shared too, so a
//! figure and its baseline measured a minute apart say little about each other. Here the file
//! store and its baselines take turns — every durable append scenario gets a slice of each round,
//! and every query run times all stores back to back — so that each sees the same conditions.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opossum_benches::{EVENT_TYPES, EVENTS_PER_CUSTOMER, customer_query, type_query};
use opossum_core::{Query, ReadOptions};
use opossum_fs::FileEventStore;

use super::fs_query::QUERIED_TYPE;
use super::measure::{self, Rate};
use super::raw::{RawLog, RawOverwrite};
use super::report::Figures;
use super::{Plan, QUERY_STORE_EVENTS, fs_append, fs_query, peers, postgres, sqlite};

/// What one contender gets of a round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Turn {
    /// How long a serial scenario runs.
    slice: Duration,
    /// How many events each writer of a concurrent scenario appends …
    per_writer: u64,
    /// … unless this much time passes first.
    cap: Duration,
}

/// One durable append workload of the rounds, and the JSON key of its figure.
pub(crate) struct Contender<'a> {
    key: &'static str,
    run: Box<dyn FnMut(Turn) -> Result<Rate> + 'a>,
}

impl<'a> Contender<'a> {
    /// A serial workload: `step` is called for the turn's slice of time and returns the events
    /// it wrote.
    pub(crate) fn serial(key: &'static str, mut step: impl FnMut() -> Result<u64> + 'a) -> Self {
        Contender {
            key,
            run: Box::new(move |turn| measure::for_duration(turn.slice, |_| step())),
        }
    }

    /// A concurrent workload: `round(per_writer, cap)` runs all its writers once.
    pub(crate) fn concurrent(
        key: &'static str,
        mut round: impl FnMut(u64, Duration) -> Result<Rate> + 'a,
    ) -> Self {
        Contender {
            key,
            run: Box::new(move |turn| round(turn.per_writer, turn.cap)),
        }
    }
}

/// Records every durable append figure — the physical limits `raw_fsync_per_s` and
/// `raw_overwrite_fsync_per_s`, `single_append_per_s`, `batch1000_append_per_s`,
/// `conditional_append_per_s`, `concurrent16_append_per_s` and their SQLite, tephra and UmaDB
/// counterparts — in rounds: each round gives every serial scenario one slice of time and each
/// concurrent one a share of its count, contender after contender, so that all of them see the
/// same disk.
pub(crate) fn durable_appends(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let mut raw = RawLog::create(dir)?;
    let mut overwrite = RawOverwrite::create(dir)?;
    let mut single = fs_append::Single::open(dir, "single", fs_append::Durability::Flush)?;
    let mut batches = fs_append::Batches::open(dir)?;
    let mut clerk = fs_append::InvoiceClerk::open(dir)?;
    let mut concurrent = fs_append::Concurrent::open(dir)?;
    let mut sqlite_single = sqlite::Single::open(dir)?;
    let mut sqlite_clerk = sqlite::InvoiceClerk::open(dir)?;
    let mut sqlite_concurrent = sqlite::Concurrent::open(dir)?;
    let mut peers = peers::Appenders::open(dir)?;
    let mut pg = plan
        .postgres
        .as_deref()
        .map(postgres::Appenders::open)
        .transpose()?;

    let rounds = plan.rounds;
    let turn = Turn {
        slice: plan.serial_run / rounds,
        per_writer: (plan.concurrent_per_writer / u64::from(rounds)).max(1),
        cap: plan.concurrent_cap / rounds,
    };
    {
        let pg = pg.as_mut().map(std::cell::RefCell::new);
        let peer = peers.scenarios();
        let mut contenders = vec![
            Contender::serial("raw_fsync_per_s", || raw.append()),
            Contender::serial("raw_overwrite_fsync_per_s", || overwrite.append()),
            Contender::serial("single_append_per_s", || single.append()),
            Contender::serial("sqlite_single_append_per_s", || sqlite_single.append()),
        ];
        contenders.extend(peer.single);
        if let Some(pg) = &pg {
            contenders.push(Contender::serial("pg_single_append_per_s", || {
                pg.borrow_mut().append()
            }));
        }
        contenders.push(Contender::serial("batch1000_append_per_s", || {
            batches.append()
        }));
        contenders.extend(peer.batch);
        contenders.push(Contender::serial("conditional_append_per_s", || {
            clerk.issue_next()
        }));
        contenders.push(Contender::serial("sqlite_conditional_append_per_s", || {
            sqlite_clerk.issue_next()
        }));
        contenders.extend(peer.conditional);
        if let Some(pg) = &pg {
            contenders.push(Contender::serial("pg_conditional_append_per_s", || {
                pg.borrow_mut().issue_next()
            }));
        }
        contenders.push(Contender::concurrent(
            "concurrent16_append_per_s",
            |per_writer, cap| concurrent.round(per_writer, cap),
        ));
        contenders.push(Contender::concurrent(
            "sqlite_concurrent16_append_per_s",
            |per_writer, cap| sqlite_concurrent.round(per_writer, cap),
        ));
        contenders.extend(peer.concurrent);
        if let Some(pg) = &pg {
            contenders.push(Contender::concurrent(
                "pg_concurrent16_append_per_s",
                |per_writer, cap| pg.borrow_mut().round(per_writer, cap),
            ));
        }

        let mut rates = vec![Rate::default(); contenders.len()];
        for _ in 0..rounds {
            for (contender, rate) in contenders.iter_mut().zip(&mut rates) {
                *rate += (contender.run)(turn)
                    .with_context(|| format!("the round of {}", contender.key))?;
            }
        }
        for (contender, rate) in contenders.iter().zip(&rates) {
            figures.record(contender.key, rate.per_second());
        }
    }
    single.close()?;
    batches.close()?;
    clerk.close()?;
    concurrent.close()?;
    sqlite_concurrent.close()?;
    peers.close()?;
    if let Some(pg) = pg {
        pg.close()?;
    }
    Ok(())
}

/// The JSON keys of one store's three query figures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueryKeys {
    /// The tag query returning 10 events.
    pub(crate) tag: &'static str,
    /// The type query returning 10,000 events.
    pub(crate) by_type: &'static str,
    /// `read_last` by type.
    pub(crate) last: &'static str,
}

/// What the query scenarios ask of a store holding the catalog.
pub(crate) trait Catalog {
    /// The keys its figures are recorded under.
    fn keys(&self) -> QueryKeys;
    /// How many events the query for catalog customer `customer` reads; the query is built
    /// inside, as its caller would.
    fn customer_read(&self, customer: u64) -> Result<usize>;
    /// How many events the query for every event of [`QUERIED_TYPE`] reads.
    fn type_read(&self) -> Result<usize>;
    /// Whether `read_last` of that type query finds an event.
    fn has_last_of_type(&self) -> Result<bool>;
    /// Closes the store.
    fn close(self: Box<Self>) -> Result<()>;
}

/// The file store's catalog and its type query.
struct FileCatalog {
    store: FileEventStore,
    by_type: Query,
}

impl Catalog for FileCatalog {
    fn keys(&self) -> QueryKeys {
        QueryKeys {
            tag: "tag_query_100k_us",
            by_type: "type_query_10k_us",
            last: "read_last_us",
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
        self.store.close().context("close the catalog store")
    }
}

/// The SQLite catalog and its type query.
struct SqliteCatalog {
    store: sqlite::SqliteStore,
    by_type: Query,
}

impl Catalog for SqliteCatalog {
    fn keys(&self) -> QueryKeys {
        QueryKeys {
            tag: "sqlite_tag_query_100k_us",
            by_type: "sqlite_type_query_10k_us",
            last: "sqlite_read_last_us",
        }
    }

    fn customer_read(&self, customer: u64) -> Result<usize> {
        Ok(self.store.read(&customer_query(customer)?)?.len())
    }

    fn type_read(&self) -> Result<usize> {
        Ok(self.store.read(&self.by_type)?.len())
    }

    fn has_last_of_type(&self) -> Result<bool> {
        Ok(self.store.read_last(&self.by_type)?.is_some())
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Records `tag_query_100k_us`, `type_query_10k_us` and `read_last_us`, and the same three on
/// SQLite, tephra and UmaDB, on the same catalog of 100,000 events; each run times every store
/// one after the other on the same query.
pub(crate) fn queries(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let by_type = type_query(QUERIED_TYPE)?;
    let mut stores: Vec<Box<dyn Catalog>> = vec![
        Box::new(FileCatalog {
            store: fs_query::build_catalog(dir)?,
            by_type: by_type.clone(),
        }),
        Box::new(SqliteCatalog {
            store: sqlite::build_catalog(dir)?,
            by_type,
        }),
    ];
    stores.extend(peers::catalogs(dir)?);
    if let Some(url) = &plan.postgres {
        stores.push(Box::new(postgres::PgCatalog::build(
            url,
            type_query(QUERIED_TYPE)?,
        )?));
    }
    let keys: Vec<QueryKeys> = stores.iter().map(|s| s.keys()).collect();
    let n = stores.len();

    // Customers spread over the whole catalog, the same ones for every store.
    let customers = QUERY_STORE_EVENTS / EVENTS_PER_CUSTOMER;
    let customer = |round: usize| (round as u64 * 7_919) % customers;
    let tag_read = |which: usize, round: usize| -> Result<()> {
        let found = stores[which].customer_read(customer(round))?;
        ensure!(
            found as u64 == EVENTS_PER_CUSTOMER,
            "a customer read returned {found} events, expected {EVENTS_PER_CUSTOMER}"
        );
        Ok(())
    };
    // Warm up the page cache and the indexes before timing.
    measure::medians_in_turns((plan.tag_query_runs / 10).max(1), n, tag_read)?;
    let micros = measure::medians_in_turns(plan.tag_query_runs, n, tag_read)?;
    for (k, us) in keys.iter().zip(micros) {
        figures.record(k.tag, us);
    }

    let expected = QUERY_STORE_EVENTS / EVENT_TYPES.len() as u64;
    let type_read = |which: usize, _| -> Result<()> {
        let found = stores[which].type_read()?;
        ensure!(
            found as u64 == expected,
            "a type read returned {found} events, expected {expected}"
        );
        Ok(())
    };
    measure::medians_in_turns(1, n, type_read)?;
    let micros = measure::medians_in_turns(plan.type_query_runs, n, type_read)?;
    for (k, us) in keys.iter().zip(micros) {
        figures.record(k.by_type, us);
    }

    let read_last = |which: usize, _| -> Result<()> {
        ensure!(
            stores[which].has_last_of_type()?,
            "read_last found no {QUERIED_TYPE}"
        );
        Ok(())
    };
    let micros = measure::medians_in_turns(plan.read_last_runs, n, read_last)?;
    for (k, us) in keys.iter().zip(micros) {
        figures.record(k.last, us);
    }

    for store in stores.drain(..) {
        store.close()?;
    }
    Ok(())
}
