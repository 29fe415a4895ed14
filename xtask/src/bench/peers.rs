//! The peer embedded DCB event stores measured beside the file store: tephra
//! ([`super::tephra_peer`]) and UmaDB ([`super::umadb_peer`]), each driven through its own
//! embedded API with the same events, tags and payload bytes as the file store's scenarios.
//!
//! Both are dependencies of `xtask` behind its `peers` feature (on in the `cargo xtask` alias),
//! so that `cargo test --workspace` does not build them. Without the feature, [`Appenders`] and
//! [`catalogs`] measure nothing and the report lists the peers' figures as not measured.
//!
//! A peer implements [`Peer`]; the drivers here ([`Single`], [`Batches`], [`InvoiceClerk`],
//! [`Concurrent`] and the catalog) are the same for both, so the two differ only in how an
//! append, a read and `read_last` reach the store.

use std::path::Path;

use anyhow::Result;

use super::paired::{Catalog, Contender};

/// Whether this build measures the peers (the `peers` feature).
pub(crate) const BUILT: bool = cfg!(feature = "peers");

/// What the report says of a peer figure in a build without the `peers` feature.
pub(crate) const NOT_BUILT: &str = "not measured (built without the `peers` feature)";

/// The peers' durable append drivers, one set per peer, fresh stores in the run's folder.
#[derive(Debug)]
pub(crate) struct Appenders {
    #[cfg(feature = "peers")]
    tephra: enabled::Drivers<super::tephra_peer::Tephra>,
    #[cfg(feature = "peers")]
    umadb: enabled::Drivers<super::umadb_peer::UmaDb>,
}

/// The peers' contenders of each durable append scenario, for [`super::paired`]'s rounds.
#[derive(Default)]
pub(crate) struct Scenarios<'a> {
    /// One event per append.
    pub(crate) single: Vec<Contender<'a>>,
    /// 1,000 events per append.
    pub(crate) batch: Vec<Contender<'a>>,
    /// The invoice pattern: `read_last`, then a guarded append.
    pub(crate) conditional: Vec<Contender<'a>>,
    /// 16 threads appending single events.
    pub(crate) concurrent: Vec<Contender<'a>>,
}

impl Appenders {
    /// Opens a fresh store per peer and scenario (none without the `peers` feature) and makes
    /// the warm-up appends.
    #[cfg_attr(not(feature = "peers"), allow(clippy::unnecessary_wraps))]
    pub(crate) fn open(dir: &Path) -> Result<Appenders> {
        let _ = dir;
        Ok(Appenders {
            #[cfg(feature = "peers")]
            tephra: enabled::Drivers::open(dir)?,
            #[cfg(feature = "peers")]
            umadb: enabled::Drivers::open(dir)?,
        })
    }

    /// The contenders of each scenario, tephra before UmaDB.
    pub(crate) fn scenarios(&mut self) -> Scenarios<'_> {
        #[allow(unused_mut)]
        let mut scenarios = Scenarios::default();
        #[cfg(feature = "peers")]
        {
            self.tephra.contenders(&mut scenarios);
            self.umadb.contenders(&mut scenarios);
        }
        scenarios
    }

    /// Checks every store's event count and invoice numbers, and closes them.
    #[cfg_attr(not(feature = "peers"), allow(clippy::unnecessary_wraps))]
    pub(crate) fn close(self) -> Result<()> {
        #[cfg(feature = "peers")]
        {
            self.tephra.close()?;
            self.umadb.close()?;
        }
        Ok(())
    }
}

/// The peers' catalog stores of [`super::QUERY_STORE_EVENTS`] events, each with the JSON keys
/// of its three query figures (none without the `peers` feature).
#[cfg_attr(not(feature = "peers"), allow(clippy::unnecessary_wraps))]
pub(crate) fn catalogs(dir: &Path) -> Result<Vec<Box<dyn Catalog>>> {
    let _ = dir;
    #[allow(unused_mut)]
    let mut catalogs: Vec<Box<dyn Catalog>> = Vec::new();
    #[cfg(feature = "peers")]
    {
        catalogs.push(Box::new(
            enabled::PeerCatalog::<super::tephra_peer::Tephra>::build(dir)?,
        ));
        catalogs.push(Box::new(
            enabled::PeerCatalog::<super::umadb_peer::UmaDb>::build(dir)?,
        ));
    }
    Ok(catalogs)
}

#[cfg(feature = "peers")]
pub(crate) use enabled::{Appended, Peer};

/// The drivers, compiled with the `peers` feature only.
#[cfg(feature = "peers")]
mod enabled {
    use std::path::Path;
    use std::time::Duration;

    use anyhow::{Context, Result, bail, ensure};
    use opossum_benches::{InvoiceCreated, catalog_event, invoice_event, invoices_query};
    use opossum_core::{NewEvent, Query};

    use super::super::fs_query::QUERIED_TYPE;
    use super::super::measure::{self, Rate};
    use super::super::paired::{Catalog, Contender, QueryKeys};
    use super::super::{BULK_BATCH, CONCURRENT_WRITERS, QUERY_STORE_EVENTS};
    use super::Scenarios;

    /// Appends made before the clock starts, so that creating files is not measured.
    const WARM_UP: u64 = 16;

    /// Events per call in the batch scenario.
    const BATCH: u64 = 1_000;

    /// What an append did.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Appended {
        /// The events were written.
        Written,
        /// The condition matched an event: nothing was written.
        ConditionFailed,
    }

    /// An embedded DCB event store driven by the benchmark, through its own API.
    pub(crate) trait Peer: Sized + 'static {
        /// The name in file names and messages: `tephra`, `umadb`.
        const NAME: &'static str;
        /// The JSON keys of the durable append figures: single, batch of 1,000, conditional,
        /// 16 writers.
        const APPEND_KEYS: [&'static str; 4];
        /// The JSON keys of the query figures.
        const QUERY_KEYS: QueryKeys;
        /// What owns the open store (and its writer thread, if any).
        type Store: Send;
        /// A cloneable handle that appends and reads, one per writer thread.
        type Handle: Clone + Send + 'static;
        /// An event in the store's own form.
        type Event: Send;
        /// A query in the store's own form.
        type Query: Clone + Send + Sync;

        /// Opens (creating) the store at `path`, a folder or a file as the store keeps it.
        fn open(path: &Path) -> Result<(Self::Store, Self::Handle)>;
        /// Stops the writer (if any) and closes the store.
        fn close(store: Self::Store, handle: Self::Handle) -> Result<()>;
        /// `event` in the store's form: the same type, tags and payload bytes.
        fn event(event: &NewEvent) -> Result<Self::Event>;
        /// Append-scenario event `i` (the file store's `sample_event(i)`), built directly in
        /// the store's form from the same type, tag and payload text, as its user would.
        fn sample(i: u64) -> Result<Self::Event>;
        /// `query` in the store's form.
        fn query(query: &Query) -> Result<Self::Query>;
        /// The query for every catalog event of customer number `customer`, built directly in
        /// the store's form, as its user would.
        fn customer_query(customer: u64) -> Result<Self::Query>;
        /// Appends `events` atomically and durably, unless `guard` (a query and the last
        /// position read, 0 for none) matches an event after that position.
        fn append(
            handle: &Self::Handle,
            events: Vec<Self::Event>,
            guard: Option<(&Self::Query, u64)>,
        ) -> Result<Appended>;
        /// How many events `query` reads, each one copied out of the store.
        fn read_count(handle: &Self::Handle, query: &Self::Query) -> Result<usize>;
        /// The position and payload bytes of the last event `query` matches.
        fn read_last(handle: &Self::Handle, query: &Self::Query) -> Result<Option<(u64, Vec<u8>)>>;
        /// How many events the store holds.
        fn event_count(handle: &Self::Handle) -> Result<u64>;
    }

    /// An open peer store: what owns it and a handle to it.
    struct Open<P: Peer> {
        store: P::Store,
        handle: P::Handle,
    }

    impl<P: Peer> Open<P> {
        fn new(dir: &Path, scenario: &str) -> Result<Open<P>> {
            let path = dir.join(format!("{}-{scenario}", P::NAME));
            let (store, handle) =
                P::open(&path).with_context(|| format!("open {}", path.display()))?;
            Ok(Open { store, handle })
        }

        /// Checks that the store holds `expected` events and closes it.
        fn close(self, expected: u64, scenario: &str) -> Result<()> {
            let stored = P::event_count(&self.handle)?;
            ensure!(
                stored == expected,
                "the {} {scenario} store holds {stored} events, expected {expected}",
                P::NAME
            );
            P::close(self.store, self.handle)
        }
    }

    /// The four durable append drivers of one peer.
    pub(crate) struct Drivers<P: Peer> {
        single: Single<P>,
        batches: Batches<P>,
        clerk: InvoiceClerk<P>,
        concurrent: Concurrent<P>,
    }

    impl<P: Peer> std::fmt::Debug for Drivers<P> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Drivers").field("peer", &P::NAME).finish()
        }
    }

    impl<P: Peer> Drivers<P> {
        /// Opens the four stores and makes the warm-up appends.
        pub(crate) fn open(dir: &Path) -> Result<Drivers<P>> {
            Ok(Drivers {
                single: Single::open(dir)?,
                batches: Batches::open(dir)?,
                clerk: InvoiceClerk::open(dir)?,
                concurrent: Concurrent::open(dir)?,
            })
        }

        /// Adds this peer's contender to each scenario.
        pub(crate) fn contenders<'a>(&'a mut self, scenarios: &mut Scenarios<'a>) {
            let [single, batch, conditional, concurrent] = P::APPEND_KEYS;
            let Drivers {
                single: s,
                batches: b,
                clerk: c,
                concurrent: w,
            } = self;
            scenarios
                .single
                .push(Contender::serial(single, move || s.append()));
            scenarios
                .batch
                .push(Contender::serial(batch, move || b.append()));
            scenarios
                .conditional
                .push(Contender::serial(conditional, move || c.issue_next()));
            scenarios
                .concurrent
                .push(Contender::concurrent(concurrent, move |per_writer, cap| {
                    w.round(per_writer, cap)
                }));
        }

        /// Checks and closes the four stores.
        pub(crate) fn close(self) -> Result<()> {
            self.single.close()?;
            self.batches.close()?;
            self.clerk.close()?;
            self.concurrent.close()
        }
    }

    /// One writer appending one event per call.
    struct Single<P: Peer> {
        open: Open<P>,
        appended: u64,
    }

    impl<P: Peer> Single<P> {
        fn open(dir: &Path) -> Result<Single<P>> {
            let mut single = Single {
                open: Open::new(dir, "single")?,
                appended: 0,
            };
            for _ in 0..WARM_UP {
                single.append()?;
            }
            Ok(single)
        }

        /// Appends one event; returns the events appended (one).
        fn append(&mut self) -> Result<u64> {
            P::append(&self.open.handle, vec![P::sample(self.appended)?], None)?;
            self.appended += 1;
            Ok(1)
        }

        fn close(self) -> Result<()> {
            self.open.close(self.appended, "single")
        }
    }

    /// One writer appending 1,000 events per call.
    struct Batches<P: Peer> {
        open: Open<P>,
        appended: u64,
    }

    impl<P: Peer> Batches<P> {
        fn open(dir: &Path) -> Result<Batches<P>> {
            let mut batches = Batches {
                open: Open::new(dir, "batch1000")?,
                appended: 0,
            };
            batches.append()?;
            Ok(batches)
        }

        /// Appends one batch; returns the events appended (1,000).
        fn append(&mut self) -> Result<u64> {
            let batch = (self.appended..self.appended + BATCH)
                .map(P::sample)
                .collect::<Result<Vec<_>>>()?;
            P::append(&self.open.handle, batch, None)?;
            self.appended += BATCH;
            Ok(BATCH)
        }

        fn close(self) -> Result<()> {
            self.open.close(self.appended, "batch")
        }
    }

    /// The gap-free invoice pattern: `read_last` of the invoices, then the next invoice,
    /// guarded by the same query after the position read.
    struct InvoiceClerk<P: Peer> {
        open: Open<P>,
        invoices: P::Query,
        issued: u64,
    }

    impl<P: Peer> InvoiceClerk<P> {
        fn open(dir: &Path) -> Result<InvoiceClerk<P>> {
            let mut clerk = InvoiceClerk {
                open: Open::new(dir, "conditional")?,
                invoices: P::query(&invoices_query()?)?,
                issued: 0,
            };
            for _ in 0..WARM_UP {
                clerk.issue_next()?;
            }
            Ok(clerk)
        }

        /// The number of the invoice after the last one, and the position to guard after.
        fn next_number(&self) -> Result<(u64, u64)> {
            Ok(match P::read_last(&self.open.handle, &self.invoices)? {
                Some((position, payload)) => {
                    let last: InvoiceCreated =
                        serde_json::from_slice(&payload).context("decode the last invoice")?;
                    (last.number + 1, position)
                }
                None => (1, 0),
            })
        }

        /// One `read_last` and one durable conditional append; returns the events appended.
        fn issue_next(&mut self) -> Result<u64> {
            let (number, after) = self.next_number()?;
            let invoice = P::event(&invoice_event(number)?)?;
            match P::append(
                &self.open.handle,
                vec![invoice],
                Some((&self.invoices, after)),
            )? {
                Appended::Written => {
                    self.issued += 1;
                    Ok(1)
                }
                Appended::ConditionFailed => {
                    bail!(
                        "{} invoice {number}: the condition failed although nobody else appends",
                        P::NAME
                    )
                }
            }
        }

        fn close(self) -> Result<()> {
            let (next, _) = self.next_number()?;
            ensure!(
                next - 1 == self.issued,
                "the last {} invoice is number {}, expected {}",
                P::NAME,
                next - 1,
                self.issued
            );
            self.open.close(self.issued, "conditional")
        }
    }

    /// [`CONCURRENT_WRITERS`] threads, each with its own handle, appending single events.
    struct Concurrent<P: Peer> {
        open: Open<P>,
        appended: u64,
    }

    impl<P: Peer> Concurrent<P> {
        fn open(dir: &Path) -> Result<Concurrent<P>> {
            let open = Open::<P>::new(dir, "concurrent16")?;
            for i in 0..WARM_UP {
                P::append(&open.handle, vec![P::sample(i)?], None)?;
            }
            Ok(Concurrent {
                open,
                appended: WARM_UP,
            })
        }

        /// Each thread appends `per_writer` events, or fewer if `cap` passes first.
        fn round(&mut self, per_writer: u64, cap: Duration) -> Result<Rate> {
            let first = self.appended;
            let workers = (0..CONCURRENT_WRITERS as u64)
                .map(|writer| {
                    let handle = self.open.handle.clone();
                    move |i| -> Result<()> {
                        let event = P::sample(first + writer * per_writer + i)?;
                        P::append(&handle, vec![event], None)?;
                        Ok(())
                    }
                })
                .collect();
            let rate = measure::on_threads(workers, per_writer, cap)?;
            self.appended += rate.events;
            Ok(rate)
        }

        fn close(self) -> Result<()> {
            self.open.close(self.appended, "concurrent")
        }
    }

    /// A peer store holding the catalog of [`QUERY_STORE_EVENTS`] events, and the type query.
    pub(crate) struct PeerCatalog<P: Peer> {
        open: Open<P>,
        by_type: P::Query,
    }

    impl<P: Peer> PeerCatalog<P> {
        /// Writes the catalog into a fresh store, in appends of [`super::super::BULK_BATCH`]
        /// events (durable: the peers have no other mode).
        pub(crate) fn build(dir: &Path) -> Result<PeerCatalog<P>> {
            let open = Open::<P>::new(dir, "catalog")?;
            let mut start = 0;
            while start < QUERY_STORE_EVENTS {
                let end = (start + BULK_BATCH).min(QUERY_STORE_EVENTS);
                let batch = (start..end)
                    .map(|i| P::event(&catalog_event(i)?))
                    .collect::<Result<Vec<_>>>()?;
                P::append(&open.handle, batch, None)?;
                start = end;
            }
            let stored = P::event_count(&open.handle)?;
            ensure!(
                stored == QUERY_STORE_EVENTS,
                "the {} catalog holds {stored} events",
                P::NAME
            );
            Ok(PeerCatalog {
                open,
                by_type: P::query(&opossum_benches::type_query(QUERIED_TYPE)?)?,
            })
        }
    }

    impl<P: Peer> Catalog for PeerCatalog<P> {
        fn keys(&self) -> QueryKeys {
            P::QUERY_KEYS
        }

        fn customer_read(&self, customer: u64) -> Result<usize> {
            P::read_count(&self.open.handle, &P::customer_query(customer)?)
        }

        fn type_read(&self) -> Result<usize> {
            P::read_count(&self.open.handle, &self.by_type)
        }

        fn has_last_of_type(&self) -> Result<bool> {
            Ok(P::read_last(&self.open.handle, &self.by_type)?.is_some())
        }

        fn close(self: Box<Self>) -> Result<()> {
            self.open.close(QUERY_STORE_EVENTS, "catalog")
        }
    }
}
